package scanner

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func newTestGraph(t *testing.T, cfg Config) *GraphClient {
	t.Helper()
	g, err := NewGraphClient(cfg)
	if err != nil {
		t.Fatalf("NewGraphClient: %v", err)
	}
	return g
}

// listAll collects the ids of every page that ListTeams passes to its
// callback.
func listAll(t *testing.T, g *GraphClient) ([][]string, error) {
	t.Helper()
	var pages [][]string
	err := g.ListTeams(context.Background(), func(page []Team) error {
		ids := make([]string, len(page))
		for i, team := range page {
			ids[i] = team.ID
		}
		pages = append(pages, ids)
		return nil
	})
	return pages, err
}

func TestListTeamsPaging(t *testing.T) {
	tests := []struct {
		name      string
		pages     [][]Team
		wantPages [][]string
	}{
		{
			name:      "one page",
			pages:     [][]Team{{{ID: "a"}, {ID: "b"}}},
			wantPages: [][]string{{"a", "b"}},
		},
		{
			name:      "three pages",
			pages:     [][]Team{{{ID: "a"}}, {{ID: "b"}, {ID: "c"}}, {{ID: "d"}}},
			wantPages: [][]string{{"a"}, {"b", "c"}, {"d"}},
		},
		{
			name:      "duplicate ids across pages",
			pages:     [][]Team{{{ID: "a"}, {ID: "b"}}, {{ID: "b"}, {ID: "c"}}, {{ID: "a"}}},
			wantPages: [][]string{{"a", "b"}, {"c"}},
		},
		{
			name:      "duplicate id within a page",
			pages:     [][]Team{{{ID: "a"}, {ID: "a"}, {ID: "b"}}},
			wantPages: [][]string{{"a", "b"}},
		},
		{
			name:      "group without id",
			pages:     [][]Team{{{ID: ""}, {ID: "a"}}},
			wantPages: [][]string{{"a"}},
		},
		{
			name:      "empty page in the middle",
			pages:     [][]Team{{{ID: "a"}}, {}, {{ID: "b"}}},
			wantPages: [][]string{{"a"}, {"b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.pages = tt.pages
			g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))

			got, err := listAll(t, g)
			if err != nil {
				t.Fatalf("ListTeams: %v", err)
			}
			if !slices.EqualFunc(got, tt.wantPages, slices.Equal) {
				t.Errorf("pages = %v, want %v", got, tt.wantPages)
			}
			if fg.listCalls != len(tt.pages) {
				t.Errorf("list requests = %d, want %d", fg.listCalls, len(tt.pages))
			}
		})
	}
}

func TestListTeamsStopsOnBadNextLink(t *testing.T) {
	tests := []struct {
		name      string
		nextLink  func(fg *fakeGraph, i int) string
		wantErr   string
		wantCalls int
	}{
		{
			name: "repeated link",
			nextLink: func(fg *fakeGraph, i int) string {
				return fg.pageURL(1)
			},
			wantErr:   "list teams page 3: repeated @odata.nextLink",
			wantCalls: 2,
		},
		{
			name: "link back to the first page",
			nextLink: func(fg *fakeGraph, i int) string {
				if i == 0 {
					return fg.pageURL(1)
				}
				return fg.baseURL() + "/groups?" + teamsQuery
			},
			wantErr:   "list teams page 3: repeated @odata.nextLink",
			wantCalls: 2,
		},
		{
			name: "link to another host",
			nextLink: func(fg *fakeGraph, i int) string {
				return "https://graph.example.invalid/v1.0/groups?page=1"
			},
			wantErr:   "list teams page 2: @odata.nextLink points to https://graph.example.invalid",
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.pages = [][]Team{{{ID: "a"}}, {{ID: "b"}}}
			fg.nextLink = func(i int) string { return tt.nextLink(fg, i) }
			g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))

			_, err := listAll(t, g)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ListTeams error = %v, want it to contain %q", err, tt.wantErr)
			}
			if fg.listCalls != tt.wantCalls {
				t.Errorf("list requests = %d, want %d", fg.listCalls, tt.wantCalls)
			}
		})
	}
}

func TestListTeamsErrorNamesPage(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{{{ID: "a"}}, {{ID: "b"}}, {{ID: "c"}}}
	fg.listFail = func(w http.ResponseWriter, i int) bool {
		if i != 1 {
			return false
		}
		writeGraphError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return true
	}
	g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))

	pages, err := listAll(t, g)
	if err == nil {
		t.Fatal("ListTeams returned no error")
	}
	if !strings.HasPrefix(err.Error(), "list teams page 2: ") {
		t.Errorf("error = %q, want it to start with the page", err)
	}
	var graphErr *GraphError
	if !errors.As(err, &graphErr) {
		t.Fatalf("error %v is not a *GraphError", err)
	}
	if graphErr.Status != http.StatusForbidden || graphErr.Code != "Authorization_RequestDenied" {
		t.Errorf("GraphError = %+v, want 403 Authorization_RequestDenied", graphErr)
	}
	if graphErr.RequestID != "req-Authorization_RequestDenied" {
		t.Errorf("RequestID = %q, want it from the request-id header", graphErr.RequestID)
	}
	if len(pages) != 1 {
		t.Errorf("callback saw %d pages before the error, want 1", len(pages))
	}
}

func TestListTeamsCallbackErrorStops(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{{{ID: "a"}}, {{ID: "b"}}}
	g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))
	stop := errors.New("stop here")

	err := g.ListTeams(context.Background(), func([]Team) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("ListTeams error = %v, want the callback's error", err)
	}
	if fg.listCalls != 1 {
		t.Errorf("list requests = %d, want 1", fg.listCalls)
	}
}

func TestGetDrive(t *testing.T) {
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter)
		wantQuota  Quota
		wantStatus int
		wantCode   string
	}{
		{
			name: "quota",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusOK, map[string]any{
					"id": "b!x", "driveType": "documentLibrary",
					"quota": map[string]any{"total": 100, "used": 40, "remaining": 60, "deleted": 5, "state": "nearing"},
				})
			},
			wantQuota: Quota{Total: 100, Used: 40, Remaining: 60, Deleted: 5, State: "nearing"},
		},
		{
			name: "no quota facet",
			answer: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusOK, map[string]any{"id": "b!x", "driveType": "documentLibrary"})
			},
			wantQuota: Quota{},
		},
		{
			name: "not found",
			answer: func(w http.ResponseWriter) {
				writeGraphError(w, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
			},
			wantStatus: http.StatusNotFound,
			wantCode:   "itemNotFound",
		},
		{
			name: "error body that is not JSON",
			answer: func(w http.ResponseWriter) {
				http.Error(w, "<html>bad request</html>", http.StatusBadRequest)
			},
			wantStatus: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.drive = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) { tt.answer(w) }
			g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))

			drive, err := g.GetDrive(context.Background(), "group-1")
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("GetDrive: %v", err)
				}
				if drive.Quota != tt.wantQuota {
					t.Errorf("Quota = %+v, want %+v", drive.Quota, tt.wantQuota)
				}
				return
			}

			var graphErr *GraphError
			if !errors.As(err, &graphErr) {
				t.Fatalf("GetDrive error = %v, want a *GraphError", err)
			}
			if graphErr.Status != tt.wantStatus || graphErr.Code != tt.wantCode {
				t.Errorf("GraphError = %+v, want status %d code %q", graphErr, tt.wantStatus, tt.wantCode)
			}
			if !strings.HasPrefix(err.Error(), "get drive of group group-1: HTTP ") {
				t.Errorf("error = %q, want it to name the group and the status", err)
			}
		})
	}
}

func TestGraphRequestHeaders(t *testing.T) {
	fg := newFakeGraph(t)
	var auth string
	fg.drive = func(w http.ResponseWriter, r *http.Request, id string, _ int) {
		auth = r.Header.Get("Authorization")
		driveOK(w, id)
	}
	g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))

	if _, err := g.GetDrive(context.Background(), "group-1"); err != nil {
		t.Fatalf("GetDrive: %v", err)
	}
	if auth != "Bearer tok-0" {
		t.Errorf("Authorization = %q, want Bearer tok-0", auth)
	}
	if !fg.userAgents["NONISV|storagebot|storagebot/1.2.3"] || len(fg.userAgents) != 1 {
		t.Errorf("User-Agent = %v, want NONISV|storagebot|storagebot/1.2.3", fg.userAgents)
	}
}

func TestNewGraphClientRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"http on a remote host", func(c *Config) { c.BaseURL = "http://graph.microsoft.com/v1.0" }},
		{"relative URL", func(c *Config) { c.BaseURL = "/v1.0" }},
		{"URL with query", func(c *Config) { c.BaseURL = "https://graph.microsoft.com/v1.0?x=1" }},
		{"missing tokens", func(c *Config) { c.Tokens = nil }},
		{"negative max attempts", func(c *Config) { c.MaxAttempts = -1 }},
		{"too many attempts", func(c *Config) { c.MaxAttempts = maxMaxAttempts + 1 }},
		{"negative delay", func(c *Config) { c.BaseDelay = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Tokens: staticTokens("t")}
			tt.mutate(&cfg)
			if _, err := NewGraphClient(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewGraphClient error = %v, want ErrInvalidConfig", err)
			}
		})
	}

	valid := []string{"", "https://graph.microsoft.us/v1.0/", "http://127.0.0.1:8080/v1.0", "http://localhost/v1.0"}
	for _, base := range valid {
		t.Run("valid "+base, func(t *testing.T) {
			if _, err := NewGraphClient(Config{BaseURL: base, Tokens: staticTokens("t")}); err != nil {
				t.Errorf("NewGraphClient(%q) = %v", base, err)
			}
		})
	}
}
