package simtenant

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Channel membership types as Graph spells them.
const (
	MembershipStandard = "standard"
	MembershipPrivate  = "private"
	MembershipShared   = "shared"
)

// generalChannelName is the standard channel that every Team has.
const generalChannelName = "General"

// channelFilter matches the membershipType filters that the sim supports,
// for example "membershipType ne 'standard'".
var channelFilter = regexp.MustCompile(`^\s*membershipType\s+(eq|ne)\s+'(\w+)'\s*$`)

// Channel is a private or shared channel of a Team. Such a channel has a
// SharePoint site, and so a drive, of its own. Standard channels keep their
// files in the Team's main site and are not listed here; every Team also has
// the standard channel General.
type Channel struct {
	// ID is the channel id, "19:...@thread.tacv2".
	ID             string
	DisplayName    string
	MembershipType string
	// Drive is the document library of the channel's site. Nil means the
	// site is not provisioned yet, so filesFolder responds 404.
	Drive *Drive
}

// channelJSON is a channel in GET /teams/{id}/channels.
type channelJSON struct {
	ID              string `json:"id"`
	CreatedDateTime string `json:"createdDateTime"`
	DisplayName     string `json:"displayName"`
	MembershipType  string `json:"membershipType"`
}

type channelPage struct {
	Context string        `json:"@odata.context"`
	Count   int           `json:"@odata.count"`
	Value   []channelJSON `json:"value"`
}

// driveItemJSON is the driveItem of a channel's filesFolder.
type driveItemJSON struct {
	Context         string          `json:"@odata.context"`
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	WebURL          string          `json:"webUrl"`
	ParentReference parentReference `json:"parentReference"`
	Folder          folderFacet     `json:"folder"`
}

type parentReference struct {
	DriveID   string `json:"driveId"`
	DriveType string `json:"driveType"`
}

type folderFacet struct {
	ChildCount int `json:"childCount"`
}

// driveOwner is a drive of the directory with the group whose site holds it.
type driveOwner struct {
	drive *Drive
	group *Group
}

// teamByID returns the Team with id, or nil when there is none.
func (t *Tenant) teamByID(id string) *Group {
	i, ok := t.dir.byID[strings.ToLower(id)]
	if !ok || !t.dir.groups[i].IsTeam {
		return nil
	}
	return &t.dir.groups[i]
}

// handleChannels lists a Team's channels: General and the Team's private
// and shared channels, filtered by membershipType when asked.
func (t *Tenant) handleChannels(w http.ResponseWriter, r *http.Request) {
	team := t.teamByID(r.PathValue("id"))
	if team == nil {
		t.writeGraphError(w, r, http.StatusNotFound, "NotFound", "No team found with Group Id "+r.PathValue("id"))
		return
	}
	keep := func(string) bool { return true }
	if filter := r.URL.Query().Get("$filter"); filter != "" {
		m := channelFilter.FindStringSubmatch(filter)
		if m == nil {
			t.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The simulated tenant does not support the filter %q.", filter))
			return
		}
		op, value := m[1], m[2]
		keep = func(membership string) bool { return (membership == value) == (op == "eq") }
	}

	page := channelPage{Context: t.GraphURL() + "/$metadata#teams('" + team.ID + "')/channels", Value: []channelJSON{}}
	created := time.Date(2019, time.September, 2, 8, 0, 0, 0, time.UTC).Format(time.RFC3339)
	if keep(MembershipStandard) {
		page.Value = append(page.Value, channelJSON{ID: generalChannelID(team), CreatedDateTime: created, DisplayName: generalChannelName, MembershipType: MembershipStandard})
	}
	for _, c := range team.Channels {
		if keep(c.MembershipType) {
			page.Value = append(page.Value, channelJSON{ID: c.ID, CreatedDateTime: created, DisplayName: c.DisplayName, MembershipType: c.MembershipType})
		}
	}
	page.Count = len(page.Value)

	w.Header().Set("Content-Type", graphContentType)
	writeJSON(w, t.log, http.StatusOK, page)
}

// handleFilesFolder returns the folder of a channel's files. For a private
// or shared channel it lives in the channel's own site, which may not be
// provisioned yet.
func (t *Tenant) handleFilesFolder(w http.ResponseWriter, r *http.Request) {
	team := t.teamByID(r.PathValue("id"))
	if team == nil {
		t.writeGraphError(w, r, http.StatusNotFound, "NotFound", "No team found with Group Id "+r.PathValue("id"))
		return
	}
	channelID := r.PathValue("channelId")

	var name string
	var drive *Drive
	switch {
	case channelID == generalChannelID(team):
		name, drive = generalChannelName, team.Drive
	default:
		c := findChannel(team, channelID)
		if c == nil {
			t.writeGraphError(w, r, http.StatusNotFound, "NotFound", "Channel "+channelID+" not found.")
			return
		}
		name, drive = c.DisplayName, c.Drive
	}
	if drive == nil {
		t.writeGraphError(w, r, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
		return
	}

	w.Header().Set("Content-Type", graphContentType)
	writeJSON(w, t.log, http.StatusOK, driveItemJSON{
		Context:         t.GraphURL() + "/$metadata#teams('" + team.ID + "')/channels('" + channelID + "')/filesFolder/$entity",
		ID:              "01" + strings.ToUpper(drive.ID[2:26]),
		Name:            name,
		WebURL:          strings.TrimSuffix(drive.WebURL, "/") + "/" + name,
		ParentReference: parentReference{DriveID: drive.ID, DriveType: "documentLibrary"},
	})
}

// handleDriveByID returns any drive of the directory, a group's or a
// channel site's, with its quota.
func (t *Tenant) handleDriveByID(w http.ResponseWriter, r *http.Request) {
	if t.writeFault(w, r) {
		return
	}
	owner, ok := t.dir.drives[r.PathValue("driveId")]
	if !ok {
		t.writeGraphError(w, r, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
		return
	}
	t.writeDrive(w, r, owner.drive, owner.group)
}

func findChannel(team *Group, id string) *Channel {
	for i := range team.Channels {
		if team.Channels[i].ID == id {
			return &team.Channels[i]
		}
	}
	return nil
}

// generalChannelID derives the id of a Team's General channel from its
// group id, so that it is stable without being stored.
func generalChannelID(team *Group) string {
	return "19:" + strings.ReplaceAll(team.ID, "-", "") + "@thread.tacv2"
}
