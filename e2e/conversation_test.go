//go:build linux

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/cards"
)

const (
	// conversationTimeout bounds everything after the build in
	// TestPlaygroundAdminConversation: starting both processes and every
	// step of the conversation.
	conversationTimeout = 3 * time.Minute

	// slowGraphLatency makes each simulated Graph request take this long,
	// so that a scan of the school lasts several seconds and a refresh
	// shows its progress card updated more than once.
	slowGraphLatency = "500ms"

	// minProgressUpdates is how many times the refresh's progress card
	// must change before the answer replaces it.
	minProgressUpdates = 2
)

// submitBody is the body of POST /_conversation/v1/submit, a click on an
// Action.Submit of the card with id ReplyToID.
type submitBody struct {
	Conversation accountID      `json:"conversation"`
	From         accountID      `json:"from"`
	ReplyToID    string         `json:"replyToId"`
	Value        map[string]any `json:"value"`
}

// botAnswer is the card that ends one exchange, the id of the message that
// carries it, and the progress cards that came before it.
type botAnswer struct {
	messageID string
	card      json.RawMessage
	text      string
	// progress counts the frames with a progress card: the card itself
	// and each update of it.
	progress int
}

// TestPlaygroundAdminConversation chats with `storagebot demo` from the
// Agents Playground as its default user, an admin. It sends summary, top 10
// and the next page, then usage of a name two Teams share (a choice card,
// then the chosen Team). It ends with refresh and its progress updates, and
// export with a link that downloads once.
func TestPlaygroundAdminConversation(t *testing.T) {
	node, playgroundCLI, loopbackPreload := findPlayground(t)
	bin := buildStorageBot(t)

	ctx, cancel := context.WithTimeout(context.Background(), conversationTimeout)
	defer cancel()

	botPort := freeLoopbackPort(t)
	botURL := "http://127.0.0.1:" + strconv.Itoa(botPort)
	demo := exec.Command(bin, "demo", "--addr", "127.0.0.1:"+strconv.Itoa(botPort), "--latency", slowGraphLatency)
	bot := startProcess(t, "storagebot demo", demo)
	waitHealthy(ctx, t, bot, botURL+"/healthz")
	requireLoopbackOnly(ctx, t, bot, botPort)

	playgroundURL := startPlayground(ctx, t, node, playgroundCLI, loopbackPreload, botURL+"/api/messages")
	config := readPlaygroundConfig(ctx, t, playgroundURL)
	frames := openConversationStream(ctx, t, playgroundURL)
	chat := config.Config.PersonalChat.ID
	user := accountID{ID: config.Config.CurrentUser.ID}
	botID := config.Config.Bot.ID

	say := func(t *testing.T, text string) botAnswer {
		t.Helper()
		var posted postedMessage
		postJSON(ctx, t, playgroundURL+"/_conversation/v1/conversations/"+chat+"/messages",
			userMessage{Type: "text", Text: text, TextFormat: "plain", From: user}, &posted)
		return waitAnswer(ctx, t, frames, botID, chat)
	}
	click := func(t *testing.T, on botAnswer, value map[string]any) botAnswer {
		t.Helper()
		postNoContent(ctx, t, playgroundURL+"/_conversation/v1/submit",
			submitBody{Conversation: accountID{ID: chat}, From: user, ReplyToID: on.messageID, Value: value})
		return waitAnswer(ctx, t, frames, botID, chat)
	}

	t.Run("summary", func(t *testing.T) {
		a := say(t, "summary")
		requireText(t, a, "Storage summary", "Used: ", "Set STORAGEBOT_TENANT_QUOTA", "Recycle bins: ", "Quota state: ", "Largest Teams", "1. The Library")
	})

	var top botAnswer
	t.Run("top 10", func(t *testing.T) {
		top = say(t, "top 10")
		requireText(t, top, "Top 10 Teams by storage", "1. The Library", "[Next 10]")
	})

	t.Run("next page", func(t *testing.T) {
		if top.messageID == "" {
			t.Skip("top 10 failed")
		}
		next, ok := submitData(top.card, "Next 10")
		if !ok {
			t.Fatalf("top card has no Next 10 button:\n%s", top.text)
		}
		page := click(t, top, next)
		requireText(t, page, "Teams ranked 11 to 20 by storage", "[Previous 10]", "[Next 10]")
		if !strings.Contains(page.text, "\n11. ") {
			t.Errorf("next page does not start at rank 11:\n%s", page.text)
		}
	})

	t.Run("usage the library", func(t *testing.T) {
		choice := say(t, "usage the library")
		requireText(t, choice, "2 Teams match", "Select the Team you mean.")
		first, ok := submitData(choice.card, "The Library")
		if !ok {
			t.Fatalf("choice card has no button for The Library:\n%s", choice.text)
		}
		usage := click(t, choice, first)
		requireText(t, usage, "The Library", "Used: ", "Recycle bin", "Quota state: ", "Owners: ", "Same name: ", "of 2 Teams named The Library")
	})

	t.Run("refresh", func(t *testing.T) {
		a := say(t, "refresh")
		requireText(t, a, "Top 10 Teams by storage", "1. The Library")
		if a.progress < 1+minProgressUpdates {
			t.Errorf("refresh showed %d progress frames before the answer, want the progress card and at least %d updates", a.progress, minProgressUpdates)
		}
	})

	t.Run("export", func(t *testing.T) {
		a := say(t, "export")
		requireText(t, a, "Export ready", "[Download CSV]")
		link := openURL(a.card)
		if !strings.HasPrefix(link, botURL+"/export/") {
			t.Fatalf("download link %q does not point at the bot %s", link, botURL)
		}

		status, body := get(ctx, t, link)
		if status != http.StatusOK || !strings.HasPrefix(body, "team_id,display_name,") {
			t.Errorf("first download: status %d, body starting %q; want 200 and the CSV header", status, body[:min(len(body), 80)])
		}
		if rows := strings.Count(body, "\n"); rows < 500 {
			t.Errorf("CSV has %d lines, want a line per Team of the school", rows)
		}
		if status, body := get(ctx, t, link); status != http.StatusGone {
			t.Errorf("second download: status %d (%q), want 410", status, body)
		}
	})
}

// waitAnswer reads the bot's frames in conversationID until a card that is
// not a progress card arrives, counting the progress frames before it.
func waitAnswer(ctx context.Context, t *testing.T, frames <-chan streamFrame, botID, conversationID string) botAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()

	var a botAnswer
	var skipped []string
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("conversation websocket closed before the bot answered; skipped frames: %v", skipped)
			}
			card, isCard := botCard(f, botID, conversationID)
			switch {
			case !isCard:
				skipped = append(skipped, describeFrame(f))
			case isProgressCard(card):
				a.progress++
			default:
				text, err := cards.PlainText(card)
				if err != nil {
					t.Fatalf("read the answer card: %v\ncard: %s", err, card)
				}
				a.messageID, a.card, a.text = f.Message.MessageID, card, text
				return a
			}
		case <-ctx.Done():
			t.Fatalf("wait for the bot's answer: %v; %d progress frames, other frames: %v", ctx.Err(), a.progress, cmp.Or(strings.Join(skipped, "; "), "none"))
		}
	}
}

func requireText(t *testing.T, a botAnswer, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(a.text, want) {
			t.Errorf("card text has no %q:\n%s", want, a.text)
		}
	}
}

// cardAction is an action of a card, in the body or in an ActionSet.
type cardAction struct {
	Type  string         `json:"type"`
	Title string         `json:"title"`
	URL   string         `json:"url"`
	Data  map[string]any `json:"data"`
}

// cardActions returns every action in the card's body ActionSets.
func cardActions(card json.RawMessage) []cardAction {
	var c struct {
		Body []struct {
			Type    string       `json:"type"`
			Actions []cardAction `json:"actions"`
		} `json:"body"`
	}
	if json.Unmarshal(card, &c) != nil {
		return nil
	}
	var actions []cardAction
	for _, e := range c.Body {
		actions = append(actions, e.Actions...)
	}
	return actions
}

// submitData returns the data of the first Action.Submit whose title
// starts with title.
func submitData(card json.RawMessage, title string) (map[string]any, bool) {
	for _, a := range cardActions(card) {
		if a.Type == "Action.Submit" && strings.HasPrefix(a.Title, title) {
			return a.Data, true
		}
	}
	return nil, false
}

// openURL returns the URL of the card's first Action.OpenUrl.
func openURL(card json.RawMessage) string {
	for _, a := range cardActions(card) {
		if a.Type == "Action.OpenUrl" {
			return a.URL
		}
	}
	return ""
}

// postNoContent posts body as JSON to url and requires status 200.
func postNoContent(ctx context.Context, t *testing.T, url string, body any) {
	t.Helper()
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("encode request to %s: %v", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("build request to %s: %v", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d, want 200; body: %s", url, resp.StatusCode, out)
	}
}

// get fetches url and returns the status and body.
func get(ctx context.Context, t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET the download link: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the download: %v", err)
	}
	return resp.StatusCode, string(body)
}
