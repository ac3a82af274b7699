// Package schedule runs periodic jobs on one replica at a time: the leader,
// which holds a lease in the store, runs each job once per period.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultLeaseTTL is how long leadership lasts without renewal. When the
// leader dies, scheduled work pauses for at most this long before another
// replica takes over.
const DefaultLeaseTTL = time.Minute

// leaderLease names the lease that elects the leader.
const leaderLease = "leader"

// Leases is the part of store.Store that leader election uses.
type Leases interface {
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Job is work to run once per period across replicas.
type Job struct {
	// Name identifies the job in logs and names its claim in the store, so
	// it must be the same on every replica.
	Name string
	// Every is the period. Periods start at whole multiples of Every since
	// Go's zero time (January 1, year 1, 00:00 UTC), as time.Truncate
	// computes them, so replicas agree on them: with Every of 24h a period
	// starts at 00:00 UTC.
	Every time.Duration
	// Run does the work of the period that starts at start.
	Run func(ctx context.Context, start time.Time) error
}

// Config configures a Scheduler.
type Config struct {
	// Leases stores the leadership and the per-period claims. Required.
	Leases Leases
	// Holder identifies this replica, unique per process.
	Holder string
	// LeaseTTL is the leadership lease's lifetime (default
	// DefaultLeaseTTL). Run ticks every third of it.
	LeaseTTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives leadership changes and job outcomes. Nil discards
	// them.
	Logger *slog.Logger
}

// Scheduler elects a leader among replicas and runs Jobs on it. Tick is the
// whole step, so that tests drive it with their own clock, and Run calls it
// on a ticker.
type Scheduler struct {
	leases   Leases
	holder   string
	leaseTTL time.Duration
	now      func() time.Time
	logger   *slog.Logger
	jobs     []Job

	// Only Tick, which Run calls from one goroutine, reads or writes these.
	leader  bool
	lastRun map[string]time.Time
}

// New checks cfg and jobs and returns a Scheduler.
func New(cfg Config, jobs ...Job) (*Scheduler, error) {
	if cfg.Leases == nil {
		return nil, errors.New("create scheduler: missing Leases")
	}
	if cfg.Holder == "" {
		return nil, errors.New("create scheduler: missing Holder")
	}
	names := map[string]bool{}
	for _, j := range jobs {
		if j.Name == "" || j.Run == nil || j.Every <= 0 {
			return nil, fmt.Errorf("create scheduler: job %q needs a name, a Run function and a positive period (Every is %v)", j.Name, j.Every)
		}
		if names[j.Name] {
			return nil, fmt.Errorf("create scheduler: job %q is listed twice", j.Name)
		}
		names[j.Name] = true
	}

	s := &Scheduler{
		leases:   cfg.Leases,
		holder:   cfg.Holder,
		leaseTTL: cfg.LeaseTTL,
		now:      cfg.Now,
		logger:   cfg.Logger,
		jobs:     jobs,
		lastRun:  map[string]time.Time{},
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Run ticks every third of the lease's lifetime until ctx ends, then gives
// up leadership so that another replica takes over at once. It returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	ticker := time.NewTicker(s.leaseTTL / 3)
	defer ticker.Stop()
	for {
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			s.resign()
			return nil
		case <-ticker.C:
		}
	}
}

// Tick takes or renews leadership and, when this replica leads, runs each
// job whose current period has not run yet. It returns whether this replica
// leads. Errors are logged, because the next tick tries again.
func (s *Scheduler) Tick(ctx context.Context) bool {
	now := s.now()
	leader, err := s.leases.TryLease(ctx, leaderLease, s.holder, now, s.leaseTTL)
	if err != nil {
		s.logger.Warn("renew leadership failed", "holder", s.holder, "err", err)
		leader = false
	}
	if leader != s.leader {
		s.logger.Info("leadership changed", "holder", s.holder, "leader", leader)
		s.leader = leader
	}
	if !leader {
		return false
	}

	for _, j := range s.jobs {
		s.runDue(ctx, j, now)
	}
	return true
}

// runDue runs j when its period that contains now has not run. The claim,
// a lease named after the job that lasts until the period ends, keeps a new
// leader from running a period that the previous leader already ran.
func (s *Scheduler) runDue(ctx context.Context, j Job, now time.Time) {
	start := now.Truncate(j.Every)
	if s.lastRun[j.Name].Equal(start) {
		return
	}
	logger := s.logger.With("job", j.Name, "period_start", start)

	claimed, err := s.leases.TryLease(ctx, "job:"+j.Name, s.holder, now, start.Add(j.Every).Sub(now))
	if err != nil {
		logger.Warn("claim scheduled job failed", "err", err)
		return
	}
	s.lastRun[j.Name] = start
	if !claimed {
		logger.Info("scheduled job already ran in this period on another replica")
		return
	}

	// NOTE: a failed run is not retried in the same period, so that a job
	// with side effects runs at most once per period.
	if err := j.Run(ctx, start); err != nil {
		logger.Error("scheduled job failed", "err", err)
		return
	}
	logger.Info("scheduled job done")
}

// resign releases leadership if this replica has it.
func (s *Scheduler) resign() {
	if !s.leader {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.leases.ReleaseLease(ctx, leaderLease, s.holder); err != nil {
		s.logger.Warn("release leadership failed; it expires on its own", "holder", s.holder, "err", err)
		return
	}
	s.leader = false
	s.logger.Info("leadership released", "holder", s.holder)
}
