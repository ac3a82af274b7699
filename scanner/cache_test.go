package scanner

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingScan returns results numbered by call, or the error that fail
// returns for that call. When gate is set, each scan waits for it.
type countingScan struct {
	calls atomic.Int32
	fail  func(n int32) error
	gate  chan struct{}
	// started, when set, receives each scan's context as the scan starts.
	started chan context.Context
}

func (s *countingScan) scan(ctx context.Context) (*Result, error) {
	n := s.calls.Add(1)
	if s.started != nil {
		s.started <- ctx
	}
	if s.gate != nil {
		<-s.gate
	}
	if s.fail != nil {
		if err := s.fail(n); err != nil {
			return nil, err
		}
	}
	return &Result{TenantID: strconv.Itoa(int(n))}, nil
}

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		advance   time.Duration
		wantScans int32
	}{
		{"fresh", 15 * time.Minute, 14 * time.Minute, 1},
		{"expired", 15 * time.Minute, 15 * time.Minute, 2},
		{"default TTL fresh", 0, DefaultCacheTTL - time.Second, 1},
		{"default TTL expired", 0, DefaultCacheTTL, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: testNow}
			s := &countingScan{}
			c := NewCache(s.scan, tt.ttl, clock.Now)

			first, err := c.Get(context.Background())
			if err != nil {
				t.Fatalf("first Get: %v", err)
			}
			clock.Advance(tt.advance)
			second, err := c.Get(context.Background())
			if err != nil {
				t.Fatalf("second Get: %v", err)
			}

			if got := s.calls.Load(); got != tt.wantScans {
				t.Errorf("scans = %d, want %d", got, tt.wantScans)
			}
			if sameResult := first == second; sameResult != (tt.wantScans == 1) {
				t.Errorf("second Get returned the first result: %v, want %v", sameResult, tt.wantScans == 1)
			}
		})
	}
}

func TestCacheRefreshForcesScan(t *testing.T) {
	clock := &fakeClock{now: testNow}
	s := &countingScan{}
	c := NewCache(s.scan, time.Hour, clock.Now)

	if _, err := c.Get(context.Background()); err != nil {
		t.Fatalf("Get: %v", err)
	}
	refreshed, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := s.calls.Load(); got != 2 {
		t.Errorf("scans = %d, want 2", got)
	}
	if latest, _ := c.Latest(); latest != refreshed {
		t.Error("Latest is not the refreshed result")
	}
}

func TestCacheSingleFlight(t *testing.T) {
	const callers = 20
	s := &countingScan{gate: make(chan struct{}), started: make(chan context.Context, 1)}
	c := NewCache(s.scan, time.Hour, (&fakeClock{now: testNow}).Now)

	var joined sync.WaitGroup
	joined.Add(callers - 1)
	c.onJoin = joined.Done

	results := make([]*Result, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	// The first caller starts the scan. The others arrive while it is
	// held at the gate, half through Get and half through Refresh.
	wg.Go(func() { results[0], errs[0] = c.Get(context.Background()) })
	<-s.started
	for i := 1; i < callers; i++ {
		wg.Go(func() {
			if i%2 == 0 {
				results[i], errs[i] = c.Get(context.Background())
			} else {
				results[i], errs[i] = c.Refresh(context.Background())
			}
		})
	}
	joined.Wait()
	close(s.gate)
	wg.Wait()

	if got := s.calls.Load(); got != 1 {
		t.Errorf("scans = %d, want 1", got)
	}
	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		} else if results[i] != results[0] {
			t.Errorf("caller %d got another result than caller 0", i)
		}
	}
}

func TestCacheFailedScanKeepsPrevious(t *testing.T) {
	clock := &fakeClock{now: testNow}
	scanErr := errors.New("graph down")
	s := &countingScan{fail: func(n int32) error {
		if n == 2 {
			return scanErr
		}
		return nil
	}}
	c := NewCache(s.scan, time.Minute, clock.Now)

	if _, ok := c.Latest(); ok {
		t.Error("Latest before any scan returned a result")
	}
	good, err := c.Get(context.Background())
	if err != nil {
		t.Fatalf("first Get: %v", err)
	}

	clock.Advance(time.Hour)
	if _, err := c.Get(context.Background()); !errors.Is(err, scanErr) {
		t.Fatalf("Get during outage = %v, want the scan error", err)
	}
	if latest, ok := c.Latest(); !ok || latest != good {
		t.Errorf("Latest after a failed scan = %v, %v, want the previous good result", latest, ok)
	}

	// The failure was not cached: the next Get scans again.
	third, err := c.Get(context.Background())
	if err != nil {
		t.Fatalf("Get after outage: %v", err)
	}
	if third == good || s.calls.Load() != 3 {
		t.Errorf("Get after outage returned the old result or did not scan (scans = %d)", s.calls.Load())
	}
}

func TestCacheCallerCancelDoesNotStopScan(t *testing.T) {
	s := &countingScan{gate: make(chan struct{}), started: make(chan context.Context, 1)}
	c := NewCache(s.scan, time.Hour, (&fakeClock{now: testNow}).Now)
	joined := make(chan struct{})
	c.onJoin = func() { close(joined) }

	ctx, cancel := context.WithCancel(context.Background())
	impatient := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx)
		impatient <- err
	}()
	scanCtx := <-s.started

	patient := make(chan *Result, 1)
	go func() {
		r, err := c.Get(context.Background())
		if err != nil {
			t.Errorf("patient Get: %v", err)
		}
		patient <- r
	}()
	<-joined

	cancel()
	if err := <-impatient; !errors.Is(err, context.Canceled) {
		t.Errorf("impatient Get = %v, want context.Canceled", err)
	}
	if err := scanCtx.Err(); err != nil {
		t.Errorf("scan context ended with the caller's: %v", err)
	}
	if _, ok := scanCtx.Deadline(); !ok {
		t.Error("scan context has no deadline of its own")
	}

	close(s.gate)
	if r := <-patient; r == nil {
		t.Error("patient Get returned no result")
	}
	if latest, ok := c.Latest(); !ok || latest == nil {
		t.Error("the scan that outlived its first caller was not cached")
	}
}
