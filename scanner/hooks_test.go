package scanner

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
)

// countingHooks counts the retry gate's events.
type countingHooks struct {
	throttled, retried atomic.Int64
}

func (h *countingHooks) Throttled() { h.throttled.Add(1) }
func (h *countingHooks) Retried()   { h.retried.Add(1) }

// A throttled page of the Team list and a throttled item inside a JSON
// batch each count once as a throttle and once as a retry, and a 404 counts
// as neither.
func TestHooksCountThrottlesAndRetries(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("t", 5)}
	var listRequests atomic.Int64
	fg.listFail = func(w http.ResponseWriter, i int) bool {
		if listRequests.Add(1) == 1 {
			throttle(http.StatusTooManyRequests, "1")(w)
			return true
		}
		return false
	}
	fg.drive = func(w http.ResponseWriter, _ *http.Request, id string, n int) {
		switch {
		case id == "t-2" && n == 1:
			throttle(http.StatusServiceUnavailable, "1")(w)
		case id == "t-3":
			writeGraphError(w, http.StatusNotFound, "itemNotFound", "not found")
		default:
			driveOK(w, id)
		}
	}
	hooks := &countingHooks{}
	cfg := testConfig(fg, &sleepRecorder{})
	cfg.Hooks = hooks

	if _, err := newTestScanner(t, cfg).Scan(context.Background()); err != nil {
		t.Fatalf("Scan: %v", err)
	}

	if got := hooks.throttled.Load(); got != 2 {
		t.Errorf("Throttled calls = %d, want 2 (the list page and the batch item)", got)
	}
	if got := hooks.retried.Load(); got != 2 {
		t.Errorf("Retried calls = %d, want 2 (the list page and the batch item)", got)
	}
}
