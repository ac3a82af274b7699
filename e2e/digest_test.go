package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/simtenant"
)

// demoStoreLine matches the line where `storagebot demo` prints its store
// file.
var demoStoreLine = regexp.MustCompile(`(?m)^Store: (\S+) `)

// TestPlaygroundDigest installs the bot in the Playground's team, turns the
// digest on with "digest here" in a channel, and runs `storagebot digest
// --now` on the demo's store twice: the first run starts a thread with the
// digest card in the channel, the second posts nothing and prints why.
func TestPlaygroundDigest(t *testing.T) {
	node, playgroundCLI, loopbackPreload := findPlayground(t)
	bin := buildStorageBot(t)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()

	botPort := freeLoopbackPort(t)
	botURL := "http://127.0.0.1:" + strconv.Itoa(botPort)
	bot := startProcess(t, "storagebot demo", exec.Command(bin, "demo", "--addr", "127.0.0.1:"+strconv.Itoa(botPort)))
	waitHealthy(ctx, t, bot, botURL+"/healthz")
	requireLoopbackOnly(ctx, t, bot, botPort)
	storePath, err := bot.waitOutput(ctx, demoStoreLine)
	if err != nil {
		t.Fatalf("read the demo's store path: %v", err)
	}

	playgroundURL := startPlayground(ctx, t, node, playgroundCLI, loopbackPreload, botURL+"/api/messages")
	config := readPlaygroundConfig(ctx, t, playgroundURL)
	frames := openConversationStream(ctx, t, playgroundURL)
	if len(config.Config.Teams) == 0 || len(config.Config.Teams[0].Channels) == 0 {
		t.Fatalf("Playground config has no team with a channel: %+v", config.Config.Teams)
	}
	team := config.Config.Teams[0]
	channel := team.Channels[0]
	playgroundBot := config.Config.Bot

	// Install: the installationUpdate that Teams sends when the bot is
	// added to a team, through the Playground's connector.
	install := map[string]any{
		"type":         "installationUpdate",
		"action":       "add",
		"id":           "install-" + strconv.FormatInt(time.Now().UnixNano(), 10),
		"timestamp":    time.Now().UTC().Format(time.RFC3339Nano),
		"channelId":    "msteams",
		"serviceUrl":   playgroundURL + "/_connector",
		"from":         map[string]any{"id": config.Config.CurrentUser.ID},
		"recipient":    map[string]any{"id": playgroundBot.ID, "name": playgroundBot.Name},
		"conversation": map[string]any{"id": channel.ID, "conversationType": "channel", "isGroup": true, "tenantId": simtenant.PlaygroundTenantID},
		"channelData": map[string]any{
			"tenant":  map[string]any{"id": simtenant.PlaygroundTenantID},
			"team":    map[string]any{"id": team.ID, "name": team.Name},
			"channel": map[string]any{"id": channel.ID},
		},
	}
	postActivity(ctx, t, playgroundURL+"/_internal/v1/customActivities", install)

	// "digest here" in the channel, and the bot's reply in the thread.
	botMention := "<at>" + playgroundBot.Name + "</at>"
	var posted postedMessage
	postJSON(ctx, t, playgroundURL+"/_conversation/v1/conversations/"+channel.ID+"/messages", userMessage{
		Type: "text", Text: botMention + " digest here", TextFormat: "plain",
		From:     accountID{ID: config.Config.CurrentUser.ID},
		Mentions: []mention{{Mentioned: accountID{ID: playgroundBot.ID}, Text: botMention}},
	}, &posted)
	replyCtx, cancelReply := context.WithTimeout(ctx, replyTimeout)
	defer cancelReply()
	reply := cardTextOf(t, waitBotCard(replyCtx, t, frames, playgroundBot.ID, posted.PostConversationID))
	if !strings.Contains(reply, "gets the weekly storage digest") {
		t.Fatalf("reply to digest here:\n%s\nwant the digest turned on", reply)
	}

	first := runDigestNow(ctx, t, bin, storePath)
	if !strings.Contains(first, ": sent (activity ") {
		t.Fatalf("first digest --now output:\n%s\nwant a sent line", first)
	}
	digestCtx, cancelDigest := context.WithTimeout(ctx, replyTimeout)
	defer cancelDigest()
	// A new thread is a root post of the channel: the Playground shows it
	// in the channel's own conversation, where replies to threads do not
	// appear.
	card := waitBotCard(digestCtx, t, frames, playgroundBot.ID, channel.ID)
	if text := cardTextOf(t, card); !strings.Contains(text, "Weekly storage digest") || !strings.Contains(text, wantFirstTeam) {
		t.Errorf("digest card text:\n%s\nwant the digest title and %q", text, wantFirstTeam)
	}

	second := runDigestNow(ctx, t, bin, storePath)
	if !strings.Contains(second, "already posted for this period") || strings.Contains(second, ": sent (") {
		t.Errorf("second digest --now output:\n%s\nwant nothing posted and \"already posted for this period\"", second)
	}
}

// runDigestNow runs `storagebot digest --now` on the demo's store with no
// other settings, as an operator would next to the running bot, and
// returns its output.
func runDigestNow(ctx context.Context, t *testing.T, bin, storePath string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "digest", "--now", "--db", storePath)
	cmd.Env = []string{"HOME=" + t.TempDir(), "STORAGEBOT_LOG_FORMAT=text", "STORAGEBOT_LOG_LEVEL=warn"}
	cmd.WaitDelay = stopGrace
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("storagebot digest --now: %v\n%s", err, output)
	}
	return string(output)
}

// postActivity posts an activity to the Playground, which forwards it to
// the bot and responds 200 with an empty body.
func postActivity(ctx context.Context, t *testing.T, url string, activity map[string]any) {
	t.Helper()
	payload, err := json.Marshal(activity)
	if err != nil {
		t.Fatalf("encode activity: %v", err)
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
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d, want 200", url, resp.StatusCode)
	}
}

func cardTextOf(t *testing.T, card []byte) string {
	t.Helper()
	text, err := cards.PlainText(card)
	if err != nil {
		t.Fatalf("read card: %v\ncard: %s", err, card)
	}
	return text
}
