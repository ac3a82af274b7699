package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/simtenant"
)

// startDemoApp starts a simulated tenant and the bot wired to it exactly as
// the demo does, on a free loopback port.
func startDemoApp(t *testing.T) (*app, *simtenant.Tenant) {
	t.Helper()

	sim, err := simtenant.Start(simtenant.Options{})
	if err != nil {
		t.Fatalf("start simulated tenant: %v", err)
	}
	t.Cleanup(sim.Close)

	c, err := loadConfig(mapEnv{})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	c.Addr = "127.0.0.1:0"
	c.AuthorityHost = sim.AuthorityHost()
	c.GraphURL = sim.GraphURL()
	c.TenantID = simtenant.PlaygroundTenantID
	c.TenantIDs = []string{simtenant.PlaygroundTenantID}
	c.ClientID = simtenant.DefaultClientID
	c.ClientSecret = simtenant.DefaultClientSecret
	c.AdminGroupID = simtenant.ITAdminsGroupID
	c.DBPath = filepath.Join(t.TempDir(), "storagebot.db")

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := startApp(c, sim.HTTPClient(), logger)
	if err != nil {
		t.Fatalf("startApp: %v", err)
	}
	t.Cleanup(func() { a.shutdown() })
	return a, sim
}

// The captured Agents Playground channel @mention, with its serviceUrl
// pointed at the simulated connector, gets exactly one card reply in its
// thread, even when Teams delivers it twice.
func TestChannelMentionRepliesOnceInThread(t *testing.T) {
	a, sim := startDemoApp(t)

	raw, err := os.ReadFile("testdata/channel-mention-message.json")
	if err != nil {
		t.Fatal(err)
	}
	var activity map[string]any
	if err := json.Unmarshal(raw, &activity); err != nil {
		t.Fatal(err)
	}
	activity["serviceUrl"] = sim.ConnectorURL()
	body, _ := json.Marshal(activity)

	for delivery := 1; delivery <= 2; delivery++ {
		resp, err := http.Post(a.URL()+"/api/messages", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("delivery %d: %v", delivery, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delivery %d: status %d, want 200", delivery, resp.StatusCode)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sent, err := sim.WaitActivities(ctx, 1)
	if err != nil {
		t.Fatalf("wait for the reply: %v", err)
	}
	if err := a.bot.Shutdown(ctx); err != nil {
		t.Fatalf("shut the bot down: %v", err)
	}
	if n := len(sim.Activities()); n != 1 {
		t.Fatalf("connector received %d activities, want exactly 1", n)
	}

	reply := sent[0]
	if reply.ConversationID != "team-id;messageid=1796413366245" {
		t.Errorf("reply went to conversation %q, want the thread team-id;messageid=1796413366245", reply.ConversationID)
	}
	if reply.ReplyToID != "e1819735-4452-4093-b268-acaa7bb88ddc" {
		t.Errorf("reply is to activity %q, want the mention's id", reply.ReplyToID)
	}
	text, err := cardText(reply.Body)
	if err != nil {
		t.Fatalf("read the card: %v", err)
	}
	assertLibraryFirst(t, text)
}

// assertLibraryFirst checks that the first ranked line of a rendered top
// card is The Library.
func assertLibraryFirst(t *testing.T, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "1.") || strings.HasPrefix(line, "1 ") {
			if !strings.Contains(line, "The Library") {
				t.Errorf("first ranked line is %q, want The Library", line)
			}
			return
		}
	}
	t.Errorf("no ranked line in the card:\n%s", text)
}

func TestDemoPrintsTopTeams(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--once", "--addr", "127.0.0.1:0", "--latency", "0"}, mapEnv{}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	assertLibraryFirst(t, stdout.String())
	// The school has two Teams named The Library: the card must say which
	// one the first row is.
	if !strings.Contains(stdout.String(), ", 1 of 2)") {
		t.Errorf("demo output does not tell the two The Library Teams apart:\n%s", stdout.String())
	}
}

func TestDemoRejectsPublicAddress(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"demo", "--addr", "0.0.0.0:3978"}, mapEnv{}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("demo exited %d, want 2 (usage)", code)
	}
	if !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("stderr does not explain the loopback rule: %s", stderr.String())
	}
}

func TestServeRequiresAppIDOffLoopback(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--addr", "0.0.0.0:0"}, mapEnv{"MicrosoftAppTenantId": "t", "GRAPH_TOKEN": "x"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("serve exited %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "MicrosoftAppId") {
		t.Errorf("stderr does not name MicrosoftAppId: %s", stderr.String())
	}
}

// The scan command, built as a binary, scans the simulated tenant with a
// static token and prints every team as CSV, largest first.
func TestScanCommandPrintsCSV(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	sim, err := simtenant.Start(simtenant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	dir := t.TempDir()
	bin := filepath.Join(dir, "storagebot")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	caFile := writeSimCA(t, sim, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	token := simGraphToken(ctx, t, sim)

	cmd := exec.CommandContext(ctx, bin, "scan", "--graph-url", sim.GraphURL(), "--format", "csv")
	cmd.Env = []string{"SSL_CERT_FILE=" + caFile, "GRAPH_TOKEN=" + token, "HOME=" + dir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scan: %v\nstderr:\n%s", err, stderr.String())
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if lines[0] != "team_id,display_name,used_bytes,total_bytes,deleted_bytes,state,error" {
		t.Errorf("header = %q", lines[0])
	}
	if got := len(lines) - 1; got != 535 {
		t.Errorf("scan printed %d rows, want one per team (535)", got)
	}
	if !strings.Contains(lines[1], ",The Library,") {
		t.Errorf("first row = %q, want The Library", lines[1])
	}
	if strings.Contains(stderr.String(), token) {
		t.Error("scan logged the bearer token")
	}
}
