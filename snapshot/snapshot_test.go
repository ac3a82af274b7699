package snapshot_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/snapshot"
	"github.com/storagebot/storagebot/store"
	"github.com/storagebot/storagebot/store/storetest"
)

// testTimeout bounds every wait in these tests, so a bug fails the test
// instead of hanging it.
const testTimeout = time.Minute

var baseTime = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the replicas of one test.
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

// fakeScan counts scans and returns a scan of one Team that finishes at the
// clock's time plus one second. When gate is set, each scan first signals
// started and then waits for gate to close.
type fakeScan struct {
	clock   *clock
	used    int64
	err     error
	gate    chan struct{}
	started chan struct{}
	count   atomic.Int32
}

func (f *fakeScan) Scan(ctx context.Context) (*scanner.Result, error) {
	f.count.Add(1)
	if f.gate != nil {
		f.started <- struct{}{}
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return result(f.clock.Now().Add(time.Second), f.used), nil
}

func result(finishedAt time.Time, used int64) *scanner.Result {
	return &scanner.Result{
		TenantID:   "tenant-1",
		StartedAt:  finishedAt.Add(-time.Minute),
		FinishedAt: finishedAt,
		Teams: []scanner.TeamUsage{{
			Team:     scanner.Team{ID: "team-1", DisplayName: "The Library"},
			Outcome:  scanner.OutcomeMeasured,
			Quota:    scanner.Quota{Total: 1 << 40, Used: used, Remaining: 1<<40 - used, State: "normal"},
			Attempts: 1,
		}},
	}
}

func openStore(t *testing.T, b storetest.Backend) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), b.URL, nil)
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newSource(t *testing.T, st snapshot.Store, c *clock, scan *fakeScan, holder string) *snapshot.Source {
	t.Helper()
	src, err := snapshot.New(snapshot.Config{
		Store:        st,
		Scan:         scan.Scan,
		TenantID:     "tenant-1",
		Holder:       holder,
		TTL:          15 * time.Minute,
		LeaseTTL:     time.Minute,
		PollInterval: time.Millisecond,
		Now:          c.Now,
	})
	if err != nil {
		t.Fatalf("snapshot.New: %v", err)
	}
	return src
}

func saveScan(t *testing.T, st store.Store, r *scanner.Result) {
	t.Helper()
	if _, err := st.SaveScan(t.Context(), r); err != nil {
		t.Fatalf("SaveScan: %v", err)
	}
}

func usedOf(r *scanner.Result) int64 {
	return r.Teams[0].Quota.Used
}

// A snapshot within the TTL, saved by an earlier process, is served
// without a scan; a stale one is replaced by a new scan.
func TestGetServesStoredSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		age       time.Duration
		wantScans int32
		wantUsed  int64
	}{
		{"fresh", 14 * time.Minute, 0, 100},
		{"stale", 16 * time.Minute, 1, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
				c := &clock{now: baseTime}
				previous := openStore(t, b)
				saveScan(t, previous, result(baseTime.Add(-tt.age), 100))
				previous.Close()

				scan := &fakeScan{clock: c, used: 200}
				src := newSource(t, openStore(t, b), c, scan, "replica-a")
				got, err := src.Get(t.Context())
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if n := scan.count.Load(); n != tt.wantScans {
					t.Errorf("scans = %d, want %d", n, tt.wantScans)
				}
				if usedOf(got) != tt.wantUsed {
					t.Errorf("Get returned used bytes %d, want %d", usedOf(got), tt.wantUsed)
				}

				again, err := src.Get(t.Context())
				if err != nil {
					t.Fatalf("second Get: %v", err)
				}
				if n := scan.count.Load(); n != tt.wantScans {
					t.Errorf("scans after a second Get = %d, want still %d", n, tt.wantScans)
				}
				if !again.FinishedAt.Equal(got.FinishedAt) {
					t.Errorf("second Get returned the scan finished %s, want %s", again.FinishedAt, got.FinishedAt)
				}
			})
		})
	}
}

func TestGetScansEmptyStoreOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		st := openStore(t, b)
		c := &clock{now: baseTime}
		scan := &fakeScan{clock: c, used: 300}
		src := newSource(t, st, c, scan, "replica-a")

		got, err := src.Get(t.Context())
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if usedOf(got) != 300 {
			t.Errorf("Get returned used bytes %d, want 300", usedOf(got))
		}
		stored, err := st.LatestScan(t.Context())
		if err != nil {
			t.Fatalf("LatestScan: %v", err)
		}
		if !stored.FinishedAt.Equal(got.FinishedAt) {
			t.Errorf("stored scan finished %s, want the scan Get returned (%s)", stored.FinishedAt, got.FinishedAt)
		}
		if n := scan.count.Load(); n != 1 {
			t.Errorf("scans = %d, want 1", n)
		}
	})
}

// Two replicas on one database are asked to refresh at the same clock
// reading: one scans, and the other waits for that scan and returns it.
func TestRefreshOnTwoReplicasScansOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		saveScan(t, openStore(t, b), result(baseTime.Add(-time.Minute), 100))
		scan := &fakeScan{clock: c, used: 500, gate: make(chan struct{}), started: make(chan struct{}, 2)}
		replicas := []*snapshot.Source{
			newSource(t, openStore(t, b), c, scan, "replica-a"),
			newSource(t, openStore(t, b), c, scan, "replica-b"),
		}

		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		results := make(chan *scanner.Result, 2*len(replicas))
		errs := make(chan error, 2*len(replicas))
		for _, src := range replicas {
			for range 2 {
				go func() {
					r, err := src.Refresh(ctx)
					results <- r
					errs <- err
				}()
			}
		}

		select {
		case <-scan.started:
		case <-ctx.Done():
			t.Fatal("no replica started a scan")
		}
		close(scan.gate)

		for range 2 * len(replicas) {
			if err := <-errs; err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if r := <-results; usedOf(r) != 500 {
				t.Errorf("Refresh returned used bytes %d, want the new scan's 500", usedOf(r))
			}
		}
		if n := scan.count.Load(); n != 1 {
			t.Errorf("scans = %d, want exactly 1 for four simultaneous refreshes on two replicas", n)
		}
	})
}

// A replica that died while it held the scan lease delays the next scan
// until the lease expires; then another replica scans.
func TestRefreshTakesOverExpiredLease(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		st := openStore(t, b)
		leased, err := st.TryLease(t.Context(), "scan:tenant-1", "dead-replica", baseTime, time.Minute)
		if err != nil || !leased {
			t.Fatalf("TryLease for the dead replica = %v, %v; want true, nil", leased, err)
		}
		watched := &leaseWatcher{Store: st, refused: make(chan struct{}, 1)}
		scan := &fakeScan{clock: c, used: 700}
		src := newSource(t, watched, c, scan, "replica-b")

		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := src.Refresh(ctx)
			done <- err
		}()

		select {
		case <-watched.refused:
		case <-ctx.Done():
			t.Fatal("the replica never tried the lease")
		}
		if n := scan.count.Load(); n != 0 {
			t.Fatalf("scans while the dead replica's lease is valid = %d, want 0", n)
		}

		c.Advance(time.Minute)
		if err := <-done; err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if n := scan.count.Load(); n != 1 {
			t.Errorf("scans after the lease expired = %d, want 1", n)
		}
	})
}

// leaseWatcher signals the first TryLease that another holder wins.
type leaseWatcher struct {
	store.Store
	refused chan struct{}
}

func (w *leaseWatcher) TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	ok, err := w.Store.TryLease(ctx, name, holder, now, ttl)
	if err == nil && !ok {
		select {
		case w.refused <- struct{}{}:
		default:
		}
	}
	return ok, err
}

func TestFailedScanKeepsPreviousSnapshot(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		st := openStore(t, b)
		previous := result(baseTime.Add(-time.Hour), 100)
		saveScan(t, st, previous)
		errGraph := errors.New("list teams: HTTP 503")
		scan := &fakeScan{clock: c, err: errGraph}
		src := newSource(t, st, c, scan, "replica-a")

		_, err := src.Get(t.Context())
		if !errors.Is(err, errGraph) {
			t.Fatalf("Get error = %v, want the scan's error", err)
		}

		stored, err := st.LatestScan(t.Context())
		if err != nil {
			t.Fatalf("LatestScan: %v", err)
		}
		if !stored.FinishedAt.Equal(previous.FinishedAt) {
			t.Errorf("latest stored scan finished %s, want the previous scan's %s", stored.FinishedAt, previous.FinishedAt)
		}
		leased, err := st.TryLease(t.Context(), "scan:tenant-1", "replica-b", c.Now(), time.Minute)
		if err != nil || !leased {
			t.Errorf("TryLease by another replica after the failed scan = %v, %v; want the lease released", leased, err)
		}
	})
}

// A caller whose context ends stops waiting, but the scan goes on and its
// result is stored for the next caller.
func TestGetCallerCancelKeepsScan(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		st := openStore(t, b)
		scan := &fakeScan{clock: c, used: 900, gate: make(chan struct{}), started: make(chan struct{}, 1)}
		src := newSource(t, st, c, scan, "replica-a")

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := src.Get(ctx)
			done <- err
		}()
		select {
		case <-scan.started:
		case <-time.After(testTimeout):
			t.Fatal("the scan did not start")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Get error after cancel = %v, want context.Canceled", err)
		}

		close(scan.gate)
		wait, stop := context.WithTimeout(t.Context(), testTimeout)
		defer stop()
		got, err := src.Get(wait)
		if err != nil {
			t.Fatalf("Get after the scan: %v", err)
		}
		if usedOf(got) != 900 {
			t.Errorf("Get returned used bytes %d, want the scan's 900", usedOf(got))
		}
		if n := scan.count.Load(); n != 1 {
			t.Errorf("scans = %d, want 1", n)
		}
	})
}

// The progress that the scanner reports is visible while this replica
// scans, and cleared when the scan ends.
func TestScanProgressDuringScan(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		st := openStore(t, b)
		c := &clock{now: baseTime}
		scan := &fakeScan{clock: c, used: 300, gate: make(chan struct{}), started: make(chan struct{}, 1)}
		src := newSource(t, st, c, scan, "replica-a")

		if _, _, running := src.ScanProgress(); running {
			t.Fatal("ScanProgress reports a scan before any started")
		}
		refreshed := make(chan error, 1)
		go func() {
			_, err := src.Refresh(t.Context())
			refreshed <- err
		}()
		select {
		case <-scan.started:
		case <-time.After(testTimeout):
			t.Fatal("the scan did not start")
		}

		src.ReportProgress(312, 535)
		done, discovered, running := src.ScanProgress()
		if !running || done != 312 || discovered != 535 {
			t.Errorf("ScanProgress during the scan = %d, %d, %v; want 312, 535, true", done, discovered, running)
		}

		close(scan.gate)
		select {
		case err := <-refreshed:
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("Refresh did not return")
		}
		if done, discovered, running := src.ScanProgress(); running || done != 0 || discovered != 0 {
			t.Errorf("ScanProgress after the scan = %d, %d, %v; want 0, 0, false", done, discovered, running)
		}
	})
}
