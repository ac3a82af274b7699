package simtenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/simtenant"
)

// threadID is a Teams channel thread id: it has ':', '@', ';' and '='.
const threadID = "19:a1b2c3d4e5f6@thread.tacv2;messageid=1796413366245"

// activityIDPattern matches the 13-digit activity ids that Teams returns.
var activityIDPattern = regexp.MustCompile(`^\d{13}$`)

// escapeComponent escapes like JavaScript's encodeURIComponent, which the
// Bot Framework SDKs use for conversation ids.
func escapeComponent(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func TestConnectorRecordsActivities(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	base := sim.ConnectorURL() + "v3/conversations/"

	tests := []struct {
		name           string
		method         string
		url            string
		body           string
		wantStatus     int
		wantOperation  simtenant.Operation
		wantConvID     string
		wantReplyToID  string
		wantActivityID string
	}{
		{
			name: "send to a thread, path-escaped", method: http.MethodPost,
			url:  base + url.PathEscape(threadID) + "/activities",
			body: `{"type":"message","text":"hello"}`, wantStatus: http.StatusCreated,
			wantOperation: simtenant.OperationSend, wantConvID: threadID,
		},
		{
			name: "reply, component-escaped", method: http.MethodPost,
			url:  base + escapeComponent(threadID) + "/activities/e1819735-4452-4093-b268-acaa7bb88ddc",
			body: `{"type":"message","attachments":[]}`, wantStatus: http.StatusCreated,
			wantOperation: simtenant.OperationReply, wantConvID: threadID, wantReplyToID: "e1819735-4452-4093-b268-acaa7bb88ddc",
		},
		{
			name: "send with replyToId in the body, unescaped", method: http.MethodPost,
			url:  base + "a:1xYz-Personal_Chat/activities",
			body: `{"type":"message","replyToId":"f00d"}`, wantStatus: http.StatusCreated,
			wantOperation: simtenant.OperationSend, wantConvID: "a:1xYz-Personal_Chat", wantReplyToID: "f00d",
		},
		{
			name: "update", method: http.MethodPut,
			url:  base + escapeComponent(threadID) + "/activities/1796413360001",
			body: `{"type":"message","text":"done"}`, wantStatus: http.StatusOK,
			wantOperation: simtenant.OperationUpdate, wantConvID: threadID, wantActivityID: "1796413360001",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := send(t, sim, tt.method, tt.url, "", strings.NewReader(tt.body))

			if status != tt.wantStatus {
				t.Fatalf("returned status %d, want %d: %s", status, tt.wantStatus, body)
			}
			var resp struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("decode resource response %s: %v", body, err)
			}
			if !activityIDPattern.MatchString(resp.ID) {
				t.Errorf("returned id %q, want 13 digits", resp.ID)
			}
			if tt.wantActivityID != "" && resp.ID != tt.wantActivityID {
				t.Errorf("returned id %q, want the updated activity's %q", resp.ID, tt.wantActivityID)
			}

			got := sim.Activities()
			if len(got) != i+1 {
				t.Fatalf("recorded %d activities, want %d", len(got), i+1)
			}
			a := got[i]
			if a.Operation != tt.wantOperation {
				t.Errorf("recorded operation %s, want %s", a.Operation, tt.wantOperation)
			}
			if a.ConversationID != tt.wantConvID {
				t.Errorf("recorded conversation %q, want %q", a.ConversationID, tt.wantConvID)
			}
			if a.ReplyToID != tt.wantReplyToID {
				t.Errorf("recorded reply to %q, want %q", a.ReplyToID, tt.wantReplyToID)
			}
			if a.ActivityID != resp.ID {
				t.Errorf("recorded activity id %q, returned %q", a.ActivityID, resp.ID)
			}
			if string(a.Body) != tt.body {
				t.Errorf("recorded body %s, want %s", a.Body, tt.body)
			}
			if a.Authorized {
				t.Error("recorded a call without Authorization header as authorized")
			}
		})
	}
}

func TestConnectorCreateConversation(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	createURL := sim.ConnectorURL() + "v3/conversations"

	t.Run("channel thread", func(t *testing.T) {
		params := `{"isGroup":true,"channelData":{"channel":{"id":"team-id"},"tenant":{"id":"` + simtenant.PlaygroundTenantID + `"}},"activity":{"type":"message","text":"weekly digest"}}`

		status, _, body := send(t, sim, http.MethodPost, createURL, "", strings.NewReader(params))

		if status != http.StatusCreated {
			t.Fatalf("returned status %d, want 201: %s", status, body)
		}
		var resp struct {
			ID         string `json:"id"`
			ActivityID string `json:"activityId"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("decode response %s: %v", body, err)
		}
		if !activityIDPattern.MatchString(resp.ActivityID) {
			t.Errorf("activityId is %q, want 13 digits", resp.ActivityID)
		}
		if resp.ID != "team-id;messageid="+resp.ActivityID {
			t.Errorf("id is %q, want team-id;messageid=%s", resp.ID, resp.ActivityID)
		}
		a := sim.Activities()[0]
		if a.Operation != simtenant.OperationCreateConversation {
			t.Errorf("recorded operation %s, want %s", a.Operation, simtenant.OperationCreateConversation)
		}
		if a.ConversationID != resp.ID {
			t.Errorf("recorded conversation %q, want %q", a.ConversationID, resp.ID)
		}
		if string(a.Body) != params {
			t.Errorf("recorded body %s, want %s", a.Body, params)
		}
	})

	t.Run("one to one", func(t *testing.T) {
		params := `{"isGroup":false,"members":[{"id":"29:user"}],"tenantId":"` + simtenant.PlaygroundTenantID + `"}`

		status, _, body := send(t, sim, http.MethodPost, createURL, "", strings.NewReader(params))

		if status != http.StatusCreated {
			t.Fatalf("returned status %d, want 201: %s", status, body)
		}
		var resp map[string]string
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("decode response %s: %v", body, err)
		}
		if len(resp) != 1 || !strings.HasPrefix(resp["id"], "a:") {
			t.Errorf("response %s, want only a conversation id starting with a:", body)
		}
	})
}

func TestConnectorAuthorization(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	sendURL := sim.ConnectorURL() + "v3/conversations/" + url.PathEscape(threadID) + "/activities"

	tests := []struct {
		name           string
		token          string
		wantStatus     int
		wantAuthorized bool
	}{
		{"no header", "", http.StatusCreated, false},
		{"bot connector token", requestToken(t, sim, simtenant.BotFrameworkResource), http.StatusCreated, true},
		{"graph token", requestToken(t, sim, simtenant.GraphResource), http.StatusUnauthorized, false},
		{"garbage", "abc.def.ghi", http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sim.Activities())

			status, _, body := send(t, sim, http.MethodPost, sendURL, tt.token, strings.NewReader(`{"type":"message"}`))

			if status != tt.wantStatus {
				t.Fatalf("returned status %d, want %d: %s", status, tt.wantStatus, body)
			}
			got := sim.Activities()
			if status == http.StatusUnauthorized {
				if string(body) != `{"message":"Authorization has been denied for this request."}` {
					t.Errorf("401 body is %s", body)
				}
				if len(got) != before {
					t.Error("a rejected call was recorded")
				}
				return
			}
			if a := got[len(got)-1]; a.Authorized != tt.wantAuthorized {
				t.Errorf("recorded Authorized %v, want %v", a.Authorized, tt.wantAuthorized)
			}
		})
	}
}

func TestConnectorRejectsBodies(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	sendURL := sim.ConnectorURL() + "v3/conversations/" + url.PathEscape(threadID) + "/activities"

	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"not JSON", "hello", http.StatusBadRequest, "BadArgument"},
		{"JSON array", `[{"type":"message"}]`, http.StatusBadRequest, "BadArgument"},
		{"too large", `{"text":"` + strings.Repeat("x", 101<<10) + `"}`, http.StatusRequestEntityTooLarge, "MessageSizeTooBig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := send(t, sim, http.MethodPost, sendURL, "", strings.NewReader(tt.body))

			if status != tt.wantStatus {
				t.Errorf("returned status %d, want %d", status, tt.wantStatus)
			}
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.wantCode {
				t.Errorf("error body %s, want code %s", body, tt.wantCode)
			}
		})
	}
	if n := len(sim.Activities()); n != 0 {
		t.Errorf("recorded %d rejected activities", n)
	}
}

func TestWaitActivities(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	sendURL := sim.ConnectorURL() + "v3/conversations/" + url.PathEscape(threadID) + "/activities"

	type result struct {
		activities []simtenant.RecordedActivity
		err        error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() {
		activities, err := sim.WaitActivities(ctx, 2)
		done <- result{activities, err}
	}()

	for _, text := range []string{"first", "second"} {
		send(t, sim, http.MethodPost, sendURL, "", strings.NewReader(`{"type":"message","text":"`+text+`"}`))
	}
	got := <-done

	if got.err != nil {
		t.Fatalf("wait for 2 activities: %v", got.err)
	}
	if len(got.activities) != 2 || !strings.Contains(string(got.activities[1].Body), "second") {
		t.Errorf("waited activities are %+v, want first and second in order", got.activities)
	}
}

func TestWaitActivitiesContextEnds(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := sim.WaitActivities(ctx, 1)

	if !errors.Is(err, context.Canceled) {
		t.Errorf("WaitActivities with a canceled context returned %v, want context.Canceled", err)
	}
}

func TestStatsCountsRoutes(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", token, nil)
	send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", "", nil)
	send(t, sim, http.MethodPost, sim.ConnectorURL()+"v3/conversations/x/activities", "", strings.NewReader(`{}`))
	send(t, sim, http.MethodGet, sim.URL()+"/nowhere", "", nil)

	stats := sim.Stats()

	tests := []struct {
		route  simtenant.Route
		status int
		want   int
	}{
		{simtenant.RouteToken, http.StatusOK, 1},
		{simtenant.RouteGroups, http.StatusOK, 1},
		{simtenant.RouteGroups, http.StatusUnauthorized, 1},
		{simtenant.RouteSendActivity, http.StatusCreated, 1},
		{simtenant.RouteOther, http.StatusNotFound, 1},
	}
	for _, tt := range tests {
		if got := stats.Count(tt.route, tt.status); got != tt.want {
			t.Errorf("Count(%s, %d) = %d, want %d", tt.route, tt.status, got, tt.want)
		}
	}
	if got := stats.Total(simtenant.RouteGroups); got != 2 {
		t.Errorf("Total(%s) = %d, want 2", simtenant.RouteGroups, got)
	}
	if stats.TokensIssued != 1 {
		t.Errorf("TokensIssued = %d, want 1", stats.TokensIssued)
	}
}
