package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestScanBatchesOfTwenty(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("a", 45), teams("b", 10)}
	cfg := testConfig(fg, &sleepRecorder{})
	cfg.Concurrency = 1

	result, err := newTestScanner(t, cfg).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if got := result.Count(OutcomeMeasured); got != 55 {
		t.Errorf("measured teams = %d, want 55", got)
	}
	fg.mu.Lock()
	defer fg.mu.Unlock()
	items := 0
	for _, n := range fg.batchSizes {
		if n > maxBatchSize {
			t.Errorf("batch of %d requests, want at most %d", n, maxBatchSize)
		}
		items += n
	}
	if items != 55 || fg.batchCalls < 3 {
		t.Errorf("batches = %v, want 55 lookups in at least 3 batches", fg.batchSizes)
	}
}

func TestScanRetriesThrottledItemInLaterBatch(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("t", 20)}
	fg.drive = func(w http.ResponseWriter, _ *http.Request, id string, n int) {
		if id == "t-7" && n == 1 {
			throttle(http.StatusTooManyRequests, "3")(w)
			return
		}
		driveOK(w, id)
	}
	sleeper := &sleepRecorder{}
	result, err := newTestScanner(t, testConfig(fg, sleeper)).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	byID := usageByID(t, result)
	if u := byID["t-7"]; u.Outcome != OutcomeMeasured || u.Attempts != 2 {
		t.Errorf("t-7 = %s after %d attempts, want measured after 2", u.Outcome, u.Attempts)
	}
	if u := byID["t-8"]; u.Attempts != 1 {
		t.Errorf("t-8 attempts = %d, want 1: a neighbour's 429 must not repeat it", u.Attempts)
	}
	if fg.calls("t-8") != 1 {
		t.Errorf("t-8 drive requests = %d, want 1", fg.calls("t-8"))
	}
	fg.mu.Lock()
	sizes := append([]int(nil), fg.batchSizes...)
	fg.mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 20 || sizes[1] != 1 {
		t.Errorf("batch sizes = %v, want [20 1]: the throttled lookup alone in a later batch", sizes)
	}
	waited := false
	for _, w := range sleeper.recorded() {
		waited = waited || w >= 3*time.Second
	}
	if !waited {
		t.Errorf("waits = %v, want one of at least the item's Retry-After of 3s", sleeper.recorded())
	}
}

func TestScanFailedBatchSparesNeighbours(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("t", 40)}
	// Every batch that carries t-0 breaks off without a response.
	fg.batchFail = func(w http.ResponseWriter, urls []string) bool {
		for _, u := range urls {
			if u == "/groups/t-0/drive" {
				dropConnection(t, w)
				return true
			}
		}
		return false
	}
	cfg := testConfig(fg, &sleepRecorder{})
	cfg.MaxAttempts = 3

	result, err := newTestScanner(t, cfg).Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	failed, measured := 0, 0
	for _, u := range result.Teams {
		switch u.Outcome {
		case OutcomeFailed:
			failed++
			if !strings.HasPrefix(u.Reason, "network error after 3 attempts") {
				t.Errorf("team %s reason = %q, want a network error after 3 attempts", u.Team.ID, u.Reason)
			}
		case OutcomeMeasured:
			measured++
		}
	}
	if failed != 20 || measured != 20 {
		t.Errorf("failed, measured = %d, %d, want 20 and 20: only the broken batch fails", failed, measured)
	}
}

func TestGetJSONAndListAll(t *testing.T) {
	fg := newFakeGraph(t)
	fg.pages = [][]Team{teams("a", 2), teams("b", 1)}
	g := newTestGraph(t, testConfig(fg, &sleepRecorder{}))

	var drive Drive
	if err := g.GetJSON(context.Background(), "groups/a-0/drive", &drive); err != nil {
		t.Fatalf("GetJSON: %v", err)
	}
	if drive.ID != "b!a-0" {
		t.Errorf("drive id = %q, want b!a-0", drive.ID)
	}

	var ids []string
	err := g.ListAll(context.Background(), "/groups?"+teamsQuery, func(raw json.RawMessage) error {
		var team Team
		if err := json.Unmarshal(raw, &team); err != nil {
			return err
		}
		ids = append(ids, team.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("ListAll: %v", err)
	}
	if strings.Join(ids, ",") != "a-0,a-1,b-0" {
		t.Errorf("ids = %v, want a-0, a-1, b-0 across two pages", ids)
	}

	fg.drive = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
		writeGraphError(w, http.StatusNotFound, "itemNotFound", "gone")
	}
	var graphErr *GraphError
	if err := g.GetJSON(context.Background(), "/groups/x/drive", &drive); !errors.As(err, &graphErr) || graphErr.Status != http.StatusNotFound {
		t.Errorf("GetJSON of a missing drive = %v, want a *GraphError with status 404", err)
	}
	if err := g.GetJSON(context.Background(), "https://elsewhere.example/v1.0/me", &drive); err == nil {
		t.Error("GetJSON to another host succeeded, want an error before any request")
	}
}
