package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

const (
	// DefaultConcurrency is how many drive requests a scan runs at once.
	// SharePoint's budget is per app and tenant (1,250 resource units a
	// minute for up to 1,000 licences), so more workers mostly earn 429s.
	DefaultConcurrency = 8
	// maxConcurrency bounds Concurrency.
	maxConcurrency = 64
)

// reasonUnknownQuota explains OutcomeUnknown.
const reasonUnknownQuota = "drive quota is all zero: SharePoint did not report usage for this drive"

// Scanner measures every Team's drive in a tenant. It is safe for
// concurrent use, and each Scan is independent.
type Scanner struct {
	graph       *GraphClient
	tenantID    string
	concurrency int
	logger      *slog.Logger
	now         func() time.Time
	progress    func(done, discovered int)
}

// New validates cfg and builds the scanner and its Graph client.
func New(cfg Config) (*Scanner, error) {
	if cfg.Concurrency < 0 || cfg.Concurrency > maxConcurrency {
		return nil, fmt.Errorf("%w: concurrency %d is out of range: want 1 to %d, or 0 for %d", ErrInvalidConfig, cfg.Concurrency, maxConcurrency, DefaultConcurrency)
	}
	graph, err := NewGraphClient(cfg)
	if err != nil {
		return nil, err
	}

	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Scanner{
		graph:       graph,
		tenantID:    cfg.TenantID,
		concurrency: orDefault(cfg.Concurrency, DefaultConcurrency),
		logger:      graph.logger,
		now:         now,
		progress:    cfg.Progress,
	}, nil
}

// Scan lists every Team and measures each Team's drive. Pages of Teams feed
// the workers as they arrive. Each listed Team gets exactly one TeamUsage,
// sorted with SortTeams. A failure to list Teams fails the scan, and so does
// the end of ctx. A failure on one Team's drive only sets that Team's
// outcome.
func (s *Scanner) Scan(ctx context.Context) (*Result, error) {
	started := s.now()
	s.logger.Info("scan started", "tenant_id", s.tenantID, "concurrency", s.concurrency)

	workCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu         sync.Mutex
		teams      []TeamUsage
		discovered int
	)
	report := func() {
		if s.progress != nil {
			s.progress(len(teams), discovered)
		}
	}

	queue := make(chan Team)
	var workers sync.WaitGroup
	for range s.concurrency {
		workers.Go(func() {
			for team := range queue {
				usage := s.measure(workCtx, team)
				mu.Lock()
				teams = append(teams, usage)
				report()
				mu.Unlock()
			}
		})
	}

	listErr := s.graph.ListTeams(workCtx, func(page []Team) error {
		mu.Lock()
		discovered += len(page)
		report()
		mu.Unlock()

		for _, team := range page {
			select {
			case queue <- team:
			case <-workCtx.Done():
				return workCtx.Err()
			}
		}
		return nil
	})
	close(queue)
	if listErr != nil {
		cancel()
	}
	workers.Wait()

	if err := ctx.Err(); err != nil {
		s.logger.Warn("scan stopped", "tenant_id", s.tenantID, "done", len(teams), "discovered", discovered, "err", err)
		return nil, fmt.Errorf("scan teams: %w", err)
	}
	if listErr != nil {
		s.logger.Error("scan failed", "tenant_id", s.tenantID, "done", len(teams), "discovered", discovered, "err", listErr)
		return nil, fmt.Errorf("scan teams: %w", listErr)
	}

	SortTeams(teams)
	result := &Result{
		TenantID:   s.tenantID,
		StartedAt:  started,
		FinishedAt: s.now(),
		Teams:      teams,
	}
	s.logger.Info("scan finished", "tenant_id", s.tenantID, "teams", len(teams),
		"measured", result.Count(OutcomeMeasured), "unknown", result.Count(OutcomeUnknown),
		"no_drive", result.Count(OutcomeNoDrive), "forbidden", result.Count(OutcomeForbidden),
		"failed", result.Count(OutcomeFailed), "duration", result.FinishedAt.Sub(started))
	return result, nil
}

// measure reads one Team's drive and turns the response into its outcome.
func (s *Scanner) measure(ctx context.Context, team Team) TeamUsage {
	drive, attempts, err := s.graph.getDrive(ctx, team.ID)
	usage := TeamUsage{Team: team, Attempts: attempts}

	switch {
	case err == nil && drive.Quota.IsZero():
		usage.Outcome = OutcomeUnknown
		usage.Reason = reasonUnknownQuota
	case err == nil:
		usage.Outcome = OutcomeMeasured
		usage.Quota = drive.Quota
	default:
		usage.Outcome = outcomeOf(err)
		usage.Reason = err.Error()
	}

	if usage.Outcome == OutcomeFailed && ctx.Err() == nil {
		s.logger.Warn("measure team failed", "team_id", team.ID, "attempts", attempts, "err", err)
	}
	return usage
}

// outcomeOf maps a drive request's error to a Team's outcome.
func outcomeOf(err error) Outcome {
	var attemptsErr *AttemptsError
	if errors.As(err, &attemptsErr) {
		return OutcomeFailed
	}
	var graphErr *GraphError
	if errors.As(err, &graphErr) {
		switch graphErr.Status {
		case http.StatusNotFound:
			return OutcomeNoDrive
		case http.StatusUnauthorized, http.StatusForbidden:
			return OutcomeForbidden
		}
	}
	return OutcomeFailed
}
