package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storagebot/storagebot/simtenant"
)

// The flags of the Dockerfile's build stage. TestStaticBinary checks that
// the Dockerfile still uses them, so that the binary tested here is the one
// the image ships.
var (
	staticBuildEnv   = []string{"CGO_ENABLED=0", "GOOS=linux"}
	staticBuildFlags = []string{"-trimpath", "-ldflags", "-s -w -X main.version=ci-static"}
)

// buildStatic builds the binary as the Dockerfile does and returns its path.
func buildStatic(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "storagebot")
	args := append([]string{"build"}, staticBuildFlags...)
	build := exec.CommandContext(ctx, "go", append(args, "-o", bin, ".")...)
	build.Env = append(os.Environ(), staticBuildEnv...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// dockerfileBuildLine returns the Dockerfile's go build command with its
// continuation lines joined.
func dockerfileBuildLine(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	joined := strings.ReplaceAll(string(data), "\\\n", " ")
	for line := range strings.Lines(joined) {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	t.Fatal("the Dockerfile has no RUN line with go build")
	return ""
}

// simServeEnv returns the environment of a serve process that gets its
// Graph token from the simulated tenant's Entra with MSAL and trusts the
// simulated tenant's TLS certificate.
func simServeEnv(t *testing.T, sim *simtenant.Tenant) []string {
	t.Helper()
	dir := t.TempDir()
	caFile := writeSimCA(t, sim, dir)
	return []string{
		"HOME=" + dir,
		"SSL_CERT_FILE=" + caFile,
		"AZURE_AUTHORITY_HOST=" + sim.AuthorityHost(),
		"AZURE_TENANT_ID=" + simtenant.PlaygroundTenantID,
		"AZURE_CLIENT_ID=" + simtenant.DefaultClientID,
		"AZURE_CLIENT_SECRET=" + simtenant.DefaultClientSecret,
		"GRAPH_BASE_URL=" + sim.GraphURL(),
		"MicrosoftAppTenantId=" + simtenant.PlaygroundTenantID,
		"STORAGEBOT_ADMIN_IDS=" + playgroundUserObjectID,
		"STORAGEBOT_DB_PATH=" + filepath.Join(dir, "storagebot.db"),
		"STORAGEBOT_LOG_FORMAT=json",
	}
}

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// messageBody returns a personal-chat message activity from the admin user,
// with the simulated connector as its serviceUrl.
func messageBody(t *testing.T, sim *simtenant.Tenant, activityID, text string) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"type":         "message",
		"id":           activityID,
		"timestamp":    time.Now().UTC().Format(time.RFC3339Nano),
		"channelId":    "msteams",
		"serviceUrl":   sim.ConnectorURL(),
		"from":         map[string]any{"id": "user-id-0", "name": "Test Admin", "aadObjectId": playgroundUserObjectID},
		"recipient":    map[string]any{"id": "storagebot-test", "name": "storagebot"},
		"conversation": map[string]any{"id": "container-chat", "conversationType": "personal", "tenantId": simtenant.PlaygroundTenantID},
		"channelData":  map[string]any{"tenant": map[string]any{"id": simtenant.PlaygroundTenantID}},
		"text":         text,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// The binary built as the Dockerfile builds it is static, passes serve
// --check against a simulated tenant, serves /healthz, /readyz and
// /metrics, and on SIGTERM finishes a webhook request in flight and cancels
// the scan that is running.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the static binary and runs it")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	line := dockerfileBuildLine(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=`, "./cmd/storagebot"} {
		if !strings.Contains(line, want) {
			t.Errorf("the Dockerfile's build line does not contain %q, so this test no longer builds what the image ships:\n%s", want, line)
		}
	}
	bin := buildStatic(t, ctx)

	t.Run("static", func(t *testing.T) {
		if file, err := exec.LookPath("file"); err == nil {
			out, err := exec.CommandContext(ctx, file, bin).Output()
			if err != nil {
				t.Fatalf("file %s: %v", bin, err)
			}
			if !strings.Contains(string(out), "statically linked") {
				t.Errorf("file reports %s, want a statically linked executable", strings.TrimSpace(string(out)))
			}
		}
		if ldd, err := exec.LookPath("ldd"); err == nil {
			out, _ := exec.CommandContext(ctx, ldd, bin).CombinedOutput()
			if !strings.Contains(string(out), "not a dynamic executable") && !strings.Contains(string(out), "statically linked") {
				t.Errorf("ldd lists libraries:\n%s", out)
			}
		}
		out, err := exec.CommandContext(ctx, bin, "--version").Output()
		if err != nil || strings.TrimSpace(string(out)) != "storagebot ci-static" {
			t.Errorf("--version printed %q (%v), want the version set by -ldflags, storagebot ci-static", out, err)
		}
	})

	t.Run("check and endpoints", func(t *testing.T) {
		sim, err := simtenant.Start(simtenant.Options{})
		if err != nil {
			t.Fatalf("start simulated tenant: %v", err)
		}
		t.Cleanup(sim.Close)
		env := simServeEnv(t, sim)

		check := exec.CommandContext(ctx, bin, "serve", "--check")
		check.Env = env
		var stdout, stderr bytes.Buffer
		check.Stdout, check.Stderr = &stdout, &stderr
		if err := check.Run(); err != nil {
			t.Fatalf("serve --check: %v\nstderr:\n%s", err, stderr.String())
		}
		if got := strings.TrimSpace(stdout.String()); got != "configuration OK" {
			t.Errorf("serve --check printed %q, want configuration OK", got)
		}

		p := startServe(t, ctx, bin, env)
		if status, body := httpGet(t, p.url+"/healthz"); status != http.StatusOK || body != "ok\n" {
			t.Errorf("GET /healthz = %d %q, want 200 ok", status, body)
		}
		if status, body := httpGet(t, p.url+"/readyz"); status != http.StatusOK {
			t.Errorf("GET /readyz = %d %q, want 200", status, body)
		}
		postMessage(t, p.url, sim, "activity-container", "container-chat", "help")
		status, metrics := httpGet(t, p.url+"/metrics")
		if status != http.StatusOK {
			t.Fatalf("GET /metrics = %d, want 200", status)
		}
		for _, want := range []string{
			`storagebot_webhook_requests_total{code="200"} 1`,
			"storagebot_webhook_request_duration_seconds_bucket",
			`storagebot_scan_cache_requests_total{result="miss"}`,
			"process_start_time_seconds",
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics has no %q", want)
			}
		}
		p.stop(t)
	})

	t.Run("SIGTERM drains and cancels", func(t *testing.T) {
		sim, err := simtenant.Start(simtenant.Options{})
		if err != nil {
			t.Fatalf("start simulated tenant: %v", err)
		}
		t.Cleanup(sim.Close)
		// The latency keeps the scan of the simulated school running for
		// many seconds, longer than this test takes to stop it.
		sim.SetLatency(2 * time.Second)
		p := startServe(t, ctx, bin, simServeEnv(t, sim))

		before := graphRequests(sim)
		postMessage(t, p.url, sim, "activity-scan", "container-chat", "top 10 teams")
		waitForGraphRequests(t, ctx, sim, before+1)

		conn, response := startSlowPost(t, ctx, p.url, messageBody(t, sim, "activity-in-flight", "help"))
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("signal serve: %v", err)
		}
		waitForLog(t, p, "shutting down")
		status := response()
		conn.Close()
		if status != http.StatusOK {
			t.Errorf("the webhook request in flight at SIGTERM got status %d, want 200", status)
		}

		for line := range p.logs {
			p.seen = append(p.seen, line)
		}
		err = p.cmd.Wait()
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want status 0:\n%s", err, strings.Join(p.seen, "\n"))
		}
		if p.logged("scan stopped") != 1 {
			t.Errorf("serve logged %d scan stops, want 1: the running scan must be canceled:\n%s", p.logged("scan stopped"), strings.Join(p.seen, "\n"))
		}
		if p.logged("scan saved") != 0 {
			t.Error("the scan finished before SIGTERM; raise the sim's latency")
		}
		if p.logged("stopped") != 1 {
			t.Errorf("serve logged %d \"stopped\" lines, want 1", p.logged("stopped"))
		}
	})
}

// startSlowPost sends the headers of POST /api/messages with Expect:
// 100-continue and waits for the server's 100 Continue, which it sends once
// the handler reads the body: from then on the request is in flight. The
// returned function sends body and returns the final status.
func startSlowPost(t *testing.T, ctx context.Context, baseURL string, body []byte) (net.Conn, func() int) {
	t.Helper()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatalf("dial webhook: %v", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	fmt.Fprintf(conn, "POST /api/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		strings.TrimPrefix(baseURL, "http://"), len(body))

	reader := bufio.NewReader(conn)
	interim, err := http.ReadResponse(reader, nil)
	if err != nil {
		t.Fatalf("read the answer to the request headers: %v", err)
	}
	if interim.StatusCode != http.StatusContinue {
		t.Fatalf("the server answered the request headers with %d, want 100 Continue", interim.StatusCode)
	}

	return conn, func() int {
		t.Helper()
		if _, err := conn.Write(body); err != nil {
			t.Fatalf("send the request body after SIGTERM: %v", err)
		}
		resp, err := http.ReadResponse(reader, nil)
		if err != nil {
			t.Fatalf("read the response after SIGTERM: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// waitForLog reads p's log lines until one has the message msg.
func waitForLog(t *testing.T, p *serveProcess, msg string) {
	t.Helper()
	for line := range p.logs {
		p.seen = append(p.seen, line)
		if strings.Contains(line, `"msg":"`+msg+`"`) {
			return
		}
	}
	t.Fatalf("serve exited without logging %q:\n%s", msg, strings.Join(p.seen, "\n"))
}
