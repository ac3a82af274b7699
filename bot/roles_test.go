package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/scanner"
)

// Users of the role tests, by Entra object id.
const (
	adminUser   = "00000000-0000-0000-0000-0000000000020"
	ownerUser   = "00000000-0000-0000-0000-0000000000021"
	noRoleUser  = "00000000-0000-0000-0000-0000000000023"
	missingUser = ""
)

// fakeRoles answers from fixed sets and counts calls.
type fakeRoles struct {
	allAdmins bool
	admins    map[string]bool
	owned     map[string]map[string]bool
	err       error

	mu    sync.Mutex
	calls int
}

func allAdmins() *fakeRoles { return &fakeRoles{allAdmins: true} }

// schoolRoles makes adminUser an admin and ownerUser the owner of Bob's
// Team and Marketing Ops.
func schoolRoles() *fakeRoles {
	return &fakeRoles{
		admins: map[string]bool{adminUser: true},
		owned:  map[string]map[string]bool{ownerUser: {"g-bob": true, "g-ops": true}},
	}
}

func (r *fakeRoles) count() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return r.err
}

func (r *fakeRoles) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *fakeRoles) IsAdmin(_ context.Context, userID string) (bool, error) {
	if err := r.count(); err != nil {
		return false, err
	}
	return r.allAdmins || r.admins[userID], nil
}

func (r *fakeRoles) OwnedTeams(_ context.Context, userID string, teamIDs []string) (map[string]bool, error) {
	if err := r.count(); err != nil {
		return nil, err
	}
	owned := map[string]bool{}
	for _, id := range teamIDs {
		if r.owned[userID][strings.ToLower(id)] {
			owned[strings.ToLower(id)] = true
		}
	}
	return owned, nil
}

func (r *fakeRoles) OwnsTeam(_ context.Context, userID, teamID string) (bool, error) {
	if err := r.count(); err != nil {
		return false, err
	}
	return r.owned[userID][teamID], nil
}

// refreshingSource is a fakeSource that also forces new scans.
type refreshingSource struct {
	*fakeSource
	refreshes int
}

func (s *refreshingSource) Refresh(ctx context.Context) (*scanner.Result, error) {
	s.mu.Lock()
	s.refreshes++
	s.mu.Unlock()
	return s.fakeSource.Get(ctx)
}

// messageFrom returns the captured personal message with text, sent by the
// user with Entra object id userID ("" leaves aadObjectId out).
func (h *harness) messageFrom(t *testing.T, userID, text string) map[string]any {
	a := h.messageWithText(t, text)
	setUser(a, userID)
	return a
}

func setUser(a map[string]any, userID string) {
	from := a["from"].(map[string]any)
	if userID == "" {
		delete(from, "aadObjectId")
		return
	}
	from["aadObjectId"] = userID
}

func ownerOf(ids ...string) asker {
	owned := map[string]bool{}
	for _, id := range ids {
		owned[id] = true
	}
	return asker{userID: ownerUser, owned: owned}
}

func TestRolesDecideWhatUsersSee(t *testing.T) {
	result := testResult()
	ownerTop := *result
	ownerTop.Teams = []scanner.TeamUsage{teamByID(t, result, "g-bob"), teamByID(t, result, "g-ops")}
	notYours := cards.Message("Not your Team", "You can see the storage of the Teams you own only. Send my teams to list them.")

	tests := []struct {
		name string
		user string
		text string
		// value, when set, makes the message a card button click.
		value      map[string]any
		want       cards.AdaptiveCard
		wantSource bool
	}{
		{name: "admin sees top", user: adminUser, text: "top 3", want: topPage(result, 3), wantSource: true},
		{name: "admin help lists every command", user: adminUser, text: "help", want: cards.Help(Commands())},
		{name: "admin usage of any team", user: adminUser, value: map[string]any{"cmd": "usage", "teamId": "g-mkt"}, want: cards.Usage(teamByID(t, result, "g-mkt"), result), wantSource: true},
		{name: "owner refused top", user: ownerUser, text: "top", want: adminsOnlyCard("top")},
		{name: "owner refused top button", user: ownerUser, value: map[string]any{"cmd": "top", "n": 5}, want: adminsOnlyCard("top")},
		{name: "owner refused refresh", user: ownerUser, text: "refresh", want: adminsOnlyCard("refresh")},
		{name: "owner help lists own commands", user: ownerUser, text: "help", want: cards.Help(commandsFor(ownerOf("g-bob")))},
		{name: "owner my teams", user: ownerUser, text: "my teams", want: cards.TopPage(&ownerTop, cards.TopOptions{N: 2, Title: "Your Teams by storage"}), wantSource: true},
		{name: "owner usage of own team", user: ownerUser, text: "usage bob", want: cards.Usage(teamByID(t, result, "g-bob"), result), wantSource: true},
		{
			name: "owner usage by name of another team", user: ownerUser, text: "usage marketing",
			want:       cards.Usage(teamByID(t, result, "g-ops"), result),
			wantSource: true,
		},
		{
			name: "owner usage by exact name of another team", user: ownerUser, text: "usage the library",
			want:       cards.Message("No match", "No Team that you own matches “the library”. Send my teams to list them."),
			wantSource: true,
		},
		{name: "owner button for own team", user: ownerUser, value: map[string]any{"cmd": "usage", "teamId": "g-ops"}, want: cards.Usage(teamByID(t, result, "g-ops"), result), wantSource: true},
		{name: "owner button for another team", user: ownerUser, value: map[string]any{"cmd": "usage", "teamId": "g-mkt"}, want: notYours},
		{name: "owner button for an unknown team", user: ownerUser, value: map[string]any{"cmd": "usage", "teamId": "g-gone"}, want: notYours},
		{name: "no role help", user: noRoleUser, text: "help", want: noRoleCard},
		{name: "no role top", user: noRoleUser, text: "top", want: noRoleCard},
		{name: "no role usage button", user: noRoleUser, value: map[string]any{"cmd": "usage", "teamId": "g-bob"}, want: noRoleCard},
		{name: "no role my teams", user: noRoleUser, text: "my teams", want: noRoleCard},
		{name: "missing aadObjectId", user: missingUser, text: "top", want: noRoleCard},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) { c.Roles = schoolRoles() })
			a := h.messageFrom(t, tt.user, tt.text)
			if tt.value != nil {
				a = loadActivity(t, "personal-card-submit.json", h.connector.server.URL)
				a["value"] = tt.value
				setUser(a, tt.user)
			}

			card := h.replyCard(t, a)
			h.shutdown(t)

			assertCard(t, card, tt.want)
			// A user who is no admin is checked against the owners of the
			// scanned Teams, so the source is read even for a refusal.
			wantSource := tt.wantSource || tt.user == ownerUser || tt.user == noRoleUser
			if read := h.source.callCount() > 0; read != wantSource {
				t.Errorf("source read = %v, want %v", read, wantSource)
			}
		})
	}
}

func TestOwnerHelpHidesAdminCommands(t *testing.T) {
	for _, c := range commandsFor(ownerOf("g-bob")) {
		if strings.HasPrefix(c.Usage, "top") || c.Usage == "refresh" {
			t.Errorf("owner help lists %q, an admin command", c.Usage)
		}
	}
	if got, want := len(commandsFor(ownerOf("g-bob"))), 3; got != want {
		t.Errorf("owner help lists %d commands, want %d (my teams, usage, help)", got, want)
	}
	if got := commandsFor(asker{}); len(got) != 0 {
		t.Errorf("help for a user without role lists %v, want nothing", got)
	}
}

func TestMissingUserSkipsRoleLookup(t *testing.T) {
	roles := schoolRoles()
	h := newHarness(t, nil, func(c *Config) { c.Roles = roles })

	card := h.replyCard(t, h.messageFrom(t, missingUser, "top"))
	h.shutdown(t)

	assertCard(t, card, noRoleCard)
	if n := roles.callCount(); n != 0 {
		t.Errorf("roles asked %d times for an activity without aadObjectId, want 0", n)
	}
}

func TestRoleErrorGenericReply(t *testing.T) {
	roles := schoolRoles()
	roles.err = errors.New("graph returned HTTP 503")
	h := newHarness(t, nil, func(c *Config) { c.Roles = roles })

	card := h.replyCard(t, h.messageFrom(t, adminUser, "top"))
	h.shutdown(t)

	assertCard(t, card, cards.Message("Try again later", "Checking your access failed. Try again in a few minutes."))
	if n := h.source.callCount(); n != 0 {
		t.Errorf("source read %d times although the role is unknown, want 0", n)
	}
	if !strings.Contains(h.logs.String(), "graph returned HTTP 503") {
		t.Errorf("role error not logged: %s", h.logs.String())
	}
}

func TestRefreshRateLimitedPerUser(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	source := &refreshingSource{fakeSource: &fakeSource{result: testResult()}}
	roles := &fakeRoles{admins: map[string]bool{adminUser: true, ownerUser: true}}
	h := newHarness(t, nil, func(c *Config) {
		c.Roles = roles
		c.Source = source
		c.RefreshInterval = 10 * time.Minute
		c.Now = clock
	})
	limited := cards.Message("Refresh", "You asked for a new scan recently. Try again in 9m0s, or send top to see the last scan.")

	steps := []struct {
		advance     time.Duration
		user        string
		want        cards.AdaptiveCard
		wantUpdated bool // the answer replaces a progress card
	}{
		{user: adminUser, want: cards.Top(testResult(), 10), wantUpdated: true},
		{advance: time.Minute, user: adminUser, want: limited},
		{user: ownerUser, want: cards.Top(testResult(), 10), wantUpdated: true},
		{advance: 9 * time.Minute, user: adminUser, want: cards.Top(testResult(), 10), wantUpdated: true},
	}
	for i, s := range steps {
		mu.Lock()
		now = now.Add(s.advance)
		mu.Unlock()

		a := h.messageFrom(t, s.user, "refresh")
		a["id"] = "refresh-" + string(rune('a'+i))
		card := h.replyCard(t, a)
		if s.wantUpdated {
			if text := plainText(t, card); !strings.Contains(text, "Scanning the tenant again") {
				t.Errorf("step %d: first reply is not the progress card:\n%s", i, text)
			}
			update := h.connector.next(t)
			if update.method != http.MethodPut {
				t.Fatalf("step %d: second request is %s, want PUT, an update of the progress card", i, update.method)
			}
			card = decodeReply(t, update).Attachments[0].Content
		}
		assertCard(t, card, s.want)
	}
	h.shutdown(t)

	if source.refreshes != 3 {
		t.Errorf("source refreshed %d times, want 3", source.refreshes)
	}
}

// cardAction returns an adaptiveCard/action invoke from user with the
// given Action.Execute verb and data.
func (h *harness) cardAction(t *testing.T, user, verb string, data map[string]any) map[string]any {
	a := loadActivity(t, "personal-card-submit.json", h.connector.server.URL)
	a["type"] = "invoke"
	a["name"] = "adaptiveCard/action"
	a["value"] = map[string]any{
		"action":  map[string]any{"type": "Action.Execute", "verb": verb, "data": data},
		"trigger": "manual",
	}
	setUser(a, user)
	return a
}

func TestCardActionAnsweredInResponse(t *testing.T) {
	result := testResult()
	tests := []struct {
		name string
		user string
		verb string
		data map[string]any
		want cards.AdaptiveCard
	}{
		{name: "admin usage button", user: adminUser, verb: "usage", data: map[string]any{"teamId": "g-cafe"}, want: cards.Usage(teamByID(t, result, "g-cafe"), result)},
		{name: "command in data wins over verb", user: adminUser, verb: "refresh", data: map[string]any{"cmd": "top", "n": 2}, want: topPage(result, 2)},
		{name: "owner button for another team", user: ownerUser, verb: "usage", data: map[string]any{"teamId": "g-mkt"}, want: cards.Message("Not your Team", "You can see the storage of the Teams you own only. Send my teams to list them.")},
		{name: "no role", user: noRoleUser, verb: "top", want: noRoleCard},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) { c.Roles = schoolRoles() })

			rec := h.post(t, encode(t, h.cardAction(t, tt.user, tt.verb, tt.data)), "")
			h.shutdown(t)

			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			var body struct {
				StatusCode int             `json:"statusCode"`
				Type       string          `json:"type"`
				Value      json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("response is not JSON: %v: %s", err, rec.Body)
			}
			if body.StatusCode != 200 || body.Type != cards.ContentType {
				t.Errorf("response statusCode %d type %q, want 200 and %s", body.StatusCode, body.Type, cards.ContentType)
			}
			assertCard(t, body.Value, tt.want)
			if n := h.connector.received(); n != 0 {
				t.Errorf("connector received %d requests, want none: the card goes in the response", n)
			}
		})
	}
}

// panickingAuthenticator simulates any bug on the request path.
type panickingAuthenticator struct{}

func (panickingAuthenticator) Authenticate(context.Context, string, *schema.Activity) error {
	panic("index out of range")
}

func TestWebhookPanicIs500(t *testing.T) {
	h := newHarness(t, nil, func(c *Config) {
		c.LocalDevelopment = false
		c.AppID = testAppID
		c.Authenticator = panickingAuthenticator{}
	})
	a := loadActivity(t, "personal-message.json", "https://smba.trafficmanager.net/emea/")

	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(encode(t, a)))
	rec := httptest.NewRecorder()
	h.engine.ServeHTTP(rec, req)
	h.shutdown(t)

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "webhook panicked") || !strings.Contains(logs, "activity_id=f594fa18-9087-40f3-a034-992c7a3d535d") {
		t.Errorf("panic not logged with the activity id: %s", logs)
	}
	if n := h.connector.received(); n != 0 {
		t.Errorf("connector received %d requests, want none", n)
	}
}
