package simtenant

import (
	"context"
	"fmt"
	"maps"
	"net/http"
)

// Route names one endpoint of the sim in Stats.
type Route string

// Routes counted in Stats.
const (
	RouteOpenIDConfiguration Route = "entra.openid_configuration"
	RouteKeys                Route = "entra.keys"
	RouteToken               Route = "entra.token"
	RouteGroups              Route = "graph.groups"
	RouteDrive               Route = "graph.drive"
	RouteChannels            Route = "graph.channels"
	RouteFilesFolder         Route = "graph.files_folder"
	RouteDriveByID           Route = "graph.drive_by_id"
	// RouteBatch counts POST /$batch requests. The requests inside a batch
	// count under their own routes as well.
	RouteBatch              Route = "graph.batch"
	RouteCreateConversation Route = "connector.create_conversation"
	RouteSendActivity       Route = "connector.send_activity"
	RouteReplyActivity      Route = "connector.reply_activity"
	RouteUpdateActivity     Route = "connector.update_activity"
	// RouteOther counts requests that matched no endpoint, including a known
	// path with the wrong method.
	RouteOther Route = "other"
)

// RouteStatus is one cell of the request counters: a route and the HTTP
// status of its response.
type RouteStatus struct {
	Route  Route
	Status int
}

// Stats is a snapshot of the sim's counters since Start.
type Stats struct {
	// Requests counts responses by route and status, the requests inside
	// JSON batches included.
	Requests map[RouteStatus]int
	// HTTPRequests counts the HTTP requests the server received: a JSON
	// batch counts once, and token requests count too.
	HTTPRequests int
	// BatchItems counts the requests inside JSON batches.
	BatchItems int
	// Throttled counts 429 responses sent by the throttles: the request
	// bucket, the concurrency cap and the resource-unit budget.
	Throttled int
	// BudgetThrottled counts the 429 responses of the resource-unit budget
	// alone.
	BudgetThrottled int
	// Faults counts 500 and 503 responses sent by the fault injector.
	Faults int
	// TokensIssued counts access tokens issued by the token endpoint.
	TokensIssued int
}

// Count returns how many responses to route had status.
func (s Stats) Count(route Route, status int) int {
	return s.Requests[RouteStatus{Route: route, Status: status}]
}

// Total returns how many responses to route were sent, whatever the status.
func (s Stats) Total(route Route) int {
	n := 0
	for k, v := range s.Requests {
		if k.Route == route {
			n += v
		}
	}
	return n
}

func newStats() Stats {
	return Stats{Requests: map[RouteStatus]int{}}
}

func (s Stats) clone() Stats {
	s.Requests = maps.Clone(s.Requests)
	return s
}

// idSource hands out request ids and activity ids. Ids are sequential so that
// a run's log lines are reproducible.
type idSource struct {
	request  uint64
	activity uint64
}

// firstActivityID has the 13 digits of the ids that Teams and the Agents
// Playground return, which look like Unix milliseconds.
const firstActivityID = 1796413360000

func (s *idSource) nextRequestID() string {
	s.request++
	return fmt.Sprintf("5e1a0000-0000-4000-8000-%012x", s.request)
}

func (s *idSource) nextActivityID() string {
	s.activity++
	return fmt.Sprintf("%d", firstActivityID+s.activity)
}

type routeLabelKey struct{}

// routeLabel is filled in by the matched route so that instrument can count
// the request under that route's name.
type routeLabel struct{ route Route }

func labelRoute(route Route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if label, ok := r.Context().Value(routeLabelKey{}).(*routeLabel); ok {
			label.route = route
		}
		h.ServeHTTP(w, r)
	})
}

// instrument counts every request by route and final status.
func (t *Tenant) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		label := &routeLabel{route: RouteOther}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeLabelKey{}, label)))

		t.mu.Lock()
		t.stats.Requests[RouteStatus{Route: label.route, Status: rec.status}]++
		t.stats.HTTPRequests++
		t.mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status = status
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
