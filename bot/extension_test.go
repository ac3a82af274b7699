package bot

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
)

// installEvent is one call of an InstallHandler.
type installEvent struct {
	installed      bool
	conversationID string
}

// recordingInstalls hands every install event to the test.
type recordingInstalls struct {
	events chan installEvent
}

func (r *recordingInstalls) Installed(_ context.Context, a schema.Activity) error {
	r.events <- installEvent{installed: true, conversationID: a.Conversation.ID}
	return nil
}

func (r *recordingInstalls) Uninstalled(_ context.Context, a schema.Activity) error {
	r.events <- installEvent{installed: false, conversationID: a.Conversation.ID}
	return nil
}

func TestAddedCommandRuns(t *testing.T) {
	var got CommandRequest
	h := newHarness(t, nil, func(c *Config) {
		c.Commands = []Command{{
			Verb:        "digest",
			Usage:       "digest here",
			Description: "Post the digest here.",
			AdminsOnly:  true,
			Run: func(_ context.Context, req CommandRequest) (cards.AdaptiveCard, error) {
				got = req
				return cards.Message("Digest on", "ok"), nil
			},
		}}
	})

	a := loadActivity(t, "channel-mention-message.json", h.connector.server.URL)
	a["text"] = strings.Replace(a["text"].(string), "top 10 teams", "digest here", 1)
	card := h.replyCard(t, a)
	assertCard(t, card, cards.Message("Digest on", "ok"))

	if len(got.Args) != 1 || got.Args[0] != "here" {
		t.Errorf("args = %q, want [here]", got.Args)
	}
	if got.Activity.Conversation.ID == "" || got.Activity.ServiceURL != h.connector.server.URL {
		t.Errorf("activity conversation %q, serviceUrl %q: want the message's", got.Activity.Conversation.ID, got.Activity.ServiceURL)
	}

	help := h.bot.helpCommands(asker{admin: true})
	if last := help[len(help)-1]; last.Usage != "digest here" {
		t.Errorf("last help command = %q, want the added one", last.Usage)
	}
	for _, c := range h.bot.helpCommands(ownerOf("g-bob")) {
		if c.Usage == "digest here" {
			t.Error("help lists an admins-only added command for a Team owner")
		}
	}
}

func TestAddedCommandRejected(t *testing.T) {
	run := func(context.Context, CommandRequest) (cards.AdaptiveCard, error) { return cards.AdaptiveCard{}, nil }
	tests := []struct {
		name    string
		command Command
	}{
		{"built-in verb", Command{Verb: "top", Run: run}},
		{"no verb", Command{Run: run}},
		{"two words", Command{Verb: "digest here", Run: run}},
		{"no run", Command{Verb: "digest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{
				TenantIDs:        []string{servedTenant},
				LocalDevelopment: true,
				Source:           &fakeSource{result: testResult()},
				Roles:            allAdmins(),
				Connector:        newHarness(t, nil, nil).bot.connector,
				Commands:         []Command{tt.command},
			})
			if err == nil {
				t.Errorf("New accepted added command %+v", tt.command)
			}
		})
	}
}

func TestInstallEventsReachHandler(t *testing.T) {
	tests := []struct {
		name          string
		file          string
		edit          func(a map[string]any)
		wantInstalled bool
	}{
		{"installationUpdate add", "channel-installation-update.json", nil, true},
		{"installationUpdate remove", "channel-installation-update.json", func(a map[string]any) { a["action"] = "remove" }, false},
		{"bot added to the team", "channel-conversation-update.json", nil, true},
		{"bot removed from the team", "channel-conversation-update.json", func(a map[string]any) {
			a["membersRemoved"] = a["membersAdded"]
			delete(a, "membersAdded")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			installs := &recordingInstalls{events: make(chan installEvent, 4)}
			h := newHarness(t, nil, func(c *Config) { c.Installs = installs })
			a := loadActivity(t, tt.file, h.connector.server.URL)
			if tt.edit != nil {
				tt.edit(a)
			}

			if rec := h.post(t, encode(t, a), ""); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			select {
			case e := <-installs.events:
				if e.installed != tt.wantInstalled || e.conversationID != "team-id" {
					t.Errorf("event = %+v, want installed %v in team-id", e, tt.wantInstalled)
				}
			case <-time.After(waitLimit):
				t.Fatal("the install handler was not called")
			}
			if n := h.connector.received(); n != 0 {
				t.Errorf("bot sent %d replies to an install event, want 0", n)
			}
		})
	}
}

func TestInstallEventNeedsAuthentication(t *testing.T) {
	installs := &recordingInstalls{events: make(chan installEvent, 4)}
	h := newHarness(t, nil, func(c *Config) {
		c.Installs = installs
		c.LocalDevelopment = false
		c.AppID = "app-id"
		c.Authenticator = rejectAll{}
	})
	a := loadActivity(t, "channel-installation-update.json", h.connector.server.URL)

	if rec := h.post(t, encode(t, a), "Bearer forged"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", rec.Code)
	}
	h.shutdown(t)
	if n := len(installs.events); n != 0 {
		t.Errorf("install handler called %d times for an unauthenticated activity, want 0", n)
	}
}
