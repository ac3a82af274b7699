package scanner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// hangGuard bounds the waits that a broken scanner could make endless, so
// that such a test fails with a message instead of hanging. It is not a
// speed assertion: a correct scanner never gets near it.
const hangGuard = 30 * time.Second

func newTestScanner(t *testing.T, cfg Config) *Scanner {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// usageByID indexes r's Teams by id and fails t when an id appears twice.
func usageByID(t *testing.T, r *Result) map[string]TeamUsage {
	t.Helper()
	out := make(map[string]TeamUsage, len(r.Teams))
	for _, u := range r.Teams {
		if _, dup := out[u.Team.ID]; dup {
			t.Errorf("team %s appears twice in the result", u.Team.ID)
		}
		out[u.Team.ID] = u
	}
	return out
}

func TestScanOutcomes(t *testing.T) {
	tests := []struct {
		id           string
		answer       func(t *testing.T, w http.ResponseWriter, id string, n int)
		wantOutcome  Outcome
		wantReason   string
		wantAttempts int
	}{
		{
			id:           "measured",
			answer:       func(_ *testing.T, w http.ResponseWriter, id string, _ int) { driveOK(w, id) },
			wantOutcome:  OutcomeMeasured,
			wantAttempts: 1,
		},
		{
			id: "zero-quota",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				writeJSON(w, http.StatusOK, map[string]any{"id": "b!z", "quota": map[string]any{"total": 0, "used": 0, "remaining": 0, "deleted": 0}})
			},
			wantOutcome:  OutcomeUnknown,
			wantReason:   "drive quota is all zero",
			wantAttempts: 1,
		},
		{
			id: "not-provisioned",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				writeGraphError(w, http.StatusNotFound, "itemNotFound", "The resource could not be found.")
			},
			wantOutcome:  OutcomeNoDrive,
			wantReason:   "HTTP 404 itemNotFound: The resource could not be found.",
			wantAttempts: 1,
		},
		{
			id: "access-denied",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				writeGraphError(w, http.StatusForbidden, "accessDenied", "Access denied")
			},
			wantOutcome:  OutcomeForbidden,
			wantReason:   "HTTP 403 accessDenied: Access denied",
			wantAttempts: 1,
		},
		{
			id: "throttled-twice",
			answer: func(_ *testing.T, w http.ResponseWriter, id string, n int) {
				if n <= 2 {
					throttle(http.StatusTooManyRequests, "0.5")(w)
					return
				}
				driveOK(w, id)
			},
			wantOutcome:  OutcomeMeasured,
			wantAttempts: 3,
		},
		{
			id: "busy",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				throttle(http.StatusServiceUnavailable, "1")(w)
			},
			wantOutcome:  OutcomeFailed,
			wantReason:   "HTTP 503 after 4 attempts",
			wantAttempts: 4,
		},
		{
			id: "broken",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				throttle(http.StatusInternalServerError, "")(w)
			},
			wantOutcome:  OutcomeFailed,
			wantReason:   "HTTP 500 after 4 attempts",
			wantAttempts: 4,
		},
		{
			id: "gateway-timeout",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				throttle(http.StatusGatewayTimeout, "")(w)
			},
			wantOutcome:  OutcomeFailed,
			wantReason:   "HTTP 504 after 4 attempts",
			wantAttempts: 4,
		},
		{
			id: "bad-request",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				writeGraphError(w, http.StatusBadRequest, "invalidRequest", "Invalid request")
			},
			wantOutcome:  OutcomeFailed,
			wantReason:   "HTTP 400 invalidRequest: Invalid request",
			wantAttempts: 1,
		},
		{
			id: "not-json",
			answer: func(_ *testing.T, w http.ResponseWriter, _ string, _ int) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, "{not json")
			},
			wantOutcome:  OutcomeFailed,
			wantReason:   "decode drive: ",
			wantAttempts: 1,
		},
	}

	fg := newFakeGraph(t)
	answers := make(map[string]func(*testing.T, http.ResponseWriter, string, int))
	var page1, page2 []Team
	for i, tt := range tests {
		answers[tt.id] = tt.answer
		team := Team{ID: tt.id, DisplayName: "Team " + tt.id}
		if i%2 == 0 {
			page1 = append(page1, team)
		} else {
			page2 = append(page2, team)
		}
	}
	fg.pages = [][]Team{page1, page2}
	fg.drive = func(w http.ResponseWriter, _ *http.Request, id string, n int) { answers[id](t, w, id, n) }

	cfg := testConfig(fg, &sleepRecorder{})
	cfg.MaxAttempts = 4
	cfg.Concurrency = 3
	result, err := newTestScanner(t, cfg).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	if len(result.Teams) != len(tests) {
		t.Errorf("result has %d teams, want %d", len(result.Teams), len(tests))
	}
	byID := usageByID(t, result)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			u, ok := byID[tt.id]
			if !ok {
				t.Fatalf("team %s missing from the result", tt.id)
			}
			if u.Outcome != tt.wantOutcome {
				t.Errorf("Outcome = %s, want %s (reason %q)", u.Outcome, tt.wantOutcome, u.Reason)
			}
			if !strings.HasPrefix(u.Reason, tt.wantReason) || (tt.wantReason == "" && u.Reason != "") {
				t.Errorf("Reason = %q, want it to start with %q", u.Reason, tt.wantReason)
			}
			if u.Attempts != tt.wantAttempts {
				t.Errorf("Attempts = %d, want %d", u.Attempts, tt.wantAttempts)
			}
			if u.Outcome == OutcomeMeasured && u.Quota.Used != int64(1000*len(tt.id)) {
				t.Errorf("Quota.Used = %d, want %d", u.Quota.Used, 1000*len(tt.id))
			}
			if u.Outcome != OutcomeMeasured && u.Quota != (Quota{}) {
				t.Errorf("Quota = %+v, want zero for outcome %s", u.Quota, u.Outcome)
			}
		})
	}

	if result.TenantID != "tenant-1" {
		t.Errorf("TenantID = %q, want tenant-1", result.TenantID)
	}
	if want := cfg.Now(); !result.StartedAt.Equal(want) || !result.FinishedAt.Equal(want) {
		t.Errorf("StartedAt, FinishedAt = %s, %s, want both %s from the injected clock", result.StartedAt, result.FinishedAt, want)
	}
	// "throttled-twice" (15 bytes of id) uses more than "measured" (8).
	if result.Teams[0].Team.ID != "throttled-twice" || result.Teams[1].Team.ID != "measured" {
		t.Errorf("first teams = %s, %s, want throttled-twice, measured (largest first)", result.Teams[0].Team.ID, result.Teams[1].Team.ID)
	}
}

func TestScanThrottleStormLosesNoTeam(t *testing.T) {
	const perPage, pageCount, throttledAnswers = 100, 3, 3
	fg := newFakeGraph(t)
	for p := range pageCount {
		fg.pages = append(fg.pages, teams(fmt.Sprintf("p%d", p), perPage))
	}
	fg.drive = func(w http.ResponseWriter, _ *http.Request, id string, n int) {
		if n <= throttledAnswers {
			throttle(http.StatusTooManyRequests, "0.01")(w)
			return
		}
		driveOK(w, id)
	}
	sleeper := &sleepRecorder{}
	cfg := testConfig(fg, sleeper)
	cfg.Concurrency = 16

	result, err := newTestScanner(t, cfg).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	byID := usageByID(t, result)
	if len(byID) != perPage*pageCount {
		t.Errorf("result has %d distinct teams, want %d", len(byID), perPage*pageCount)
	}
	for p := range pageCount {
		for _, team := range teams(fmt.Sprintf("p%d", p), perPage) {
			u, ok := byID[team.ID]
			switch {
			case !ok:
				t.Errorf("team %s lost", team.ID)
			case u.Outcome != OutcomeMeasured || u.Attempts != throttledAnswers+1:
				t.Errorf("team %s = %s after %d attempts (%s), want measured after %d", team.ID, u.Outcome, u.Attempts, u.Reason, throttledAnswers+1)
			}
		}
	}

	// Every retry waited at least the server's 0.01 s. The shared pacer may
	// add waits of its own, spacing requests while Graph throttles.
	waits := sleeper.recorded()
	if len(waits) < perPage*pageCount*throttledAnswers {
		t.Errorf("waits = %d, want at least one per throttled answer (%d)", len(waits), perPage*pageCount*throttledAnswers)
	}
	for _, w := range waits {
		if w < 10*time.Millisecond {
			t.Fatalf("wait = %s, want at least the server's 0.01 s", w)
		}
	}
}

func TestScanConcurrencyNeverExceedsSetting(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("concurrency %d", limit), func(t *testing.T) {
			fg := newFakeGraph(t)
			// Each page of 200 Teams makes 10 batches, whose lookups run one
			// after the other, so drive requests in flight count batches.
			fg.pages = [][]Team{teams("a", 200), teams("b", 200)}

			// The first limit requests wait for each other, so the pool
			// must fill up. Any request beyond the limit would be counted
			// in flight alongside them.
			var mu sync.Mutex
			arrivals := 0
			full := make(chan struct{})
			fg.hold = func() {
				mu.Lock()
				arrivals++
				if arrivals == limit {
					close(full)
				}
				mu.Unlock()
				select {
				case <-full:
				case <-time.After(hangGuard):
					t.Errorf("fewer than %d drive requests ever ran at once", limit)
				}
			}
			cfg := testConfig(fg, &sleepRecorder{})
			cfg.Concurrency = limit

			result, err := newTestScanner(t, cfg).Scan(context.Background())
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if got := result.Count(OutcomeMeasured); got != 400 {
				t.Errorf("measured teams = %d, want 400", got)
			}
			if fg.maxInflight != limit {
				t.Errorf("max drive requests in flight = %d, want %d", fg.maxInflight, limit)
			}
		})
	}
}

func TestScanFeedsWorkersBeforeListingEnds(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("first", 2), teams("second", 2)}
	firstDrive := make(chan struct{})
	var once sync.Once
	fg.hold = func() { once.Do(func() { close(firstDrive) }) }
	fg.listFail = func(_ http.ResponseWriter, i int) bool {
		if i == 1 {
			select {
			case <-firstDrive:
			case <-time.After(hangGuard):
				t.Error("no drive request arrived while the second page was pending")
			}
		}
		return false
	}

	result, err := newTestScanner(t, testConfig(fg, &sleepRecorder{})).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if got := result.Count(OutcomeMeasured); got != 4 {
		t.Errorf("measured teams = %d, want 4", got)
	}
}

func TestScanTokenRefreshOnceForManyWorkers(t *testing.T) {
	const teamCount = 40
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("t", teamCount)}
	// The list works with the first token, then Graph revokes it: every
	// batch's first attempt gets 401.
	fg.acceptToken = func(r *http.Request, token string) bool {
		return token == "tok-1" || (token == "tok-0" && !strings.HasSuffix(r.URL.Path, "/$batch"))
	}
	tokens := &rotatingTokens{}
	cfg := testConfig(fg, &sleepRecorder{})
	cfg.Tokens = tokens
	cfg.Concurrency = 8

	result, err := newTestScanner(t, cfg).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	if got := result.Count(OutcomeMeasured); got != teamCount {
		t.Errorf("measured teams = %d, want %d", got, teamCount)
	}
	if tokens.refreshes != 1 {
		t.Errorf("token refreshes = %d, want 1", tokens.refreshes)
	}
	for _, u := range result.Teams {
		if u.Attempts != 2 {
			t.Errorf("team %s attempts = %d, want 2: the rejected batch and its retry", u.Team.ID, u.Attempts)
		}
	}
	// 40 Teams make two batches, and each may report the same expired token.
	if tokens.invalidations < 1 || tokens.invalidations > 2 {
		t.Errorf("invalidations = %d, want 1 or 2, one per batch at most", tokens.invalidations)
	}
}

func TestScanContextCancelStops(t *testing.T) {
	const concurrency = 4
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("t", 100)}
	ctx, cancel := context.WithCancel(context.Background())
	fg.drive = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
		cancel()
		throttle(http.StatusTooManyRequests, "3600")(w)
	}
	cfg := testConfig(fg, nil)
	cfg.Sleep = nil // the real timer: only the cancellation can end these waits
	cfg.Concurrency = concurrency

	result, err := newTestScanner(t, cfg).Scan(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan error = %v, want context.Canceled", err)
	}
	if result != nil {
		t.Errorf("Scan result = %v, want nil for a cancelled scan", result)
	}

	fg.mu.Lock()
	batches := fg.batchCalls
	fg.mu.Unlock()
	if batches > concurrency {
		t.Errorf("batch requests = %d, want at most %d: none after the cancellation", batches, concurrency)
	}
}

func TestScanListFailureFailsScan(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("a", 5), teams("b", 5)}
	fg.listFail = func(w http.ResponseWriter, i int) bool {
		if i != 1 {
			return false
		}
		writeGraphError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges")
		return true
	}

	result, err := newTestScanner(t, testConfig(fg, &sleepRecorder{})).Scan(context.Background())
	if err == nil {
		t.Fatalf("Scan returned %d teams and no error, want the list error", len(result.Teams))
	}
	var graphErr *GraphError
	if !errors.As(err, &graphErr) || graphErr.Status != http.StatusForbidden {
		t.Errorf("Scan error = %v, want a *GraphError with status 403", err)
	}
	if !strings.Contains(err.Error(), "list teams page 2") {
		t.Errorf("Scan error = %q, want it to name page 2", err)
	}
}

func TestScanProgress(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("a", 7), teams("b", 5)}
	var (
		mu    sync.Mutex
		calls [][2]int
	)
	cfg := testConfig(fg, &sleepRecorder{})
	cfg.Progress = func(done, discovered int) {
		mu.Lock()
		calls = append(calls, [2]int{done, discovered})
		mu.Unlock()
	}

	if _, err := newTestScanner(t, cfg).Scan(context.Background()); err != nil {
		t.Fatalf("Scan: %v", err)
	}

	if len(calls) != 2+12 {
		t.Errorf("progress calls = %d, want 14 (one a page, one a team)", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i][0] < calls[i-1][0] || calls[i][1] < calls[i-1][1] {
			t.Errorf("progress went backwards: %v then %v", calls[i-1], calls[i])
		}
		if calls[i][0] > calls[i][1] {
			t.Errorf("progress %v has more done than discovered", calls[i])
		}
	}
	if last := calls[len(calls)-1]; last != [2]int{12, 12} {
		t.Errorf("last progress = %v, want [12 12]", last)
	}
}

func TestNewRejectsConcurrency(t *testing.T) {
	for _, c := range []int{-1, maxConcurrency + 1} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			_, err := New(Config{Tokens: staticTokens("t"), Concurrency: c})
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New with concurrency %d = %v, want ErrInvalidConfig", c, err)
			}
		})
	}
}
