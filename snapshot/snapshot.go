// Package snapshot serves the latest complete scan from the store while it is
// younger than the TTL, and runs at most one scan per tenant across replicas.
// A lease in the store lets one replica scan while the others wait for the
// snapshot it saves.
package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/store"
)

const (
	// DefaultLeaseTTL is how long a scan lease lasts without renewal. A
	// replica that dies mid-scan blocks the others' scans for at most this
	// long. The holder renews the lease every third of it.
	DefaultLeaseTTL = time.Minute
	// DefaultTTL is how long the latest stored scan answers before Get
	// starts a new one.
	DefaultTTL = 15 * time.Minute
	// DefaultScanTimeout bounds a scan that Get or Refresh starts. The scan
	// runs apart from the callers' contexts, so it needs its own limit.
	DefaultScanTimeout = 30 * time.Minute
	// DefaultPollInterval is how often a replica that waits for another
	// replica's scan reads the store.
	DefaultPollInterval = time.Second

	// releaseTimeout bounds the release of a lease after the scan's own
	// context has ended.
	releaseTimeout = 5 * time.Second
)

// Store is the part of store.Store that a Source uses.
type Store interface {
	SaveScan(ctx context.Context, r *scanner.Result) (int64, error)
	LatestScan(ctx context.Context) (*scanner.Result, error)
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Config configures a Source.
type Config struct {
	// Store keeps the snapshots and the scan lease. Required.
	Store Store
	// Scan runs one scan, usually (*scanner.Scanner).Scan. Required.
	Scan func(ctx context.Context) (*scanner.Result, error)
	// TenantID names the scan lease, so that replicas serving one tenant
	// share it.
	TenantID string
	// Holder identifies this replica in the lease. Empty means the host
	// name, the process id and a random suffix.
	Holder string
	// TTL is how long a snapshot is served before Get scans again. Zero or
	// less means DefaultTTL.
	TTL time.Duration
	// ScanTimeout bounds one scan, including the wait for another
	// replica's scan. Zero or less means DefaultScanTimeout.
	ScanTimeout time.Duration
	// LeaseTTL is the scan lease's lifetime (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// PollInterval is how often a waiting replica reads the store (default
	// DefaultPollInterval).
	PollInterval time.Duration
	// Now is the clock for freshness and the lease. Nil means time.Now.
	Now func() time.Time
	// Logger receives scan and lease lines. Nil discards them.
	Logger *slog.Logger
	// Hooks, when set, is told whether each Get was served from a fresh
	// stored snapshot. Nil means none.
	Hooks Hooks
}

// Hooks receives a Source's cache events, for example to count them as
// metrics. Calls come from several goroutines at once and must return
// quickly.
type Hooks interface {
	// CacheHit is called when Get returns a stored snapshot younger than
	// the TTL.
	CacheHit()
	// CacheMiss is called when Get has to wait for a new scan.
	CacheMiss()
}

// noHooks is the Hooks of a Source configured without any.
type noHooks struct{}

func (noHooks) CacheHit()  {}
func (noHooks) CacheMiss() {}

// Source serves snapshots from the store and scans when none is fresh. It
// implements bot.Source. Its methods are safe for concurrent use, and the
// returned *scanner.Result is shared by callers and must be treated as
// read-only.
//
// NOTE: the store keeps one history, not one per tenant, so replicas that
// share a database must serve the same tenant.
type Source struct {
	store        Store
	scan         func(ctx context.Context) (*scanner.Result, error)
	leaseName    string
	holder       string
	ttl          time.Duration
	scanTimeout  time.Duration
	leaseTTL     time.Duration
	pollInterval time.Duration
	now          func() time.Time
	logger       *slog.Logger
	hooks        Hooks

	mu       sync.Mutex
	inflight *call

	// progressMu guards the progress of the scan this replica runs.
	progressMu sync.Mutex
	scanning   bool
	done       int
	discovered int
}

// call is one round of "find or make a snapshot" that every caller in this
// process waits for.
type call struct {
	// notBefore is the oldest FinishedAt that satisfies every caller that
	// joined. Callers raise it when they join, under Source.mu.
	notBefore time.Time
	done      chan struct{}
	result    *scanner.Result
	err       error
}

// New checks cfg and returns a Source.
func New(cfg Config) (*Source, error) {
	if cfg.Store == nil {
		return nil, errors.New("create snapshot source: missing Store")
	}
	if cfg.Scan == nil {
		return nil, errors.New("create snapshot source: missing Scan")
	}

	s := &Source{
		store:        cfg.Store,
		scan:         cfg.Scan,
		leaseName:    "scan:" + cfg.TenantID,
		holder:       cfg.Holder,
		ttl:          positiveOr(cfg.TTL, DefaultTTL),
		scanTimeout:  positiveOr(cfg.ScanTimeout, DefaultScanTimeout),
		leaseTTL:     positiveOr(cfg.LeaseTTL, DefaultLeaseTTL),
		pollInterval: positiveOr(cfg.PollInterval, DefaultPollInterval),
		now:          cfg.Now,
		logger:       cfg.Logger,
		hooks:        cfg.Hooks,
	}
	if s.holder == "" {
		s.holder = NewHolder()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.hooks == nil {
		s.hooks = noHooks{}
	}
	return s, nil
}

// NewHolder returns a lease holder id that is unique to this process: the
// host name, the process id and a random suffix, so that a restarted
// process does not inherit the lease of the process it replaces.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	random := make([]byte, 4)
	rand.Read(random)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(random))
}

// ReportProgress records how far the scan that this replica runs has come:
// done Teams measured of discovered Teams listed so far. Pass it as
// scanner.Config.Progress of the scanner behind Config.Scan.
func (s *Source) ReportProgress(done, discovered int) {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	s.done, s.discovered = done, discovered
}

// ScanProgress returns the counts last reported by the scan that this
// replica runs, and running false when it runs none, for example while it
// waits for another replica's scan.
func (s *Source) ScanProgress() (done, discovered int, running bool) {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	return s.done, s.discovered, s.scanning
}

func (s *Source) setScanning(running bool) {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	s.scanning = running
	s.done, s.discovered = 0, 0
}

// Holder returns the id that this Source holds leases under.
func (s *Source) Holder() string {
	return s.holder
}

// Get returns the latest stored snapshot while it is younger than the TTL,
// and otherwise waits for a new scan, here or on another replica. When ctx
// ends first, Get returns ctx's error and the scan goes on.
func (s *Source) Get(ctx context.Context) (*scanner.Result, error) {
	notBefore := s.now().Add(-s.ttl)

	latest, err := s.store.LatestScan(ctx)
	switch {
	case err == nil && !latest.FinishedAt.Before(notBefore):
		s.hooks.CacheHit()
		return latest, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("get snapshot: %w", err)
	}
	s.hooks.CacheMiss()
	return s.await(ctx, notBefore)
}

// Refresh waits for a scan that finished at or after the call, whatever the
// age of the latest snapshot. Refreshes at the same time, in this process or
// on other replicas, share one scan.
func (s *Source) Refresh(ctx context.Context) (*scanner.Result, error) {
	return s.await(ctx, s.now())
}

// await joins the round in flight, raising its requirement to notBefore,
// or starts one, and waits for its result.
func (s *Source) await(ctx context.Context, notBefore time.Time) (*scanner.Result, error) {
	s.mu.Lock()
	c := s.inflight
	if c == nil {
		c = &call{notBefore: notBefore, done: make(chan struct{})}
		s.inflight = c
		go s.run(c)
	} else if notBefore.After(c.notBefore) {
		c.notBefore = notBefore
	}
	s.mu.Unlock()

	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		return c.result, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for snapshot: %w", ctx.Err())
	}
}

// run finds or makes a snapshot for c under its own timeout, so that no
// single caller can cancel it.
func (s *Source) run(c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), s.scanTimeout)
	defer cancel()

	result, err := s.obtain(ctx, c)
	if err != nil {
		s.logger.Error("get snapshot failed", "err", err)
	}

	s.mu.Lock()
	c.result, c.err = result, err
	s.inflight = nil
	s.mu.Unlock()
	close(c.done)
}

// obtain returns the first of: a stored snapshot that satisfies c, the scan
// of this replica when it gets the lease, or the snapshot that the lease
// holder saves. The loop ends with ctx, which run bounds with the scan
// timeout.
func (s *Source) obtain(ctx context.Context, c *call) (*scanner.Result, error) {
	for {
		if r, err := s.storedFor(ctx, c); r != nil || err != nil {
			return r, err
		}

		leased, err := s.store.TryLease(ctx, s.leaseName, s.holder, s.now(), s.leaseTTL)
		if err != nil {
			return nil, fmt.Errorf("get snapshot: %w", err)
		}
		if leased {
			return s.scanWithLease(ctx, c)
		}

		s.logger.Debug("waiting for another replica's scan", "lease", s.leaseName)
		timer := time.NewTimer(s.pollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("wait for another replica's scan: %w", ctx.Err())
		case <-timer.C:
		}
	}
}

// storedFor returns the latest stored snapshot when it satisfies c, and nil
// with no error when it does not or when the store has none.
func (s *Source) storedFor(ctx context.Context, c *call) (*scanner.Result, error) {
	latest, err := s.store.LatestScan(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get snapshot: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if latest.FinishedAt.Before(c.notBefore) {
		return nil, nil
	}
	return latest, nil
}

// scanWithLease scans and saves the result while it renews the lease, then
// releases it. It first reads the store again, because the previous holder
// may have saved its scan between the caller's read and the lease.
func (s *Source) scanWithLease(ctx context.Context, c *call) (*scanner.Result, error) {
	defer s.release()

	if r, err := s.storedFor(ctx, c); r != nil || err != nil {
		return r, err
	}

	renewCtx, stopRenewal := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		s.renew(renewCtx)
	}()
	s.logger.Info("scan started", "lease", s.leaseName, "holder", s.holder)
	s.setScanning(true)
	result, err := s.scan(ctx)
	s.setScanning(false)
	stopRenewal()
	<-renewed
	if err == nil && result == nil {
		err = errors.New("scan returned no result")
	}
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}

	if _, err := s.store.SaveScan(ctx, result); err != nil {
		return nil, fmt.Errorf("save scan: %w", err)
	}
	s.logger.Info("scan saved", "teams", len(result.Teams), "finished_at", result.FinishedAt)
	return result, nil
}

// renew extends the lease every third of its lifetime until ctx ends. A
// failed or lost renewal is logged: the scan goes on, and another replica
// that takes the lease meanwhile may scan too.
func (s *Source) renew(ctx context.Context) {
	ticker := time.NewTicker(s.leaseTTL / 3)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		leased, err := s.store.TryLease(ctx, s.leaseName, s.holder, s.now(), s.leaseTTL)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.logger.Warn("renew scan lease failed", "lease", s.leaseName, "err", err)
		case !leased:
			s.logger.Warn("scan lease lost to another replica", "lease", s.leaseName)
		}
	}
}

// release gives the lease up, with a context of its own because the scan's
// context may have ended.
func (s *Source) release() {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := s.store.ReleaseLease(ctx, s.leaseName, s.holder); err != nil {
		s.logger.Warn("release scan lease failed; it expires on its own", "lease", s.leaseName, "err", err)
	}
}

func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
