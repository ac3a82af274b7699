package scanner

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const (
	// DefaultCacheTTL is how long Get returns a scan before it starts a
	// new one.
	DefaultCacheTTL = 15 * time.Minute
	// DefaultScanTimeout bounds a scan that the cache starts. The scan runs
	// apart from the callers' contexts, so it needs its own limit.
	DefaultScanTimeout = 30 * time.Minute
)

// Cache keeps the last complete scan and runs at most one scan at a time.
// Callers that ask while a scan runs wait for that scan. A failed scan is not
// kept, and the previous good one stays. The returned *Result is shared by
// every caller and must be treated as read-only.
type Cache struct {
	scan func(ctx context.Context) (*Result, error)
	ttl  time.Duration
	now  func() time.Time

	// ScanTimeout bounds each scan. Set it before the first Get or Refresh.
	ScanTimeout time.Duration

	mu       sync.Mutex
	last     *Result
	lastAt   time.Time
	inflight *scanCall

	// onJoin, when set by tests, runs each time a caller joins a scan that
	// another caller started.
	onJoin func()
}

// scanCall is one scan shared by every caller that waits for it.
type scanCall struct {
	done   chan struct{}
	result *Result
	err    error
}

// NewCache returns a cache around scanFunc, usually (*Scanner).Scan. A ttl
// of 0 or less means DefaultCacheTTL, and a nil now means time.Now.
func NewCache(scanFunc func(ctx context.Context) (*Result, error), ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{scan: scanFunc, ttl: ttl, now: now, ScanTimeout: DefaultScanTimeout}
}

// Get returns the last complete scan while it is younger than the TTL, and
// otherwise waits for a new one. When ctx ends first, Get returns ctx's
// error and the scan goes on for the other callers and for the cache.
func (c *Cache) Get(ctx context.Context) (*Result, error) {
	c.mu.Lock()
	if c.last != nil && c.now().Sub(c.lastAt) < c.ttl {
		r := c.last
		c.mu.Unlock()
		return r, nil
	}
	call := c.startLocked()
	c.mu.Unlock()

	return wait(ctx, call)
}

// Refresh waits for a new scan whatever the age of the last one. It joins a
// scan that is already running rather than starting a second one.
func (c *Cache) Refresh(ctx context.Context) (*Result, error) {
	c.mu.Lock()
	call := c.startLocked()
	c.mu.Unlock()

	return wait(ctx, call)
}

// Latest returns the last complete scan, however old, without scanning. It
// returns false when no scan has succeeded yet.
func (c *Cache) Latest() (*Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, c.last != nil
}

// startLocked returns the running scan, or starts one. c.mu must be held.
func (c *Cache) startLocked() *scanCall {
	if c.inflight != nil {
		if c.onJoin != nil {
			c.onJoin()
		}
		return c.inflight
	}
	call := &scanCall{done: make(chan struct{})}
	c.inflight = call
	go c.run(call)
	return call
}

// run performs the scan of call under its own timeout, so that no single
// caller can cancel it, then stores a successful result.
func (c *Cache) run(call *scanCall) {
	ctx, cancel := context.WithTimeout(context.Background(), c.ScanTimeout)
	defer cancel()

	result, err := c.scan(ctx)
	if err == nil && result == nil {
		err = fmt.Errorf("scan returned no result")
	}

	c.mu.Lock()
	if err == nil {
		c.last = result
		c.lastAt = c.now()
	}
	call.result, call.err = result, err
	c.inflight = nil
	c.mu.Unlock()

	close(call.done)
}

// wait returns call's outcome, or ctx's error when ctx ends first.
func wait(ctx context.Context, call *scanCall) (*Result, error) {
	select {
	case <-call.done:
		if call.err != nil {
			return nil, call.err
		}
		return call.result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for scan: %w", ctx.Err())
	}
}
