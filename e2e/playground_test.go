//go:build linux

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/storagebot/storagebot/cards"
)

const (
	// buildTimeout bounds `go build ./cmd/storagebot`, which compiles every
	// dependency when the build cache is cold.
	buildTimeout = 3 * time.Minute

	// runTimeout bounds everything after the build: starting the bot and the
	// Playground and both conversations.
	runTimeout = 60 * time.Second

	// replyTimeout bounds the wait for one reply of the bot, which scans the
	// simulated tenant before it replies.
	replyTimeout = 25 * time.Second

	// healthInterval is how often the test polls the bot's /healthz.
	healthInterval = 100 * time.Millisecond

	// streamReadLimit is the largest websocket frame the test reads. A frame
	// carries a whole card, and cards may reach cards.MaxCardBytes, above the
	// 32 KiB default of github.com/coder/websocket.
	streamReadLimit = 1 << 20
)

// requireNodeEnv makes a missing Node.js or Playground fail the test instead
// of skipping it, for CI where the Playground must run.
const requireNodeEnv = "STORAGEBOT_REQUIRE_NODE"

// adaptiveCardContentType is the attachment content type of an Adaptive Card
// (learn.microsoft.com, Teams "Cards reference").
const adaptiveCardContentType = "application/vnd.microsoft.card.adaptive"

// wantFirstTeam is the Team with the largest drive in the simulated school
// tenant that `storagebot demo` starts.
const wantFirstTeam = "The Library"

// playgroundListening matches the line that Agents Playground 0.2.28 prints
// once its server listens. The port may differ from the one requested: the
// Playground moves to a random port when the requested one is taken.
var playgroundListening = regexp.MustCompile(`(?m)^Listening on ([0-9]+)$`)

// playgroundConfig is the part of GET /_internal/v1/config that the test
// reads: the mock tenant's ids.
type playgroundConfig struct {
	Config struct {
		Bot struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"bot"`
		CurrentUser struct {
			ID string `json:"id"`
		} `json:"currentUser"`
		PersonalChat struct {
			ID string `json:"id"`
		} `json:"personalChat"`
		Teams []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Channels []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"channels"`
		} `json:"teams"`
	} `json:"config"`
}

// userMessage is the body of POST /_conversation/v1/conversations/{id}/messages.
type userMessage struct {
	Type       string    `json:"type"`
	Text       string    `json:"text"`
	TextFormat string    `json:"textFormat"`
	From       accountID `json:"from"`
	Mentions   []mention `json:"mentions,omitempty"`
}

type accountID struct {
	ID string `json:"id"`
}

type mention struct {
	Mentioned accountID `json:"mentioned"`
	Text      string    `json:"text"`
}

// postedMessage is the Playground's response to a user message. A message
// posted to a channel starts a thread whose conversation id is
// PostConversationID.
type postedMessage struct {
	MessageID          string `json:"messageId"`
	PostConversationID string `json:"postConversationId"`
}

// streamFrame is one JSON text frame of the Playground's conversation
// websocket. It carries the messages the bot sends, not the user's.
type streamFrame struct {
	Action               string `json:"action"` // createMessage, updateMessage or typing
	ActionConversationID string `json:"actionConversationId"`
	Message              struct {
		MessageID   string    `json:"messageId"`
		From        accountID `json:"from"`
		Text        string    `json:"text"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	} `json:"message"`
}

// TestPlaygroundTopTeams runs `storagebot demo` behind the Microsoft 365
// Agents Playground and sends "top 10 teams" as its mock user, once in the
// personal chat and once as an @mention in a team channel.
func TestPlaygroundTopTeams(t *testing.T) {
	node, playgroundCLI, loopbackPreload := findPlayground(t)
	bin := buildStorageBot(t)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()

	botPort := freeLoopbackPort(t)
	botURL := "http://127.0.0.1:" + strconv.Itoa(botPort)
	bot := startProcess(t, "storagebot demo", exec.Command(bin, "demo", "--addr", "127.0.0.1:"+strconv.Itoa(botPort)))
	waitHealthy(ctx, t, bot, botURL+"/healthz")
	requireLoopbackOnly(ctx, t, bot, botPort)

	playgroundURL := startPlayground(ctx, t, node, playgroundCLI, loopbackPreload, botURL+"/api/messages")
	config := readPlaygroundConfig(ctx, t, playgroundURL)
	frames := openConversationStream(ctx, t, playgroundURL)

	if len(config.Config.Teams) == 0 || len(config.Config.Teams[0].Channels) == 0 {
		t.Fatalf("Playground config has no team with a channel: %+v", config.Config.Teams)
	}
	channel := config.Config.Teams[0].Channels[0]
	playgroundBot := config.Config.Bot
	botMention := "<at>" + playgroundBot.Name + "</at>"

	tests := []struct {
		name           string
		conversationID string
		message        userMessage
		wantThread     bool // the post starts a channel thread that the reply must go to
	}{
		{
			name:           "personal chat",
			conversationID: config.Config.PersonalChat.ID,
			message: userMessage{
				Type: "text", Text: "top 10 teams", TextFormat: "plain",
				From: accountID{ID: config.Config.CurrentUser.ID},
			},
		},
		{
			name:           "channel mention",
			conversationID: channel.ID,
			message: userMessage{
				Type: "text", Text: botMention + " top 10 teams", TextFormat: "plain",
				From:     accountID{ID: config.Config.CurrentUser.ID},
				Mentions: []mention{{Mentioned: accountID{ID: playgroundBot.ID}, Text: botMention}},
			},
			wantThread: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var posted postedMessage
			postJSON(ctx, t, playgroundURL+"/_conversation/v1/conversations/"+tt.conversationID+"/messages", tt.message, &posted)

			replyConversation := tt.conversationID
			if tt.wantThread {
				wantPrefix := tt.conversationID + ";messageid="
				if !strings.HasPrefix(posted.PostConversationID, wantPrefix) {
					t.Fatalf("postConversationId = %q, want a thread id starting with %q", posted.PostConversationID, wantPrefix)
				}
				replyConversation = posted.PostConversationID
			}

			replyCtx, cancel := context.WithTimeout(ctx, replyTimeout)
			defer cancel()
			reply := waitBotCard(replyCtx, t, frames, playgroundBot.ID, replyConversation)

			text, err := cards.PlainText(reply)
			if err != nil {
				t.Fatalf("read the reply card: %v\ncard: %s", err, reply)
			}
			first, ok := firstRankedRow(text)
			if !ok {
				t.Fatalf("reply card ranks no Team, want %q first; card text:\n%s", wantFirstTeam, text)
			}
			name := strings.TrimPrefix(first, "1. ")
			if name != wantFirstTeam && !strings.HasPrefix(name, wantFirstTeam+" ") {
				t.Errorf("first ranked row = %q, want %q first; card text:\n%s", first, wantFirstTeam, text)
			}
		})
	}
}

// findPlayground returns the node binary, the Playground's CLI script and the
// loopback preload, or skips the test when Node.js or the npm package is
// missing, unless requireNodeEnv is "1".
func findPlayground(t *testing.T) (node, cli, preload string) {
	t.Helper()

	nodeDir, err := filepath.Abs("../testdata/node")
	if err != nil {
		t.Fatalf("resolve testdata/node: %v", err)
	}
	cli = filepath.Join(nodeDir, "node_modules", "@microsoft", "m365agentsplayground", "cli.js")
	preload = filepath.Join(nodeDir, "loopback.cjs")

	node, err = exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(cli)
	}
	if err != nil {
		msg := fmt.Sprintf("Microsoft 365 Agents Playground unavailable (%v): install Node.js and run `npm ci --prefix testdata/node`", err)
		if os.Getenv(requireNodeEnv) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, requireNodeEnv)
		}
		t.Skipf("%s; set %s=1 to fail instead of skipping", msg, requireNodeEnv)
	}
	if _, err := os.Stat(preload); err != nil {
		t.Fatalf("find loopback preload: %v", err)
	}
	return node, cli, preload
}

// buildStorageBot builds ./cmd/storagebot into a temporary directory and
// returns the binary's path.
func buildStorageBot(t *testing.T) string {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()

	bin := filepath.Join(t.TempDir(), "storagebot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/storagebot")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ./cmd/storagebot: %v\n%s", err, out)
	}
	return bin
}

// waitHealthy polls url until it returns 200, the process exits or ctx ends.
func waitHealthy(ctx context.Context, t *testing.T, p *process, url string) {
	t.Helper()

	ticker := time.NewTicker(healthInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		lastErr = getStatus(ctx, url)
		if lastErr == nil {
			return
		}
		select {
		case <-ticker.C:
		case <-p.exited:
			t.Fatalf("%s exited before %s returned 200: %v", p.name, url, p.err)
		case <-ctx.Done():
			t.Fatalf("wait for %s: %v (last attempt: %v)", url, ctx.Err(), lastErr)
		}
	}
}

func getStatus(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200", url, resp.StatusCode)
	}
	return nil
}

// startPlayground starts the Agents Playground pointed at botEndpoint, with
// every listener forced to 127.0.0.1 by the preload, waits until it listens
// and checks that it listens on loopback only. It returns the Playground's
// base URL.
func startPlayground(ctx context.Context, t *testing.T, node, cli, preload, botEndpoint string) string {
	t.Helper()

	dir := t.TempDir()
	requestedPort := freeLoopbackPort(t)
	cmd := exec.Command(node, "--require", preload, cli, "start",
		"-e", botEndpoint, "-p", strconv.Itoa(requestedPort), "--disable-telemetry")
	// The working directory and the log file are temporary, so the Playground
	// writes no ./devTools directory into the repository.
	cmd.Dir = dir
	logFile := filepath.Join(dir, "playground.log")
	cmd.Env = append(os.Environ(),
		"TEAMSAPPTESTER_BROWSER=none",
		"M365_AGENTS_PLAYGROUND_LOGFILE="+logFile,
	)
	p := startProcess(t, "agentsplayground", cmd)
	t.Cleanup(func() {
		if t.Failed() {
			logFileTail(t, logFile)
		}
	})

	portText, err := p.waitOutput(ctx, playgroundListening)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("read the Playground's port %q: %v", portText, err)
	}
	requireLoopbackOnly(ctx, t, p, port)
	return "http://127.0.0.1:" + portText
}

func logFileTail(t *testing.T, path string) {
	out, err := os.ReadFile(path)
	if err != nil {
		t.Logf("read Playground log: %v", err)
		return
	}
	t.Logf("Playground log %s (last %d bytes):\n%s", path, outputTailBytes, out[max(0, len(out)-outputTailBytes):])
}

// readPlaygroundConfig reads the mock tenant's ids. The Playground responds
// only after it has reached the bot's endpoint or given up after 15 s.
func readPlaygroundConfig(ctx context.Context, t *testing.T, baseURL string) playgroundConfig {
	t.Helper()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/_internal/v1/config", nil)
	if err != nil {
		t.Fatalf("build config request: %v", err)
	}
	var config playgroundConfig
	doJSON(t, req, &config)
	if config.Config.Bot.ID == "" || config.Config.PersonalChat.ID == "" || config.Config.CurrentUser.ID == "" {
		t.Fatalf("Playground config lacks the bot, user or personal chat id: %+v", config.Config)
	}
	return config
}

// postJSON posts body as JSON to url and decodes the response into out.
func postJSON(ctx context.Context, t *testing.T, url string, body, out any) {
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
	doJSON(t, req, out)
}

// doJSON sends req, requires status 200 and decodes the JSON response into out.
func doJSON(t *testing.T, req *http.Request, out any) {
	t.Helper()

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d, want 200; body: %s", req.Method, req.URL, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s %s: decode body: %v; body: %s", req.Method, req.URL, err, body)
	}
}

// openConversationStream opens the Playground's conversation websocket and
// returns a channel of its frames. The channel is closed when the socket or
// ctx ends; the socket is closed when the test ends.
func openConversationStream(ctx context.Context, t *testing.T, baseURL string) <-chan streamFrame {
	t.Helper()

	wsURL := "ws" + strings.TrimPrefix(baseURL, "http") + "/_ws_conversation/v1/conversations/stream"
	conn, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatalf("open %s: %v", wsURL, err)
	}
	conn.SetReadLimit(streamReadLimit)

	frames := make(chan streamFrame, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(frames)
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var f streamFrame
			if err := json.Unmarshal(data, &f); err != nil {
				t.Logf("skip undecodable websocket frame: %v: %s", err, data)
				continue
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		conn.CloseNow()
		<-done
	})
	return frames
}

// waitBotCard returns the Adaptive Card of the first message that the bot
// sends or updates in conversationID, progress cards aside. Other frames,
// the bot's text-only messages among them, are logged and skipped.
func waitBotCard(ctx context.Context, t *testing.T, frames <-chan streamFrame, botID, conversationID string) json.RawMessage {
	t.Helper()

	var skipped []string
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("conversation websocket closed before the bot replied in %q; skipped frames: %v", conversationID, skipped)
			}
			if card, ok := botCard(f, botID, conversationID); ok && !isProgressCard(card) {
				return card
			}
			skipped = append(skipped, describeFrame(f))
		case <-ctx.Done():
			t.Fatalf("wait for the bot's card in %q: %v; frames seen instead: %v", conversationID, ctx.Err(), cmp.Or(strings.Join(skipped, "; "), "none"))
		}
	}
}

// botCard returns the Adaptive Card content of f when f is a message from
// botID in conversationID.
func botCard(f streamFrame, botID, conversationID string) (json.RawMessage, bool) {
	isMessage := f.Action == "createMessage" || f.Action == "updateMessage"
	if !isMessage || f.ActionConversationID != conversationID || f.Message.From.ID != botID {
		return nil, false
	}
	for _, a := range f.Message.Attachments {
		if a.ContentType == adaptiveCardContentType {
			return a.Content, true
		}
	}
	return nil, false
}

func describeFrame(f streamFrame) string {
	types := make([]string, 0, len(f.Message.Attachments))
	for _, a := range f.Message.Attachments {
		types = append(types, a.ContentType)
	}
	return fmt.Sprintf("%s in %q from %q (text %q, attachments %v)",
		f.Action, f.ActionConversationID, f.Message.From.ID, f.Message.Text, types)
}

// firstRankedRow returns the card text line of the Team ranked first: the
// line that starts with "1. ", as cards.Top numbers its rows.
func firstRankedRow(cardText string) (string, bool) {
	for line := range strings.Lines(cardText) {
		if strings.HasPrefix(line, "1. ") {
			return strings.TrimRight(line, "\n"), true
		}
	}
	return "", false
}

// isProgressCard reports whether card is a progress card, which the bot
// sends while an answer takes long and later replaces with the answer.
func isProgressCard(card json.RawMessage) bool {
	text, err := cards.PlainText(card)
	return err == nil && strings.Contains(text, cards.ProgressNote)
}
