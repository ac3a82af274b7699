package simtenant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const (
	// maxBatchRequests is Graph's limit of requests in one JSON batch
	// ("Combine multiple HTTP requests using JSON batching").
	maxBatchRequests = 20
	// maxBatchBody bounds the body of a batch request.
	maxBatchBody = 1 << 20
)

type batchRequest struct {
	Requests []batchRequestItem `json:"requests"`
}

type batchRequestItem struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

type batchResponse struct {
	Responses []batchResponseItem `json:"responses"`
}

type batchResponseItem struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    any               `json:"body,omitempty"`
}

// batchItemRoutes registers the Graph requests that a JSON batch may carry.
// Each goes through the throttle on its own, as Graph evaluates every
// request of a batch against the throttling limits, but the latency and the
// token check belong to the batch.
//
// NOTE: the directory endpoints (owners, memberships) are not served inside
// a batch. The sim returns 400 for them there, as for an unknown segment.
func (t *Tenant) batchItemRoutes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, route Route, h http.HandlerFunc) {
		mux.Handle(pattern, labelRoute(route, h))
	}
	handle("GET /v1.0/groups", RouteGroups, t.admit(costList, t.handleGroups))
	handle("GET /v1.0/groups/{id}/drive", RouteDrive, t.admit(costSingleItem, t.handleDrive))
	handle("GET /v1.0/teams/{id}/channels", RouteChannels, t.admit(costList, t.handleChannels))
	handle("GET /v1.0/teams/{id}/channels/{channelId}/filesFolder", RouteFilesFolder, t.admit(costSingleItem, t.handleFilesFolder))
	handle("GET /v1.0/drives/{driveId}", RouteDriveByID, t.admit(costSingleItem, t.handleDriveByID))
	handle("/", RouteOther, t.handleUnknown)
	return mux
}

// handleBatch runs the requests of a JSON batch one after the other and
// returns their responses in one 200 response, each with its own status,
// headers and body.
func (t *Tenant) handleBatch(w http.ResponseWriter, r *http.Request) {
	var in batchRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBatchBody+1))
	if err == nil && len(body) > maxBatchBody {
		err = fmt.Errorf("body exceeds %d bytes", maxBatchBody)
	}
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		t.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
		return
	}
	if n := len(in.Requests); n == 0 || n > maxBatchRequests {
		t.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Number of batch request steps exceeds the maximum value of %d.", maxBatchRequests))
		return
	}
	seen := map[string]bool{}
	for _, item := range in.Requests {
		if item.ID == "" || seen[item.ID] {
			t.writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Batch request ids must be present and unique.")
			return
		}
		seen[item.ID] = true
	}

	out := batchResponse{Responses: make([]batchResponseItem, 0, len(in.Requests))}
	for _, item := range in.Requests {
		out.Responses = append(out.Responses, t.serveBatchItem(r, item))
	}
	w.Header().Set("Content-Type", graphContentType)
	writeJSON(w, t.log, http.StatusOK, out)
}

// serveBatchItem runs one request of a batch with the batch's token.
func (t *Tenant) serveBatchItem(outer *http.Request, item batchRequestItem) batchResponseItem {
	if item.Method != http.MethodGet {
		return t.batchItemError(item.ID, http.StatusMethodNotAllowed, "MethodNotAllowed", "The simulated tenant supports only GET inside a batch.")
	}
	path := item.URL
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	label := &routeLabel{route: RouteOther}
	ctx := context.WithValue(outer.Context(), routeLabelKey{}, label)
	inner, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v1.0"+path, nil)
	if err != nil {
		return t.batchItemError(item.ID, http.StatusBadRequest, "BadRequest", "Invalid request URL.")
	}
	inner.Header.Set("Authorization", outer.Header.Get("Authorization"))

	rec := &itemRecorder{header: http.Header{}, status: http.StatusOK}
	t.items.ServeHTTP(rec, inner)

	t.mu.Lock()
	t.stats.Requests[RouteStatus{Route: label.route, Status: rec.status}]++
	t.stats.BatchItems++
	t.mu.Unlock()

	headers := make(map[string]string, len(rec.header))
	for name := range rec.header {
		headers[name] = rec.header.Get(name)
	}
	var itemBody any
	if json.Valid(rec.body.Bytes()) {
		itemBody = json.RawMessage(rec.body.Bytes())
	} else if rec.body.Len() > 0 {
		// Graph sends a body that is not JSON as a base64 string.
		itemBody = rec.body.Bytes()
	}
	return batchResponseItem{ID: item.ID, Status: rec.status, Headers: headers, Body: itemBody}
}

func (t *Tenant) batchItemError(id string, status int, code, message string) batchResponseItem {
	body, _ := json.Marshal(graphError{Error: graphErrorBody{Code: code, Message: message}})
	return batchResponseItem{ID: id, Status: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: json.RawMessage(body)}
}

// itemRecorder is the http.ResponseWriter of one request inside a batch.
type itemRecorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *itemRecorder) Header() http.Header { return r.header }

func (r *itemRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
}

func (r *itemRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.body.Write(b)
}
