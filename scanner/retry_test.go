package scanner

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"0.25", 250 * time.Millisecond, true},
		{"Fri, 02 Jan 2026 03:04:15 GMT", 10 * time.Second, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true},
		{"999999999999", maxRetryAfter, true},
		{"-1", 0, false},
		{"1e3", 0, false},
		{"NaN", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.value, testNow)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		retryAfter  string
		err         error
		wantRetry   bool
		wantRefresh bool
		wantWait    time.Duration
		wantReason  string
	}{
		{"throttled", 429, "2", nil, true, false, 2 * time.Second, "HTTP 429 throttled"},
		{"throttled without Retry-After", 429, "", nil, true, false, 0, "HTTP 429 throttled"},
		{"service unavailable", 503, "0.5", nil, true, false, 500 * time.Millisecond, "HTTP 503 service unavailable or throttled"},
		{"server error", 500, "", nil, true, false, 0, "HTTP 500 server error"},
		{"bad gateway", 502, "", nil, true, false, 0, "HTTP 502 server error"},
		{"gateway timeout", 504, "", nil, true, false, 0, "HTTP 504 server error"},
		{"bandwidth", 509, "", nil, true, false, 0, "HTTP 509 bandwidth limit exceeded"},
		{"unauthorized", 401, "", nil, false, true, 0, "HTTP 401 unauthorized: the token may have expired early or been revoked"},
		{"forbidden", 403, "", nil, false, false, 0, "HTTP 403"},
		{"not found", 404, "", nil, false, false, 0, "HTTP 404"},
		{"bad request", 400, "", nil, false, false, 0, "HTTP 400"},
		{"network", 0, "", errors.New("connection reset by peer"), true, false, 0, "network error: connection reset by peer"},
		{"untrusted certificate", 0, "", fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), false, false, 0, "TLS certificate error: tls: x509: certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.retryAfter != "" {
				header.Set("Retry-After", tt.retryAfter)
			}
			v := classify(tt.status, header, tt.err, testNow)
			if v.retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", v.retry, tt.wantRetry)
			}
			if v.refreshToken != tt.wantRefresh {
				t.Errorf("refreshToken = %v, want %v", v.refreshToken, tt.wantRefresh)
			}
			if v.retryAfter != tt.wantWait {
				t.Errorf("retryAfter = %s, want %s", v.retryAfter, tt.wantWait)
			}
			if v.reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", v.reason, tt.wantReason)
			}
		})
	}
}

func TestBackoffWait(t *testing.T) {
	b := backoff{base: time.Second, max: 10 * time.Second, jitter: func() float64 { return 0.5 }}
	tests := []struct {
		name    string
		attempt int
		verdict verdict
		want    time.Duration
	}{
		{"first retry", 1, verdict{}, 500 * time.Millisecond},
		{"second retry", 2, verdict{}, time.Second},
		{"third retry", 3, verdict{}, 2 * time.Second},
		{"capped", 10, verdict{}, 5 * time.Second},
		{"server value wins", 3, verdict{hasRetryAfter: true, retryAfter: 42 * time.Second}, 42 * time.Second},
		{"server zero wins", 3, verdict{hasRetryAfter: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.wait(tt.attempt, tt.verdict); got != tt.want {
				t.Errorf("wait(%d) = %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}

	t.Run("full jitter spans zero to the ceiling", func(t *testing.T) {
		for _, j := range []float64{0, 0.999} {
			b := backoff{base: time.Second, max: time.Minute, jitter: func() float64 { return j }}
			got := b.wait(3, verdict{})
			if got < 0 || got >= 4*time.Second {
				t.Errorf("wait with jitter %v = %s, want in [0, 4s)", j, got)
			}
		}
	})
}

func TestRetryGateWaits(t *testing.T) {
	tests := []struct {
		name      string
		answers   []func(w http.ResponseWriter)
		wantWaits []time.Duration
	}{
		{
			name: "fractional Retry-After",
			answers: []func(w http.ResponseWriter){
				throttle(http.StatusTooManyRequests, "1.5"),
			},
			wantWaits: []time.Duration{1500 * time.Millisecond},
		},
		{
			name: "HTTP-date Retry-After",
			answers: []func(w http.ResponseWriter){
				throttle(http.StatusServiceUnavailable, testNow.Add(10*time.Second).Format(http.TimeFormat)),
			},
			wantWaits: []time.Duration{10 * time.Second},
		},
		{
			name: "backoff without Retry-After",
			answers: []func(w http.ResponseWriter){
				throttle(http.StatusInternalServerError, ""),
				throttle(http.StatusBadGateway, ""),
				throttle(http.StatusTooManyRequests, ""),
			},
			wantWaits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second},
		},
		{
			name: "server value wins over backoff",
			answers: []func(w http.ResponseWriter){
				throttle(http.StatusInternalServerError, ""),
				throttle(http.StatusTooManyRequests, "30"),
			},
			wantWaits: []time.Duration{250 * time.Millisecond, 30 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.drive = func(w http.ResponseWriter, _ *http.Request, id string, n int) {
				if n <= len(tt.answers) {
					tt.answers[n-1](w)
					return
				}
				driveOK(w, id)
			}
			sleeper := &sleepRecorder{}
			cfg := testConfig(fg, sleeper)
			cfg.BaseDelay = 500 * time.Millisecond
			g := newTestGraph(t, cfg)

			_, attempts, err := g.getDrive(context.Background(), "group-1")
			if err != nil {
				t.Fatalf("getDrive: %v", err)
			}
			if want := len(tt.answers) + 1; attempts != want {
				t.Errorf("attempts = %d, want %d", attempts, want)
			}
			if got := sleeper.recorded(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
		})
	}
}

func TestRetryGateAttemptsBounded(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		answer      func(t *testing.T, w http.ResponseWriter)
		wantCalls   int
		wantErr     string
	}{
		{
			name:        "503 forever",
			maxAttempts: 3,
			answer:      func(_ *testing.T, w http.ResponseWriter) { throttle(http.StatusServiceUnavailable, "1")(w) },
			wantCalls:   3,
			wantErr:     "HTTP 503 after 3 attempts",
		},
		{
			name:        "default max attempts",
			maxAttempts: 0,
			answer:      func(_ *testing.T, w http.ResponseWriter) { throttle(http.StatusTooManyRequests, "")(w) },
			wantCalls:   DefaultMaxAttempts,
			wantErr:     "HTTP 429 after 6 attempts",
		},
		{
			name:        "network error forever",
			maxAttempts: 2,
			answer:      func(t *testing.T, w http.ResponseWriter) { dropConnection(t, w) },
			wantCalls:   2,
			wantErr:     "network error after 2 attempts: ",
		},
		{
			name:        "one attempt",
			maxAttempts: 1,
			answer:      func(_ *testing.T, w http.ResponseWriter) { throttle(http.StatusInternalServerError, "")(w) },
			wantCalls:   1,
			wantErr:     "HTTP 500 after 1 attempt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.drive = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) { tt.answer(t, w) }
			cfg := testConfig(fg, &sleepRecorder{})
			cfg.MaxAttempts = tt.maxAttempts
			g := newTestGraph(t, cfg)

			_, attempts, err := g.getDrive(context.Background(), "group-1")
			var attemptsErr *AttemptsError
			if !errors.As(err, &attemptsErr) {
				t.Fatalf("error = %v, want an *AttemptsError", err)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to start with %q", err, tt.wantErr)
			}
			if attempts != tt.wantCalls || attemptsErr.Attempts != tt.wantCalls {
				t.Errorf("attempts = %d (error says %d), want %d", attempts, attemptsErr.Attempts, tt.wantCalls)
			}
			if got := fg.calls("group-1"); got != tt.wantCalls {
				t.Errorf("requests = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRetryGateNoRetryForClientErrors(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.drive = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
				writeGraphError(w, status, "someCode", "some message")
			}
			sleeper := &sleepRecorder{}
			g := newTestGraph(t, testConfig(fg, sleeper))

			_, attempts, err := g.getDrive(context.Background(), "group-1")
			var graphErr *GraphError
			if !errors.As(err, &graphErr) || graphErr.Status != status {
				t.Fatalf("error = %v, want a *GraphError with status %d", err, status)
			}
			if attempts != 1 || fg.calls("group-1") != 1 {
				t.Errorf("attempts = %d, requests = %d, want 1 each", attempts, fg.calls("group-1"))
			}
			if len(sleeper.recorded()) != 0 {
				t.Errorf("waits = %v, want none", sleeper.recorded())
			}
		})
	}
}

func TestRetryGateTokenRefresh(t *testing.T) {
	tests := []struct {
		name          string
		tokens        TokenSource
		accept        func(r *http.Request, token string) bool
		wantErrStatus int
		wantAttempts  int
		wantRefreshes int
	}{
		{
			name:          "refresh then success",
			tokens:        &rotatingTokens{},
			accept:        func(_ *http.Request, token string) bool { return token == "tok-1" },
			wantAttempts:  2,
			wantRefreshes: 1,
		},
		{
			name:          "refresh only once",
			tokens:        &rotatingTokens{},
			accept:        func(*http.Request, string) bool { return false },
			wantErrStatus: http.StatusUnauthorized,
			wantAttempts:  2,
			wantRefreshes: 1,
		},
		{
			name:          "static token is not retried",
			tokens:        staticTokens("tok-0"),
			accept:        func(*http.Request, string) bool { return false },
			wantErrStatus: http.StatusUnauthorized,
			wantAttempts:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGraph(t)
			fg.acceptToken = tt.accept
			sleeper := &sleepRecorder{}
			cfg := testConfig(fg, sleeper)
			cfg.Tokens = tt.tokens
			g := newTestGraph(t, cfg)

			_, attempts, err := g.getDrive(context.Background(), "group-1")
			if tt.wantErrStatus == 0 && err != nil {
				t.Fatalf("getDrive: %v", err)
			}
			if tt.wantErrStatus != 0 {
				var graphErr *GraphError
				if !errors.As(err, &graphErr) || graphErr.Status != tt.wantErrStatus {
					t.Fatalf("error = %v, want a *GraphError with status %d", err, tt.wantErrStatus)
				}
			}
			if attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if rt, ok := tt.tokens.(*rotatingTokens); ok && rt.refreshes != tt.wantRefreshes {
				t.Errorf("token refreshes = %d, want %d", rt.refreshes, tt.wantRefreshes)
			}
			if len(sleeper.recorded()) != 0 {
				t.Errorf("waits = %v, want none: a refresh retries at once", sleeper.recorded())
			}
		})
	}
}

func TestRetryGateContextCancelStopsWait(t *testing.T) {
	fg := newFakeGraph(t)
	ctx, cancel := context.WithCancel(context.Background())
	fg.drive = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
		cancel()
		throttle(http.StatusTooManyRequests, "3600")(w)
	}
	cfg := testConfig(fg, nil)
	cfg.Sleep = nil // the real timer: only the cancellation can end this wait
	g := newTestGraph(t, cfg)

	_, attempts, err := g.getDrive(ctx, "group-1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if attempts != 1 {
		t.Errorf("attempts = %d, want 1", attempts)
	}
}

func TestRetryGateLogsRetries(t *testing.T) {
	fg := newFakeGraph(t)
	fg.drive = func(w http.ResponseWriter, _ *http.Request, id string, n int) {
		if n <= 2 {
			throttle(http.StatusTooManyRequests, "2")(w)
			return
		}
		driveOK(w, id)
	}
	var logs syncBuffer
	cfg := testConfig(fg, &sleepRecorder{})
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := newTestGraph(t, cfg)

	if _, err := g.GetDrive(context.Background(), "group-1"); err != nil {
		t.Fatalf("GetDrive: %v", err)
	}

	var records []map[string]any
	dec := json.NewDecoder(strings.NewReader(logs.String()))
	for {
		var rec map[string]any
		if err := dec.Decode(&rec); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode log: %v", err)
		}
		if rec["msg"] == "retry graph request" {
			records = append(records, rec)
		}
	}
	if len(records) != 2 {
		t.Fatalf("retry log records = %d, want 2:\n%s", len(records), logs.String())
	}
	wantLevels := []string{"WARN", "DEBUG"}
	for i, rec := range records {
		if rec["level"] != wantLevels[i] {
			t.Errorf("record %d level = %v, want %s (warn only when the reason changes)", i, rec["level"], wantLevels[i])
		}
		for _, key := range []string{"team_id", "status", "attempt", "wait", "reason"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("record %d lacks %q: %v", i, key, rec)
			}
		}
		if rec["team_id"] != "group-1" || rec["status"] != float64(429) {
			t.Errorf("record %d = %v, want team_id group-1 and status 429", i, rec)
		}
	}
	if strings.Contains(logs.String(), "tok-0") {
		t.Errorf("log contains the bearer token:\n%s", logs.String())
	}
}

func TestRetryGateTokenError(t *testing.T) {
	fg := newFakeGraph(t)
	cfg := testConfig(fg, &sleepRecorder{})
	failing := errors.New("authority down")
	cfg.Tokens = tokenFunc(func(context.Context) (string, error) { return "", failing })
	g := newTestGraph(t, cfg)

	_, attempts, err := g.getDrive(context.Background(), "group-1")
	if !errors.Is(err, failing) {
		t.Fatalf("error = %v, want the token source's error", err)
	}
	if attempts != 0 || fg.calls("group-1") != 0 {
		t.Errorf("attempts = %d, requests = %d, want 0 each", attempts, fg.calls("group-1"))
	}
}

type tokenFunc func(ctx context.Context) (string, error)

func (f tokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// throttle returns a handler that writes status and, when not empty, Retry-After.
func throttle(status int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeGraphError(w, status, "throttled", "Too many requests")
	}
}
