package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storagebot/storagebot/simtenant"
	"github.com/storagebot/storagebot/store/storetest"
)

// serveProcess is a `storagebot serve` child process of the test.
type serveProcess struct {
	cmd *exec.Cmd
	url string
	// logs receives the process's log lines; it closes when stderr does.
	logs chan string
	// seen keeps every line read from logs.
	seen []string
}

// startServe starts the binary with env, waits for its "webhook listening"
// line and returns the process with its webhook URL.
func startServe(t *testing.T, ctx context.Context, bin string, env []string) *serveProcess {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	p := &serveProcess{cmd: cmd, logs: make(chan string, 1024)}
	go func() {
		defer close(p.logs)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			p.logs <- lines.Text()
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})

	for line := range p.logs {
		p.seen = append(p.seen, line)
		var record struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &record) == nil && record.Msg == "webhook listening" {
			p.url = "http://" + record.Addr
			return p
		}
	}
	cmd.Wait()
	t.Fatalf("serve exited before listening:\n%s", strings.Join(p.seen, "\n"))
	return nil
}

// stop sends SIGTERM and waits for a clean exit, keeping the remaining log
// lines.
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal serve: %v", err)
	}
	for line := range p.logs {
		p.seen = append(p.seen, line)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, strings.Join(p.seen, "\n"))
	}
}

// logged counts the log lines whose message is msg.
func (p *serveProcess) logged(msg string) int {
	n := 0
	for _, line := range p.seen {
		if strings.Contains(line, `"msg":"`+msg+`"`) {
			n++
		}
	}
	return n
}

// askTop posts "top 10 teams" to p and returns the card text of the reply,
// the n-th activity the connector receives.
func askTop(t *testing.T, ctx context.Context, p *serveProcess, sim *simtenant.Tenant, n int) string {
	t.Helper()
	postMessage(t, p.url, sim, fmt.Sprintf("activity-%d", n), "restart-chat", "top 10 teams")
	sent, err := sim.WaitActivities(ctx, n)
	if err != nil {
		t.Fatalf("wait for reply %d: %v", n, err)
	}
	text, err := cardText(sent[n-1].Body)
	if err != nil {
		t.Fatalf("read reply %d: %v", n, err)
	}
	return text
}

// A restarted `storagebot serve` answers from the stored scan without a
// new scan, and after a `kill -9` during a scan the store opens cleanly and
// the previous scan is still the answer.
func TestServeRestartAndKillDuringScan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it four times per backend")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "storagebot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		sim, err := simtenant.Start(simtenant.Options{})
		if err != nil {
			t.Fatalf("start simulated tenant: %v", err)
		}
		t.Cleanup(sim.Close)
		caFile := writeSimCA(t, sim, t.TempDir())
		token := simGraphToken(ctx, t, sim)

		env := []string{
			"HOME=" + t.TempDir(),
			"SSL_CERT_FILE=" + caFile,
			"GRAPH_TOKEN=" + token,
			"GRAPH_BASE_URL=" + sim.GraphURL(),
			"MicrosoftAppTenantId=" + simtenant.PlaygroundTenantID,
			"STORAGEBOT_LOG_FORMAT=json",
			"STORAGEBOT_ADMIN_IDS=" + playgroundUserObjectID,
		}
		if b.Name == "postgres" {
			env = append(env, "DATABASE_URL="+b.URL)
		} else {
			env = append(env, "STORAGEBOT_DB_PATH="+b.URL)
		}

		first := startServe(t, ctx, bin, env)
		firstCard := askTop(t, ctx, first, sim, 1)
		assertLibraryFirst(t, firstCard)
		first.stop(t)
		scanned := graphRequests(sim)
		if first.logged("scan saved") != 1 {
			t.Fatalf("first process saved %d scans, want 1", first.logged("scan saved"))
		}

		restarted := startServe(t, ctx, bin, env)
		if card := askTop(t, ctx, restarted, sim, 2); card != firstCard {
			t.Errorf("after a restart the card is\n%s\nwant the stored scan's card\n%s", card, firstCard)
		}
		restarted.stop(t)
		if n := graphRequests(sim) - scanned; n != 0 {
			t.Errorf("the restarted process made %d Graph requests, want 0", n)
		}

		// A scan TTL of 1ms makes the stored scan stale, so the question
		// starts a scan, which the sim's latency keeps in progress.
		sim.SetLatency(300 * time.Millisecond)
		killed := startServe(t, ctx, bin, append(env, "STORAGEBOT_SCAN_TTL=1ms"))
		postMessage(t, killed.url, sim, "activity-killed", "restart-chat", "top 10 teams")
		waitForGraphRequests(t, ctx, sim, scanned+2)
		if err := killed.cmd.Process.Kill(); err != nil {
			t.Fatalf("kill serve: %v", err)
		}
		for line := range killed.logs {
			killed.seen = append(killed.seen, line)
		}
		killed.cmd.Wait()
		status, ok := killed.cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
			t.Fatalf("serve process state = %v, want killed by SIGKILL", killed.cmd.ProcessState)
		}
		if killed.logged("scan saved") != 0 {
			t.Fatal("the scan finished before the kill; raise the sim's latency")
		}

		after := startServe(t, ctx, bin, env)
		if card := askTop(t, ctx, after, sim, 3); card != firstCard {
			t.Errorf("after kill -9 during a scan the card is\n%s\nwant the previous scan's card\n%s", card, firstCard)
		}
		after.stop(t)
		if n := after.logged("scan started"); n != 0 {
			t.Errorf("the process started after the kill logged %d scan starts, want 0", n)
		}
		if n := storedScans(t, b); n != 1 {
			t.Errorf("stored scans = %d, want only the first process's scan", n)
		}
	})
}

// waitForGraphRequests polls the sim's counters until it has answered n
// Graph requests. The scan runs in another process, so there is no event
// to wait on.
func waitForGraphRequests(t *testing.T, ctx context.Context, sim *simtenant.Tenant, n int) {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for graphRequests(sim) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("the sim answered %d Graph requests, want at least %d: %v", graphRequests(sim), n, ctx.Err())
		case <-ticker.C:
		}
	}
}
