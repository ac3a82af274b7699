package scanner

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Drive is a group's default document library as Graph returns it from
// GET /groups/{id}/drive (resource type "drive", v1.0).
type Drive struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	DriveType string `json:"driveType,omitempty"`
	WebURL    string `json:"webUrl,omitempty"`
	// Quota is all zero when Graph omits the quota facet, which it does
	// without Sites.Read.All, and when SharePoint does not report usage.
	Quota Quota `json:"quota"`
}

// GraphError is an error answer from Microsoft Graph: the HTTP status and
// the code and message of Graph's error body, for example 404 itemNotFound.
type GraphError struct {
	Status  int
	Code    string
	Message string
	// RequestID is Graph's request-id, which Microsoft support requests.
	RequestID string
}

func (e *GraphError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// groupsPage is one page of GET /groups.
type groupsPage struct {
	Value    []Team `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// channel is a Team's channel as GET /teams/{id}/channels returns it.
type channel struct {
	ID             string `json:"id"`
	DisplayName    string `json:"displayName"`
	MembershipType string `json:"membershipType"`
}

type channelsPage struct {
	Value    []channel `json:"value"`
	NextLink string    `json:"@odata.nextLink"`
}

// filesFolder is the driveItem of GET /teams/{id}/channels/{id}/filesFolder:
// the channel's folder, whose parentReference names the drive of the
// channel's own site for a private or shared channel.
type filesFolder struct {
	ParentReference struct {
		DriveID string `json:"driveId"`
	} `json:"parentReference"`
}

// collectionPage is one page of any Graph collection.
type collectionPage struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

// errorBody is Graph's error response, documented in "Microsoft Graph error
// responses and resource types" on learn.microsoft.com.
type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// maxErrorMessage bounds the message kept from an error body, because it
// travels into logs, CSV cells and chat replies.
const maxErrorMessage = 300

// parseGraphError builds a *GraphError from a non-2xx response. A body that is
// not Graph's error JSON leaves Code and Message empty.
func parseGraphError(status int, header http.Header, body []byte) *GraphError {
	e := &GraphError{Status: status, RequestID: header.Get("request-id")}

	var parsed errorBody
	if json.Unmarshal(body, &parsed) == nil {
		e.Code = parsed.Error.Code
		e.Message = truncate(oneLine(parsed.Error.Message), maxErrorMessage)
		if e.RequestID == "" {
			e.RequestID = parsed.Error.InnerError.RequestID
		}
	}
	return e
}
