package schedule_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagebot/storagebot/schedule"
	"github.com/storagebot/storagebot/store"
	"github.com/storagebot/storagebot/store/storetest"
)

// baseTime is 09:00 UTC, inside the daily period that starts at 00:00.
var baseTime = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingJob is a daily job that records the period starts it ran for.
type countingJob struct {
	mu     sync.Mutex
	starts []time.Time
	runs   atomic.Int32
	// ran, when set, receives a value after each run.
	ran chan struct{}
}

func (j *countingJob) job() schedule.Job {
	return schedule.Job{
		Name:  "prune",
		Every: 24 * time.Hour,
		Run: func(ctx context.Context, start time.Time) error {
			j.runs.Add(1)
			j.mu.Lock()
			defer j.mu.Unlock()
			j.starts = append(j.starts, start)
			if j.ran != nil {
				j.ran <- struct{}{}
			}
			return nil
		},
	}
}

func newReplica(t *testing.T, b storetest.Backend, c *clock, holder string, j *countingJob) *schedule.Scheduler {
	t.Helper()
	st, err := store.Open(t.Context(), b.URL, nil)
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := schedule.New(schedule.Config{Leases: st, Holder: holder, LeaseTTL: time.Minute, Now: c.Now}, j.job())
	if err != nil {
		t.Fatalf("schedule.New: %v", err)
	}
	return s
}

// tickAll ticks every replica at once and returns how many lead.
func tickAll(ctx context.Context, replicas ...*schedule.Scheduler) int {
	var leaders atomic.Int32
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() {
			if r.Tick(ctx) {
				leaders.Add(1)
			}
		})
	}
	wg.Wait()
	return int(leaders.Load())
}

func TestSchedulerRunsJobOnceAcrossReplicas(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		j := &countingJob{}
		a := newReplica(t, b, c, "replica-a", j)
		bb := newReplica(t, b, c, "replica-b", j)

		steps := []struct {
			name     string
			advance  time.Duration
			wantRuns int32
		}{
			{"first tick", 0, 1},
			{"later in the same day", 20 * time.Second, 1},
			{"still the same day", 14 * time.Hour, 1},
			{"next day", 24 * time.Hour, 2},
		}
		for _, step := range steps {
			c.Advance(step.advance)
			if leaders := tickAll(t.Context(), a, bb); leaders != 1 {
				t.Errorf("%s: %d replicas lead, want exactly 1", step.name, leaders)
			}
			if n := j.runs.Load(); n != step.wantRuns {
				t.Errorf("%s: job ran %d times, want %d", step.name, n, step.wantRuns)
			}
		}

		want := []time.Time{time.Date(2025, time.March, 3, 0, 0, 0, 0, time.UTC), time.Date(2025, time.March, 4, 0, 0, 0, 0, time.UTC)}
		for i, start := range j.starts {
			if i < len(want) && !start.Equal(want[i]) {
				t.Errorf("run %d was for the period starting %s, want %s", i+1, start, want[i])
			}
		}
	})
}

// When the leader stops renewing, the other replica leads once the lease
// expires, skips the period that the old leader already ran, and runs the
// next one.
func TestSchedulerHandoverAfterLeaderDies(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		j := &countingJob{}
		a := newReplica(t, b, c, "replica-a", j)
		bb := newReplica(t, b, c, "replica-b", j)

		if !a.Tick(t.Context()) {
			t.Fatal("replica-a does not lead an empty store")
		}
		c.Advance(30 * time.Second)
		if bb.Tick(t.Context()) {
			t.Fatal("replica-b leads while replica-a's lease is valid")
		}

		c.Advance(31 * time.Second)
		if !bb.Tick(t.Context()) {
			t.Fatal("replica-b does not lead after replica-a's lease expired")
		}
		if n := j.runs.Load(); n != 1 {
			t.Errorf("job ran %d times after the handover in the same day, want 1", n)
		}

		c.Advance(24 * time.Hour)
		if !bb.Tick(t.Context()) {
			t.Fatal("replica-b lost leadership")
		}
		if n := j.runs.Load(); n != 2 {
			t.Errorf("job ran %d times after the next day began, want 2", n)
		}
	})
}

// A scheduler that stops releases leadership, so another replica leads at
// its next tick instead of after the lease expires.
func TestSchedulerRunReleasesLeadership(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		j := &countingJob{ran: make(chan struct{}, 1)}
		a := newReplica(t, b, c, "replica-a", j)
		bb := newReplica(t, b, c, "replica-b", j)

		ctx, cancel := context.WithCancel(t.Context())
		stopped := make(chan error, 1)
		go func() { stopped <- a.Run(ctx) }()
		select {
		case <-j.ran:
		case <-time.After(time.Minute):
			t.Fatal("replica-a did not run the job")
		}
		cancel()
		if err := <-stopped; err != nil {
			t.Fatalf("Run: %v", err)
		}

		if !bb.Tick(t.Context()) {
			t.Error("replica-b does not lead right after replica-a stopped")
		}
		if n := j.runs.Load(); n != 1 {
			t.Errorf("job ran %d times after replica-b took over in the same day, want 1", n)
		}
	})
}

func TestNewRejectsInvalidJobs(t *testing.T) {
	run := func(context.Context, time.Time) error { return nil }
	tests := []struct {
		name string
		jobs []schedule.Job
	}{
		{"no name", []schedule.Job{{Every: time.Hour, Run: run}}},
		{"no period", []schedule.Job{{Name: "prune", Run: run}}},
		{"no Run", []schedule.Job{{Name: "prune", Every: time.Hour}}},
		{"duplicate name", []schedule.Job{{Name: "prune", Every: time.Hour, Run: run}, {Name: "prune", Every: time.Hour, Run: run}}},
	}
	st, err := store.Open(t.Context(), storetest.SQLite(t).URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := schedule.New(schedule.Config{Leases: st, Holder: "replica-a"}, tt.jobs...); err == nil {
				t.Error("New accepted the jobs, want an error")
			}
		})
	}
}
