package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/simtenant"
)

const demoSynopsis = `Starts a simulated school tenant (Microsoft Graph, the Entra token endpoint
and a Bot Connector, all in this process on 127.0.0.1) and the bot wired as in
production against it, asks the bot "top 10 teams" through its real webhook,
prints the card it sent back, then keeps serving so that you can chat with it
from the Microsoft 365 Agents Playground. Inbound auth is off, so the address
must be a loopback address.`

// maxDemoActivities bounds the activities the self-test reads while it
// waits for the answer: a progress card, its updates and the answer.
const maxDemoActivities = 600

// demoTimeout bounds the self-test: the scan of the simulated school plus the
// reply through the connector.
const demoTimeout = 2 * time.Minute

// playgroundUserObjectID is the Entra object id of the Agents Playground's
// default user, so the demo's question comes from the same person as the
// Playground's.
const playgroundUserObjectID = "00000000-0000-0000-0000-0000000000020"

func runDemo(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo [flags]", demoSynopsis, stderr)
	addr := fs.String("addr", "127.0.0.1:3978", "loopback address for the bot's webhook")
	latency := fs.Duration("latency", 30*time.Millisecond, "simulated Graph latency per request")
	throttle := fs.Float64("throttle", 0, "simulated Graph throttle in requests per second, answered with 429 and Retry-After beyond it (0 = off)")
	verbose := fs.Bool("verbose", false, "log at info level instead of warn")
	once := fs.Bool("once", false, "exit after printing the answer instead of serving")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !isLoopback(*addr) {
		return fmt.Errorf("%w: --addr %q is not a loopback address; the demo runs with inbound auth off, so it listens only on 127.0.0.1 or localhost", errUsage, *addr)
	}

	c, err := loadConfig(mapEnv{"STORAGEBOT_LOG_FORMAT": "text"})
	if err != nil {
		return err
	}
	c.LogLevel = slog.LevelWarn
	if *verbose {
		c.LogLevel = slog.LevelInfo
	}
	logger := newLogger(c, stderr)

	sim, err := simtenant.Start(simtenant.Options{Latency: *latency, Logger: logger.With("component", "simtenant")})
	if err != nil {
		return fmt.Errorf("start simulated tenant: %w", err)
	}
	defer sim.Close()
	if *throttle > 0 {
		sim.SetThrottle(*throttle, int(*throttle), time.Second)
	}

	// The bot is configured exactly as "serve" would be for this tenant: MSAL
	// against the simulated authority, Graph over HTTPS, no special cases.
	c.Addr = *addr
	c.AuthorityHost = sim.AuthorityHost()
	c.GraphURL = sim.GraphURL()
	c.TenantID = simtenant.PlaygroundTenantID
	c.TenantIDs = []string{simtenant.PlaygroundTenantID}
	c.ClientID = simtenant.DefaultClientID
	c.ClientSecret = simtenant.DefaultClientSecret
	c.AdminGroupID = simtenant.ITAdminsGroupID

	// The demo keeps its scans in a temporary SQLite file, so it never
	// touches the store of a real deployment.
	dir, err := os.MkdirTemp("", "storagebot-demo-")
	if err != nil {
		return fmt.Errorf("create the demo's store directory: %w", err)
	}
	defer os.RemoveAll(dir)
	c.DBPath = filepath.Join(dir, "storagebot.db")

	a, err := startApp(c, sim.HTTPClient(), logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Simulated school tenant %s is up at %s.\n", simtenant.PlaygroundTenantID, sim.URL())
	fmt.Fprintf(stdout, "Bot webhook: %s/api/messages\n", a.URL())
	fmt.Fprintf(stdout, "Store: %s (storagebot digest --now --db <this file> posts the digest from it)\n\n", c.DBPath)

	askErr := askTopTeams(ctx, a.URL(), sim, stdout)
	if askErr != nil || *once {
		return errors.Join(askErr, a.shutdown())
	}

	fmt.Fprintf(stdout, "\nThe bot keeps running. To chat with it from the Microsoft 365 Agents Playground:\n")
	fmt.Fprintf(stdout, "  npm ci --prefix testdata/node        # once\n")
	fmt.Fprintf(stdout, "  testdata/node/node_modules/.bin/agentsplayground start -e %s/api/messages\n", a.URL())
	fmt.Fprintf(stdout, "then type \"top 10 teams\", \"usage the library\" or \"help\" in its chat (http://localhost:56150).\n")
	fmt.Fprintf(stdout, "Press Ctrl+C to stop.\n")
	return a.wait(ctx)
}

// askTopTeams posts "top 10 teams" to the webhook as a Teams personal chat
// message whose serviceUrl is the simulated connector, waits for the card the
// bot sends there, and prints it as text.
func askTopTeams(ctx context.Context, botURL string, sim *simtenant.Tenant, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()

	activity := map[string]any{
		"type":         "message",
		"id":           randomID(),
		"timestamp":    time.Now().UTC().Format(time.RFC3339Nano),
		"channelId":    "msteams",
		"serviceUrl":   sim.ConnectorURL(),
		"from":         map[string]any{"id": "user-id-0", "name": "Demo Admin", "aadObjectId": playgroundUserObjectID},
		"recipient":    map[string]any{"id": "storagebot-demo", "name": "storagebot"},
		"conversation": map[string]any{"id": "demo-personal-chat", "conversationType": "personal", "tenantId": simtenant.PlaygroundTenantID},
		"channelData":  map[string]any{"tenant": map[string]any{"id": simtenant.PlaygroundTenantID}},
		"text":         "top 10 teams",
		"textFormat":   "plain",
		"locale":       "en-US",
	}
	body, err := json.Marshal(activity)
	if err != nil {
		return fmt.Errorf("encode demo activity: %w", err)
	}

	fmt.Fprintf(stdout, "Asking the bot \"top 10 teams\" through its webhook...\n")
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, botURL+"/api/messages", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post to webhook: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("post to webhook: status %d, want 200", resp.StatusCode)
	}
	fmt.Fprintf(stdout, "The webhook answered %d in %s; the scan runs in the background.\n", resp.StatusCode, time.Since(start).Round(time.Millisecond))

	// A scan slower than the bot's progress delay is answered with a
	// progress card first, which the answer later replaces.
	var text string
	for n := 1; n <= maxDemoActivities; n++ {
		sent, err := sim.WaitActivities(ctx, n)
		if err != nil {
			return fmt.Errorf("wait for the bot's reply: %w", err)
		}
		if text, err = cardText(sent[n-1].Body); err != nil {
			return err
		}
		if !strings.Contains(text, cards.ProgressNote) {
			break
		}
	}
	fmt.Fprintf(stdout, "The bot replied after %s with this card:\n\n%s\n", time.Since(start).Round(10*time.Millisecond), text)
	return nil
}

// cardText renders the first Adaptive Card attachment of an activity as text.
func cardText(activity []byte) (string, error) {
	var a struct {
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(activity, &a); err != nil {
		return "", fmt.Errorf("decode the bot's reply: %w", err)
	}
	for _, att := range a.Attachments {
		if att.ContentType == cards.ContentType {
			return cards.PlainText(att.Content)
		}
	}
	if a.Text != "" {
		return a.Text, nil
	}
	return "", errors.New("decode the bot's reply: it has no Adaptive Card and no text")
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
