package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/botauth"
	"github.com/storagebot/storagebot/botauth/botauthtest"
	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/connector"
	"github.com/storagebot/storagebot/scanner"
)

// servedTenant is the tenant of every captured activity in testdata.
const servedTenant = "00000000-0000-0000-0000-0000000000001"

// waitLimit bounds how long a test waits for a background reply before it
// fails; replies normally arrive in milliseconds.
const waitLimit = 10 * time.Second

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// sentRequest is one request the fake connector received.
type sentRequest struct {
	method      string
	escapedPath string
	body        []byte
}

// sentReply is the part of a reply activity the tests check.
type sentReply struct {
	Type         string `json:"type"`
	Text         string `json:"text"`
	ReplyToID    string `json:"replyToId"`
	Conversation struct {
		ID string `json:"id"`
	} `json:"conversation"`
	Attachments []struct {
		ContentType string          `json:"contentType"`
		Content     json.RawMessage `json:"content"`
	} `json:"attachments"`
}

// fakeConnector is a Bot Connector that returns 201 with an id and hands
// every request to the test through a channel.
type fakeConnector struct {
	server   *httptest.Server
	requests chan sentRequest

	mu    sync.Mutex
	count int
}

func newFakeConnector(t *testing.T) *fakeConnector {
	t.Helper()
	f := &fakeConnector{requests: make(chan sentRequest, 64)}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.count++
		f.mu.Unlock()
		f.requests <- sentRequest{method: r.Method, escapedPath: r.URL.EscapedPath(), body: body}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"1796413360383"}`)
	}))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeConnector) received() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// next returns the next request, failing the test after waitLimit.
func (f *fakeConnector) next(t *testing.T) sentRequest {
	t.Helper()
	select {
	case r := <-f.requests:
		return r
	case <-time.After(waitLimit):
		t.Fatal("no request reached the fake connector")
		return sentRequest{}
	}
}

// fakeSource returns a fixed result or error and counts calls. When
// release is set, Get blocks until it is closed or ctx ends.
type fakeSource struct {
	result  *scanner.Result
	err     error
	started chan struct{}
	release chan struct{}

	mu    sync.Mutex
	calls int
}

func (s *fakeSource) Get(ctx context.Context) (*scanner.Result, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()

	if s.release != nil {
		s.started <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.result, s.err
}

func (s *fakeSource) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// acceptAll is an Authenticator for tests of a bot with an app id.
type acceptAll struct{}

func (acceptAll) Authenticate(context.Context, string, *schema.Activity) error { return nil }

type rejectAll struct{}

func (rejectAll) Authenticate(context.Context, string, *schema.Activity) error {
	return errors.New("token signature invalid")
}

func measured(id, name string, used int64) scanner.TeamUsage {
	return scanner.TeamUsage{
		Team:     scanner.Team{ID: id, DisplayName: name},
		Outcome:  scanner.OutcomeMeasured,
		Quota:    scanner.Quota{Total: 1 << 40, Used: used, Remaining: 1<<40 - used},
		Attempts: 1,
	}
}

func testResult() *scanner.Result {
	return &scanner.Result{
		TenantID:   servedTenant,
		StartedAt:  time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 12, 4, 19, 1, 0, 0, time.UTC),
		Teams: []scanner.TeamUsage{
			measured("g-mkt", "Marketing", 10<<30),
			measured("g-lib-1", "The Library", 5<<30),
			measured("g-lib-2", "The Library", 3<<30),
			measured("g-cafe", "Café Ünicorn", 2<<30),
			measured("g-bob", "Bob’s Team", 1<<30),
			measured("g-ops", "Marketing Ops", 1<<29),
			{Team: scanner.Team{ID: "g-new", DisplayName: "New Team"}, Outcome: scanner.OutcomeNoDrive, Reason: "HTTP 404", Attempts: 1},
		},
	}
}

func teamByID(t *testing.T, r *scanner.Result, id string) scanner.TeamUsage {
	t.Helper()
	for _, team := range r.Teams {
		if team.Team.ID == id {
			return team
		}
	}
	t.Fatalf("no team %s in the test result", id)
	return scanner.TeamUsage{}
}

// harness is a Bot in local development mode behind a gin engine, with a
// fake connector and a fake source.
type harness struct {
	bot       *Bot
	engine    *gin.Engine
	connector *fakeConnector
	source    *fakeSource
	logs      *syncBuffer
}

// syncBuffer is a goroutine-safe log sink.
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

// newHarness builds a bot; edit may change the Config before New.
func newHarness(t *testing.T, source *fakeSource, edit func(*Config)) *harness {
	t.Helper()
	if source == nil {
		source = &fakeSource{result: testResult()}
	}
	fake := newFakeConnector(t)
	logs := &syncBuffer{}
	cfg := Config{
		TenantIDs:        []string{servedTenant},
		LocalDevelopment: true,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Source:           source,
		Roles:            allAdmins(),
		Connector:        connector.New(connector.Config{HTTPClient: fake.server.Client(), MaxAttempts: 1}),
	}
	if edit != nil {
		edit(&cfg)
	}

	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New failed: %v", err)
	}
	engine := gin.New()
	b.Register(engine)
	h := &harness{bot: b, engine: engine, connector: fake, source: source, logs: logs}
	t.Cleanup(func() { h.shutdown(t) })
	return h
}

// shutdown waits for every background reply, so that counts read after it
// are final.
func (h *harness) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.bot.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown failed: %v", err)
	}
}

func (h *harness) post(t *testing.T, body []byte, authorization string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.engine.ServeHTTP(rec, req)
	return rec
}

// loadActivity reads a captured activity and points its serviceUrl at
// serviceURL.
func loadActivity(t *testing.T, name, serviceURL string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	var a map[string]any
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	a["serviceUrl"] = serviceURL
	return a
}

// messageWithText returns the captured personal message with text.
func (h *harness) messageWithText(t *testing.T, text string) map[string]any {
	a := loadActivity(t, "personal-message.json", h.connector.server.URL)
	a["text"] = text
	return a
}

func encode(t *testing.T, a map[string]any) []byte {
	t.Helper()
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("encode activity: %v", err)
	}
	return data
}

// decodeReply parses a reply activity and checks the parts every card
// reply shares: a message without text and with one Adaptive Card.
func decodeReply(t *testing.T, r sentRequest) sentReply {
	t.Helper()
	var reply sentReply
	if err := json.Unmarshal(r.body, &reply); err != nil {
		t.Fatalf("reply is not JSON: %v", err)
	}
	if reply.Type != "message" {
		t.Errorf("reply type = %q, want message", reply.Type)
	}
	if reply.Text != "" {
		t.Errorf("reply text = %q, want none next to a card", reply.Text)
	}
	if len(reply.Attachments) != 1 || reply.Attachments[0].ContentType != cards.ContentType {
		t.Fatalf("reply attachments = %+v, want one Adaptive Card", reply.Attachments)
	}
	return reply
}

// assertCard compares a sent card with want, as JSON values.
func assertCard(t *testing.T, got json.RawMessage, want cards.AdaptiveCard) {
	t.Helper()
	wantJSON, err := json.Marshal(cards.Attachment(want).Content)
	if err != nil {
		t.Fatalf("encode expected card: %v", err)
	}
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Fatalf("sent card is not JSON: %v", err)
	}
	if err := json.Unmarshal(wantJSON, &wantValue); err != nil {
		t.Fatalf("expected card is not JSON: %v", err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Errorf("card mismatch\n got: %s\nwant: %s", got, wantJSON)
	}
}

// replyCard posts a and returns the single card sent in reply.
func (h *harness) replyCard(t *testing.T, a map[string]any) json.RawMessage {
	t.Helper()
	if rec := h.post(t, encode(t, a), ""); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	reply := decodeReply(t, h.connector.next(t))
	return reply.Attachments[0].Content
}

func TestCapturedActivitiesReplyOnce(t *testing.T) {
	result := testResult()
	tests := []struct {
		name     string
		file     string
		edit     func(a map[string]any)
		wantPath string
		wantCard cards.AdaptiveCard
	}{
		{
			name:     "personal message",
			file:     "personal-message.json",
			wantPath: "/v3/conversations/2b65766b-90d5-452b-ac20-004bb6a02139/activities/f594fa18-9087-40f3-a034-992c7a3d535d",
			wantCard: topPage(result, 10),
		},
		{
			name:     "card submit with unknown command",
			file:     "personal-card-submit.json",
			edit:     func(a map[string]any) { a["value"] = map[string]any{"cmd": "rescan"} },
			wantPath: "/v3/conversations/2b65766b-90d5-452b-ac20-004bb6a02139/activities/2a14fa38-1b14-4f70-af83-783b8ad3266b",
			wantCard: cards.Help(Commands()),
		},
		{
			name:     "card submit usage button",
			file:     "personal-card-submit.json",
			edit:     func(a map[string]any) { a["value"] = map[string]any{"cmd": "usage", "teamId": "g-cafe"} },
			wantPath: "/v3/conversations/2b65766b-90d5-452b-ac20-004bb6a02139/activities/2a14fa38-1b14-4f70-af83-783b8ad3266b",
			wantCard: cards.Usage(teamByID(t, result, "g-cafe"), result),
		},
		{
			name:     "messageBack value as JSON string",
			file:     "personal-card-submit.json",
			edit:     func(a map[string]any) { a["value"] = `{"cmd":"top","n":3}` },
			wantPath: "/v3/conversations/2b65766b-90d5-452b-ac20-004bb6a02139/activities/2a14fa38-1b14-4f70-af83-783b8ad3266b",
			wantCard: topPage(result, 3),
		},
		{
			name:     "channel mention in a thread",
			file:     "channel-mention-message.json",
			wantPath: "/v3/conversations/team-id%3Bmessageid%3D1796413366245/activities/e1819735-4452-4093-b268-acaa7bb88ddc",
			wantCard: topPage(result, 10),
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, &fakeSource{result: testResult()}, nil)
			a := loadActivity(t, tt.file, h.connector.server.URL)
			if tt.edit != nil {
				tt.edit(a)
			}

			rec := h.post(t, encode(t, a), "")
			if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
				t.Fatalf("response = %d %q, want 200 with an empty body", rec.Code, rec.Body)
			}
			sent := h.connector.next(t)
			h.shutdown(t)

			if sent.method != http.MethodPost {
				t.Errorf("method = %s, want POST", sent.method)
			}
			if sent.escapedPath != tt.wantPath {
				t.Errorf("path = %s, want %s", sent.escapedPath, tt.wantPath)
			}
			reply := decodeReply(t, sent)
			if reply.ReplyToID != a["id"] {
				t.Errorf("replyToId = %q, want %q", reply.ReplyToID, a["id"])
			}
			if want := a["conversation"].(map[string]any)["id"]; reply.Conversation.ID != want {
				t.Errorf("conversation id = %q, want %q", reply.Conversation.ID, want)
			}
			assertCard(t, reply.Attachments[0].Content, tt.wantCard)
			if n := h.connector.received(); n != 1 {
				t.Errorf("connector received %d requests, want 1", n)
			}
			if !strings.Contains(h.logs.String(), "reply_id=1796413360383") {
				t.Errorf("sent activity id not logged: %s", h.logs.String())
			}
		})
	}
}

func TestDuplicateDeliveryAnsweredOnce(t *testing.T) {
	h := newHarness(t, nil, nil)
	body := encode(t, loadActivity(t, "personal-message.json", h.connector.server.URL))

	for i := range 3 {
		if rec := h.post(t, body, ""); rec.Code != http.StatusOK {
			t.Fatalf("delivery %d: status = %d, want 200", i+1, rec.Code)
		}
	}
	h.shutdown(t)

	if n := h.connector.received(); n != 1 {
		t.Errorf("connector received %d requests, want 1", n)
	}
	if n := h.source.callCount(); n != 1 {
		t.Errorf("source called %d times, want 1", n)
	}
}

func TestRequestHygiene(t *testing.T) {
	tests := []struct {
		name       string
		body       func(serviceURL string) []byte
		wantStatus int
	}{
		{
			name: "body over the limit",
			body: func(serviceURL string) []byte {
				return []byte(`{"type":"message","text":"` + strings.Repeat("a", 2048) + `"}`)
			},
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		{
			name:       "malformed JSON",
			body:       func(string) []byte { return []byte(`{"type":"message",`) },
			wantStatus: http.StatusBadRequest,
		},
		{
			name:       "not an object",
			body:       func(string) []byte { return []byte(`["message"]`) },
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "missing type",
			body: func(serviceURL string) []byte {
				return []byte(`{"id":"1","text":"top","serviceUrl":"` + serviceURL + `"}`)
			},
			wantStatus: http.StatusBadRequest,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) { c.MaxBodyBytes = 1024 })

			rec := h.post(t, tt.body(h.connector.server.URL), "")
			h.shutdown(t)

			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Errorf("body = %q, want a JSON error", rec.Body)
			}
			if n := h.connector.received(); n != 0 {
				t.Errorf("connector received %d requests, want none", n)
			}
		})
	}
}

func TestUnroutedActivitiesNotAnswered(t *testing.T) {
	tests := []struct {
		name string
		file string
		typ  string
	}{
		{name: "personal installation update", file: "personal-installation-update.json"},
		{name: "channel installation update", file: "channel-installation-update.json"},
		{name: "personal conversation update", file: "personal-conversation-update.json"},
		{name: "channel conversation update", file: "channel-conversation-update.json"},
		{name: "message reaction", file: "personal-message.json", typ: "messageReaction"},
		{name: "typing", file: "personal-message.json", typ: "typing"},
		{name: "message update", file: "personal-message.json", typ: "messageUpdate"},
		{name: "invoke", file: "personal-message.json", typ: "invoke"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			a := loadActivity(t, tt.file, h.connector.server.URL)
			if tt.typ != "" {
				a["type"] = tt.typ
			}

			rec := h.post(t, encode(t, a), "")
			h.shutdown(t)

			if rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200", rec.Code)
			}
			if n := h.connector.received(); n != 0 {
				t.Errorf("connector received %d requests, want none", n)
			}
			if n := h.source.callCount(); n != 0 {
				t.Errorf("source called %d times, want none", n)
			}
		})
	}
}

func TestTenantCheck(t *testing.T) {
	refusal := cards.Message("Not available", "This bot does not serve your organization.")
	tests := []struct {
		name        string
		edit        func(a map[string]any)
		wantRefusal bool
	}{
		{
			name: "other tenant in channelData",
			edit: func(a map[string]any) {
				a["channelData"] = map[string]any{"tenant": map[string]any{"id": "11111111-1111-1111-1111-111111111111"}}
			},
			wantRefusal: true,
		},
		{
			name: "other tenant in conversation only",
			edit: func(a map[string]any) {
				delete(a, "channelData")
				a["conversation"].(map[string]any)["tenantId"] = "11111111-1111-1111-1111-111111111111"
			},
			wantRefusal: true,
		},
		{
			name:        "served tenant in conversation only",
			edit:        func(a map[string]any) { delete(a, "channelData") },
			wantRefusal: false,
		},
		{
			name: "served tenant in upper case",
			edit: func(a map[string]any) {
				a["channelData"] = map[string]any{"tenant": map[string]any{"id": strings.ToUpper(servedTenant)}}
			},
			wantRefusal: false,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			a := loadActivity(t, "personal-message.json", h.connector.server.URL)
			tt.edit(a)

			card := h.replyCard(t, a)
			h.shutdown(t)

			if tt.wantRefusal {
				assertCard(t, card, refusal)
				if n := h.source.callCount(); n != 0 {
					t.Errorf("source called %d times for a refused tenant, want none", n)
				}
				if !strings.Contains(h.logs.String(), "tenant_id=11111111") {
					t.Errorf("refused tenant not logged: %s", h.logs.String())
				}
				return
			}
			assertCard(t, card, topPage(testResult(), 10))
		})
	}
}

func TestServiceURLNotAllowedNeverReceives(t *testing.T) {
	tests := []struct {
		name  string
		local bool
	}{
		{name: "loopback without local development", local: false},
		{name: "loopback is fine only in local development", local: true},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) {
				if !tt.local {
					c.LocalDevelopment = false
					c.AppID = "00000000-0000-0000-0000-00000000000b"
					c.Authenticator = acceptAll{}
				}
			})
			a := loadActivity(t, "personal-message.json", h.connector.server.URL)

			rec := h.post(t, encode(t, a), "Bearer test")
			h.shutdown(t)

			wantStatus, wantSent := http.StatusUnauthorized, 0
			if tt.local {
				wantStatus, wantSent = http.StatusOK, 1
			}
			if rec.Code != wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, wantStatus)
			}
			if n := h.connector.received(); n != wantSent {
				t.Errorf("connector received %d requests, want %d", n, wantSent)
			}
		})
	}
}

func TestCheckServiceURL(t *testing.T) {
	tests := []struct {
		url           string
		allowLoopback bool
		want          bool
	}{
		{url: "https://smba.trafficmanager.net/emea/", want: true},
		{url: "https://smba.trafficmanager.net/teams", want: true},
		{url: "https://SMBA.trafficmanager.net/amer/", want: true},
		{url: "https://smba.trafficmanager.net:443/emea/", want: true},
		{url: "https://smba.infra.gcc.teams.microsoft.com/teams", want: true},
		{url: "https://smba.infra.gov.teams.microsoft.us/teams", want: true},
		{url: "https://smba.infra.dod.teams.microsoft.us/teams", want: true},
		{url: "http://smba.trafficmanager.net/emea/", want: false},
		{url: "https://smba.trafficmanager.net:8443/emea/", want: false},
		{url: "https://smba.trafficmanager.net.example.com/emea/", want: false},
		{url: "https://evil.example/smba.trafficmanager.net/", want: false},
		{url: "https://user@smba.trafficmanager.net/emea/", want: false},
		{url: "https://smba.trafficmanager.net/emea/?next=x", want: false},
		{url: "", want: false},
		{url: "http://localhost:56150/_connector", want: false},
		{url: "http://localhost:56150/_connector", allowLoopback: true, want: true},
		{url: "http://127.0.0.1:3979/", allowLoopback: true, want: true},
		{url: "http://[::1]:3979/", allowLoopback: true, want: true},
		{url: "http://10.0.0.1/", allowLoopback: true, want: false},
		{url: "http://169.254.169.254/", allowLoopback: true, want: false},
		{url: "ftp://localhost/", allowLoopback: true, want: false},
	}

	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := checkServiceURL(tt.url, tt.allowLoopback)
			if got := err == nil; got != tt.want {
				t.Errorf("checkServiceURL(%q, %v) = %v, want allowed %v", tt.url, tt.allowLoopback, err, tt.want)
			}
			if err != nil && !errors.Is(err, errServiceURLNotAllowed) {
				t.Errorf("error %v does not wrap errServiceURLNotAllowed", err)
			}
		})
	}
}

func TestAuthenticationFailureIs401(t *testing.T) {
	jwt, sign := newJWTAuthenticator(t)
	wrongAudience := sign(botauthtest.NewToken("another-app", "https://smba.trafficmanager.net/emea/", time.Now()))
	forgedServiceURL := sign(botauthtest.NewToken(testAppID, "https://smba.trafficmanager.net/amer/", time.Now()))

	tests := []struct {
		name          string
		authenticator Authenticator
		header        string
	}{
		{name: "jwt validator without header", authenticator: jwt, header: ""},
		{name: "jwt validator with basic auth", authenticator: jwt, header: "Basic dXNlcjpwYXNz"},
		{name: "jwt validator with wrong audience", authenticator: jwt, header: "Bearer " + wrongAudience},
		{name: "jwt validator with forged serviceurl", authenticator: jwt, header: "Bearer " + forgedServiceURL},
		{name: "rejecting authenticator", authenticator: rejectAll{}, header: "Bearer a.b.c"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) {
				c.LocalDevelopment = false
				c.AppID = testAppID
				c.Authenticator = tt.authenticator
			})
			a := loadActivity(t, "personal-message.json", "https://smba.trafficmanager.net/emea/")

			rec := h.post(t, encode(t, a), tt.header)
			h.shutdown(t)

			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", rec.Code)
			}
			if !strings.Contains(h.logs.String(), "authentication failed") {
				t.Errorf("rejection not logged: %s", h.logs.String())
			}
			if n := h.source.callCount(); n != 0 {
				t.Errorf("source called %d times, want none", n)
			}
		})
	}
}

func TestMentionAndHTMLNormalised(t *testing.T) {
	const botID = "28:bot-app-id"
	botMention := mention{Type: "mention", Text: "<at>Storage Bot</at>"}
	botMention.Mentioned.ID = botID
	userMention := mention{Type: "mention", Text: "<at>Alex Wilber</at>"}
	userMention.Mentioned.ID = "29:alex"

	tests := []struct {
		name     string
		text     string
		mentions []mention
		want     string
	}{
		{name: "mention first", text: "<at>Storage Bot</at> top 5", mentions: []mention{botMention}, want: "top 5"},
		{name: "mention last", text: "top 5 <at>Storage Bot</at>", mentions: []mention{botMention}, want: "top 5"},
		{name: "mention inside", text: "usage <at>Storage Bot</at> Marketing", mentions: []mention{botMention}, want: "usage Marketing"},
		{name: "other user's mention kept as text", text: "<at>Storage Bot</at> usage <at>Alex Wilber</at>", mentions: []mention{botMention, userMention}, want: "usage Alex Wilber"},
		{name: "no entity leaves text", text: "<at>Storage Bot</at> top", mentions: nil, want: "Storage Bot top"},
		{name: "nbsp", text: "top&nbsp;5", want: "top 5"},
		{name: "paragraph tags", text: "<p>usage</p><p>The Library</p>", want: "usage The Library"},
		{name: "inline tags", text: "to<b>p</b>&nbsp;<i>3</i>", want: "top 3"},
		{name: "escaped angle brackets stay text", text: "usage R&amp;D &lt;EU&gt;", want: "usage R&D <EU>"},
		{name: "lone less-than", text: "top < 5", want: "top < 5"},
		{name: "whitespace collapsed", text: "  top\n\t 5\r\n", want: "top 5"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commandText(tt.text, tt.mentions, botID); got != tt.want {
				t.Errorf("commandText(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestCommandReplies(t *testing.T) {
	result := testResult()
	invalidTop := cards.Message("Top Teams", "Choose a number of Teams from 1 to 50, for example: top 10")
	tests := []struct {
		name string
		text string
		want cards.AdaptiveCard
	}{
		{name: "top default", text: "top", want: topPage(result, 10)},
		{name: "top 5 teams", text: "top 5 teams", want: topPage(result, 5)},
		{name: "top upper case", text: "TOP 3 Teams", want: topPage(result, 3)},
		{name: "top teams", text: "top teams", want: topPage(result, 10)},
		{name: "top 50", text: "top 50", want: topPage(result, 50)},
		{name: "top 0", text: "top 0", want: invalidTop},
		{name: "top 51", text: "top 51", want: invalidTop},
		{name: "top not a number", text: "top many", want: invalidTop},
		{name: "top with html", text: "<p>top&nbsp;2</p>", want: topPage(result, 2)},
		{name: "help", text: "Help", want: cards.Help(Commands())},
		{name: "unknown text", text: "what is this", want: cards.Help(Commands())},
		{name: "empty text", text: "", want: cards.Help(Commands())},
		{name: "usage without name", text: "usage", want: cards.Message("Team usage", "Send usage followed by a Team name, for example: usage Marketing")},
		{name: "usage accents", text: "usage cafe unicorn", want: cards.Usage(teamByID(t, result, "g-cafe"), result)},
		{name: "usage accents typed", text: "usage CAFÉ  ÜNICORN", want: cards.Usage(teamByID(t, result, "g-cafe"), result)},
		{name: "usage straight apostrophe", text: "usage bob's team", want: cards.Usage(teamByID(t, result, "g-bob"), result)},
		{name: "usage curly apostrophe prefix", text: "usage Bob’s", want: cards.Usage(teamByID(t, result, "g-bob"), result)},
		{name: "usage exact beats prefix", text: "usage marketing", want: cards.Usage(teamByID(t, result, "g-mkt"), result)},
		{name: "usage substring", text: "usage ops", want: cards.Usage(teamByID(t, result, "g-ops"), result)},
		{
			name: "usage two teams of one name",
			text: "usage the library",
			want: cards.Choice("the library", []scanner.TeamUsage{teamByID(t, result, "g-lib-1"), teamByID(t, result, "g-lib-2")}),
		},
		{
			name: "usage prefix of two",
			text: "usage market",
			want: cards.Choice("market", []scanner.TeamUsage{teamByID(t, result, "g-mkt"), teamByID(t, result, "g-ops")}),
		},
		{name: "usage no match", text: "usage Finance", want: cards.Message("No match", "No Team matches “Finance”. Send top to see the largest Teams.")},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)

			card := h.replyCard(t, h.messageWithText(t, tt.text))

			assertCard(t, card, tt.want)
		})
	}
}

func TestCardSubmitCommands(t *testing.T) {
	result := testResult()
	tests := []struct {
		name  string
		value any
		want  cards.AdaptiveCard
	}{
		{name: "usage by id", value: map[string]any{"cmd": "usage", "teamId": "g-lib-2"}, want: cards.Usage(teamByID(t, result, "g-lib-2"), result)},
		{name: "usage of a deleted team", value: map[string]any{"cmd": "usage", "teamId": "g-gone"}, want: cards.Message("Team not found", "This Team is not in the latest scan. It may have been deleted. Send top to see the current list.")},
		{name: "top with a number", value: map[string]any{"cmd": "top", "n": 7}, want: topPage(result, 7)},
		{name: "top with a string", value: map[string]any{"cmd": "top", "n": "4"}, want: topPage(result, 4)},
		{name: "top without n", value: map[string]any{"cmd": "top"}, want: topPage(result, 10)},
		{name: "help", value: map[string]any{"cmd": "help"}, want: cards.Help(Commands())},
		{name: "value that is no object", value: []any{1, 2}, want: cards.Help(Commands())},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			a := loadActivity(t, "personal-card-submit.json", h.connector.server.URL)
			a["value"] = tt.value

			card := h.replyCard(t, a)

			assertCard(t, card, tt.want)
		})
	}
}

func TestSourceErrorGenericReply(t *testing.T) {
	scanErr := errors.New("list teams page 3: HTTP 503")
	h := newHarness(t, &fakeSource{err: scanErr}, nil)

	card := h.replyCard(t, h.messageWithText(t, "top 5"))
	h.shutdown(t)

	assertCard(t, card, cards.Message("Scan failed", "The scan failed, try again later."))
	if strings.Contains(string(card), "page 3") {
		t.Errorf("card shows the internal error: %s", card)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "list teams page 3") || !strings.Contains(logs, "activity_id=f594fa18-9087-40f3-a034-992c7a3d535d") {
		t.Errorf("log lacks the error or the activity id: %s", logs)
	}
}

func TestShutdownWaitsForReplies(t *testing.T) {
	source := &fakeSource{result: testResult(), started: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarness(t, source, nil)
	if rec := h.post(t, encode(t, h.messageWithText(t, "top")), ""); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	<-source.started

	done := make(chan error, 1)
	go func() { done <- h.bot.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a reply was in flight", err)
	default:
	}
	close(source.release)

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown failed: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Shutdown did not return after the reply finished")
	}
	if n := h.connector.received(); n != 1 {
		t.Errorf("connector received %d requests before Shutdown returned, want 1", n)
	}

	rec := h.post(t, encode(t, h.messageWithText(t, "help")), "")
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status after Shutdown = %d, want 503", rec.Code)
	}
}

func TestShutdownCancelsAtDeadline(t *testing.T) {
	source := &fakeSource{result: testResult(), started: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarness(t, source, nil)
	if rec := h.post(t, encode(t, h.messageWithText(t, "top")), ""); rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	<-source.started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.bot.Shutdown(ctx)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown error = %v, want context.Canceled", err)
	}
	if n := h.connector.received(); n != 0 {
		t.Errorf("connector received %d requests after cancellation, want none", n)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	valid := func() Config {
		return Config{
			AppID:     "00000000-0000-0000-0000-00000000000b",
			TenantIDs: []string{servedTenant},
			Source:    &fakeSource{},
			Connector: connector.New(connector.Config{}),
			Roles:     allAdmins(),
		}
	}
	tests := []struct {
		name string
		edit func(c *Config)
	}{
		{name: "missing source", edit: func(c *Config) { c.Source = nil }},
		{name: "missing connector", edit: func(c *Config) { c.Connector = nil }},
		{name: "missing app id", edit: func(c *Config) { c.AppID = "" }},
		{name: "local development with app id", edit: func(c *Config) { c.LocalDevelopment = true }},
		{name: "no tenants", edit: func(c *Config) { c.TenantIDs = nil }},
		{name: "missing roles", edit: func(c *Config) { c.Roles = nil }},
	}

	if _, err := New(valid()); err != nil {
		t.Fatalf("New(valid) failed: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.edit(&cfg)
			if _, err := New(cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestIDSetExpiresAndBounds(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	set := newIDSet(10*time.Minute, 3, func() time.Time { return now })

	steps := []struct {
		advance time.Duration
		id      string
		want    bool
	}{
		{id: "a", want: true},
		{id: "a", want: false},
		{advance: 9 * time.Minute, id: "a", want: false},
		{advance: time.Minute, id: "a", want: true},
		{id: "b", want: true},
		{id: "c", want: true},
		{id: "d", want: true},
		{id: "a", want: true},
		{id: "d", want: false},
	}

	for i, s := range steps {
		now = now.Add(s.advance)
		if got := set.add(s.id); got != s.want {
			t.Errorf("step %d: add(%q) = %v, want %v", i, s.id, got, s.want)
		}
	}
	if n := len(set.added); n > 3 {
		t.Errorf("set holds %d ids, want at most 3", n)
	}
}

func TestDecodeActivityValue(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want map[string]any
	}{
		{name: "object", raw: `{"cmd":"help"}`, want: map[string]any{"cmd": "help"}},
		{name: "JSON string of an object", raw: `"{\"cmd\":\"help\"}"`, want: map[string]any{"cmd": "help"}},
		{name: "plain string", raw: `"hello"`, want: nil},
		{name: "number", raw: `3`, want: nil},
		{name: "null", raw: `null`, want: nil},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := decodeActivity([]byte(`{"type":"message","value":` + tt.raw + `}`))
			if err != nil {
				t.Fatalf("decodeActivity failed: %v", err)
			}
			if !reflect.DeepEqual(in.value, tt.want) {
				t.Errorf("value = %#v, want %#v", in.value, tt.want)
			}
		})
	}
}

const testAppID = "00000000-0000-0000-0000-00000000000b"

// newJWTAuthenticator returns the production authenticator wired to a local
// OpenID authority, and a function that signs tokens with that authority's key.
func newJWTAuthenticator(t *testing.T) (Authenticator, func(botauthtest.Token) string) {
	t.Helper()
	key, err := botauthtest.NewKey("test-key", "msteams")
	if err != nil {
		t.Fatal(err)
	}
	server := botauthtest.NewServer(key)
	t.Cleanup(server.Close)

	v, err := botauth.New(botauth.Config{AppID: testAppID, MetadataURL: server.MetadataURL, HTTPClient: server.Client()})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(tok botauthtest.Token) string {
		signed, err := key.Sign(tok)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	return NewBotFrameworkAuthenticator(v), sign
}

func TestJWTAuthenticatorAcceptsConnectorToken(t *testing.T) {
	jwt, sign := newJWTAuthenticator(t)
	a := schema.Activity{Type: schema.Message, ChannelID: "msteams", ServiceURL: "https://smba.trafficmanager.net/emea/"}
	token := sign(botauthtest.NewToken(testAppID, a.ServiceURL, time.Now()))

	if err := jwt.Authenticate(context.Background(), "Bearer "+token, &a); err != nil {
		t.Errorf("Authenticate rejected a valid connector token: %v", err)
	}
}

// topPage is the card of the top command: the Top card with paging
// buttons.
func topPage(r *scanner.Result, n int) cards.AdaptiveCard {
	return cards.TopPage(r, cards.TopOptions{N: n, Paging: true})
}
