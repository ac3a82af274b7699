package scanner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGraph serves GET /groups in pages and GET /groups/{id}/drive with a
// behaviour chosen per group. It counts requests and drive requests in
// flight.
type fakeGraph struct {
	t       *testing.T
	server  *httptest.Server
	handler http.Handler

	// pages are the Teams of each page of GET /groups. Page i links to page
	// i+1 unless nextLink overrides it.
	pages [][]Team
	// nextLink, when set, returns the @odata.nextLink of page i (from 0);
	// "" ends the listing.
	nextLink func(i int) string
	// listFail, when set, may write the response for page i (from 0)
	// instead of the list, and returns whether it did.
	listFail func(w http.ResponseWriter, i int) bool
	// drive writes the response to GET /groups/{id}/drive for the n-th request (from 1)
	// for that id. Nil means driveOK.
	drive func(w http.ResponseWriter, r *http.Request, id string, n int)
	// acceptToken, when set, makes every request whose token it rejects
	// fail with 401.
	acceptToken func(r *http.Request, token string) bool
	// hold, when set, runs inside every drive request before its response.
	hold func()
	// batchFail, when set, may write the response to a JSON batch with the
	// given request URLs instead of running it, and returns whether it did.
	batchFail func(w http.ResponseWriter, urls []string) bool

	mu          sync.Mutex
	batchCalls  int
	batchSizes  []int
	listCalls   int
	driveCalls  map[string]int
	userAgents  map[string]bool
	inflight    int
	maxInflight int
}

func newFakeGraph(t *testing.T) *fakeGraph {
	t.Helper()
	fg := &fakeGraph{t: t, driveCalls: make(map[string]int), userAgents: make(map[string]bool)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0/groups", fg.serveGroups)
	mux.HandleFunc("GET /v1.0/groups/{id}/drive", fg.serveDrive)
	mux.HandleFunc("POST /v1.0/$batch", fg.serveBatch)
	fg.handler = fg.checkToken(mux)
	fg.server = httptest.NewServer(fg.handler)
	t.Cleanup(fg.server.Close)
	return fg
}

func (fg *fakeGraph) baseURL() string { return fg.server.URL + "/v1.0" }

func (fg *fakeGraph) checkToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fg.mu.Lock()
		fg.userAgents[r.UserAgent()] = true
		fg.mu.Unlock()

		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || (fg.acceptToken != nil && !fg.acceptToken(r, token)) {
			if strings.HasSuffix(r.URL.Path, "/drive") {
				fg.countDrive(r)
			}
			writeGraphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// countDrive counts a drive request that checkToken rejects, so that
// attempts include 401 answers.
func (fg *fakeGraph) countDrive(r *http.Request) {
	parts := strings.Split(strings.TrimSuffix(r.URL.Path, "/drive"), "/")
	fg.mu.Lock()
	fg.driveCalls[parts[len(parts)-1]]++
	fg.mu.Unlock()
}

func (fg *fakeGraph) serveGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if got := q.Get("$filter"); got != "resourceProvisioningOptions/Any(x:x eq 'Team')" {
		fg.t.Errorf("$filter = %q, want the Team filter", got)
	}
	if got := q.Get("$select"); got != "id,displayName" {
		fg.t.Errorf("$select = %q, want id,displayName", got)
	}
	if got := q.Get("$top"); got != "999" {
		fg.t.Errorf("$top = %q, want 999", got)
	}
	page, _ := strconv.Atoi(q.Get("page"))

	fg.mu.Lock()
	fg.listCalls++
	fg.mu.Unlock()
	if fg.listFail != nil && fg.listFail(w, page) {
		return
	}
	if page >= len(fg.pages) {
		writeGraphError(w, http.StatusBadRequest, "badRequest", "no such page")
		return
	}

	body := map[string]any{"value": fg.pages[page]}
	next := ""
	if fg.nextLink != nil {
		next = fg.nextLink(page)
	} else if page+1 < len(fg.pages) {
		next = fg.pageURL(page + 1)
	}
	if next != "" {
		body["@odata.nextLink"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// pageURL is the nextLink of page i, shaped like Graph's with the query.
func (fg *fakeGraph) pageURL(i int) string {
	return fmt.Sprintf("%s/groups?$filter=resourceProvisioningOptions/Any(x:x%%20eq%%20'Team')&$select=id,displayName&$top=999&page=%d", fg.baseURL(), i)
}

func (fg *fakeGraph) serveDrive(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	fg.mu.Lock()
	fg.driveCalls[id]++
	n := fg.driveCalls[id]
	fg.inflight++
	fg.maxInflight = max(fg.maxInflight, fg.inflight)
	fg.mu.Unlock()
	defer func() {
		fg.mu.Lock()
		fg.inflight--
		fg.mu.Unlock()
	}()

	if fg.hold != nil {
		fg.hold()
	}
	if fg.drive != nil {
		fg.drive(w, r, id, n)
		return
	}
	driveOK(w, id)
}

// serveBatch runs each request of a JSON batch through the fake's own
// handler, one after the other, and collects the answers as Graph does.
func (fg *fakeGraph) serveBatch(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Requests []struct {
			ID     string `json:"id"`
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Requests) == 0 || len(in.Requests) > 20 {
		writeGraphError(w, http.StatusBadRequest, "invalidRequest", "invalid batch")
		return
	}
	fg.mu.Lock()
	fg.batchCalls++
	fg.batchSizes = append(fg.batchSizes, len(in.Requests))
	fg.mu.Unlock()
	if fg.batchFail != nil {
		urls := make([]string, len(in.Requests))
		for i, item := range in.Requests {
			urls[i] = item.URL
		}
		if fg.batchFail(w, urls) {
			return
		}
	}

	responses := make([]map[string]any, 0, len(in.Requests))
	for _, item := range in.Requests {
		if !strings.HasPrefix(item.URL, "/") || item.Method != http.MethodGet {
			fg.t.Errorf("batch item %s = %s %q, want GET with a path from /", item.ID, item.Method, item.URL)
		}
		inner := httptest.NewRequestWithContext(r.Context(), item.Method, "/v1.0"+item.URL, nil)
		inner.Header.Set("Authorization", r.Header.Get("Authorization"))
		rec := httptest.NewRecorder()
		fg.handler.ServeHTTP(rec, inner)

		headers := map[string]string{}
		for _, name := range []string{"Retry-After", "request-id", "Content-Type"} {
			if v := rec.Header().Get(name); v != "" {
				headers[name] = v
			}
		}
		// Graph sends a body that is not JSON as a base64 string.
		var body any = json.RawMessage(rec.Body.Bytes())
		if !json.Valid(rec.Body.Bytes()) {
			body = rec.Body.Bytes()
		}
		responses = append(responses, map[string]any{
			"id": item.ID, "status": rec.Code, "headers": headers, "body": body,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": responses})
}

func (fg *fakeGraph) calls(id string) int {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	return fg.driveCalls[id]
}

// driveOK writes a drive whose used bytes derive from the id's length,
// so that the order of a scan is predictable.
func driveOK(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id":        "b!" + id,
		"driveType": "documentLibrary",
		"quota": map[string]any{
			"total": 1 << 40, "used": 1000 * len(id), "remaining": 1<<40 - 1000*len(id),
			"deleted": 7, "state": "normal",
		},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeGraphError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("request-id", "req-"+code)
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}

// dropConnection closes the connection without a response, which the client
// sees as a network error.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack connection: %v", err)
		return
	}
	_ = conn.Close()
}

// teams returns n Teams with ids prefix-0 ... prefix-(n-1).
func teams(prefix string, n int) []Team {
	out := make([]Team, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		out[i] = Team{ID: id, DisplayName: "Team " + id}
	}
	return out
}

// staticTokens always returns the same token and cannot refresh it.
type staticTokens string

func (s staticTokens) Token(context.Context) (string, error) { return string(s), nil }

// rotatingTokens returns tok-<generation>. Invalidate with the current token
// moves to the next generation, as entra.Client does.
type rotatingTokens struct {
	mu            sync.Mutex
	generation    int
	refreshes     int
	invalidations int
}

func (r *rotatingTokens) Token(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("tok-%d", r.generation), nil
}

func (r *rotatingTokens) Invalidate(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invalidations++
	if token == fmt.Sprintf("tok-%d", r.generation) {
		r.generation++
		r.refreshes++
	}
}

// sleepRecorder is an injected Sleep that returns at once and records each
// wait.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig returns a Config for fg that never sleeps and uses a fixed
// jitter of one half.
func testConfig(fg *fakeGraph, sleeper *sleepRecorder) Config {
	return Config{
		BaseURL:  fg.baseURL(),
		Tokens:   staticTokens("tok-0"),
		Version:  "1.2.3",
		TenantID: "tenant-1",
		Logger:   slog.New(slog.DiscardHandler),
		Now:      func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		Sleep:    sleeper.sleep,
		Jitter:   func() float64 { return 0.5 },
	}
}
