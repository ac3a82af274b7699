package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// DefaultConcurrency is how many JSON batches a scan has in flight at
	// once, each with up to 20 lookups. 32 batches carry the drive lookups of
	// 640 Teams in one round trip. The Pacer, not this number, keeps the
	// scan within the tenant's throttling budget.
	DefaultConcurrency = 32
	// maxConcurrency bounds Concurrency.
	maxConcurrency = 64
)

// reasonUnknownQuota explains OutcomeUnknown.
const reasonUnknownQuota = "drive quota is all zero: SharePoint did not report usage for this drive"

// channelsQuery lists the channels that have a SharePoint site of their
// own. GET /teams/{id}/channels lists the channels a Team hosts, so a shared
// channel counts once, in its host Team, even when it is shared with others.
const channelsQuery = "?$filter=membershipType%20ne%20'standard'&$select=id,displayName,membershipType"

// maxChannelPages bounds the channel pages followed for one Team.
const maxChannelPages = 50

// reasonChannelNotProvisioned explains a channel site whose filesFolder or drive returned 404.
const reasonChannelNotProvisioned = "the channel's SharePoint site is not provisioned"

// Scanner measures every Team's drive in a tenant. It is safe for
// concurrent use, and each Scan is independent.
type Scanner struct {
	graph        *GraphClient
	tenantID     string
	concurrency  int
	channelSites bool
	logger       *slog.Logger
	now          func() time.Time
	progress     func(done, discovered int)
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
		graph:        graph,
		tenantID:     cfg.TenantID,
		concurrency:  orDefault(cfg.Concurrency, DefaultConcurrency),
		channelSites: cfg.ChannelSites,
		logger:       graph.logger,
		now:          now,
		progress:     cfg.Progress,
	}, nil
}

// Scan lists every Team and measures each Team's drive, and with
// Config.ChannelSites the sites of its private and shared channels. Drive
// lookups go to Graph in JSON batches as soon as the first page of Teams
// arrives, and the listing waits when the batches fall behind, so memory
// grows with the result rows only. Each listed Team gets exactly one
// TeamUsage, sorted with SortTeams. A failure to list Teams fails the scan,
// and so does the end of ctx. A failure on one Team's drive only sets that
// Team's outcome.
func (s *Scanner) Scan(ctx context.Context) (*Result, error) {
	started := s.now()
	s.logger.Info("scan started", "tenant_id", s.tenantID, "concurrency", s.concurrency, "channel_sites", s.channelSites)

	workCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	run := &scanRun{scanner: s, batches: newBatcher(s.graph, s.logger, s.concurrency)}
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		run.batches.run(workCtx)
	}()

	listErr := s.graph.ListTeams(workCtx, func(page []Team) error {
		run.mu.Lock()
		run.discovered += len(page)
		run.report()
		run.mu.Unlock()

		lookups := make([]*lookup, 0, 2*len(page))
		for _, team := range page {
			lookups = append(lookups, run.start(team)...)
		}
		return run.batches.add(workCtx, lookups...)
	})
	run.batches.close()
	if listErr != nil {
		cancel()
	}
	<-dispatched

	teams := run.teams
	if err := ctx.Err(); err != nil {
		s.logger.Warn("scan stopped", "tenant_id", s.tenantID, "done", len(teams), "discovered", run.discovered, "err", err)
		return nil, fmt.Errorf("scan teams: %w", err)
	}
	if listErr != nil {
		s.logger.Error("scan failed", "tenant_id", s.tenantID, "done", len(teams), "discovered", run.discovered, "err", listErr)
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

// scanRun is the state of one Scan: the Teams still open and the finished
// rows.
type scanRun struct {
	scanner *Scanner
	batches *batcher

	mu         sync.Mutex
	teams      []TeamUsage
	discovered int
}

// teamScan is a Team whose lookups are not all done. pending counts them,
// and the Team's row is final when it drops to 0.
type teamScan struct {
	usage   TeamUsage
	pending int
}

func (r *scanRun) report() {
	if r.scanner.progress != nil {
		r.scanner.progress(len(r.teams), r.discovered)
	}
}

// start returns the first lookups of a Team: its drive and, when channel
// sites are scanned, its channels.
func (r *scanRun) start(team Team) []*lookup {
	ts := &teamScan{usage: TeamUsage{Team: team}, pending: 1}
	lookups := []*lookup{{
		path: "/groups/" + url.PathEscape(team.ID) + "/drive",
		done: func(res lookupResult) { r.driveDone(ts, res) },
	}}
	if r.scanner.channelSites {
		ts.usage.Sites = []SiteUsage{{Kind: SiteMain}}
		ts.pending++
		lookups = append(lookups, r.channelsLookup(ts, "/teams/"+url.PathEscape(team.ID)+"/channels"+channelsQuery, 1))
	}
	return lookups
}

// driveDone records the main site's outcome.
func (r *scanRun) driveDone(ts *teamScan, res lookupResult) {
	site := r.siteOutcome(ts.usage.Team, "", res)

	r.mu.Lock()
	defer r.mu.Unlock()
	u := &ts.usage
	u.Outcome, u.Quota, u.Reason, u.Attempts = site.Outcome, site.Quota, site.Reason, res.attempts
	if len(u.Sites) > 0 {
		site.Kind = SiteMain
		u.Sites[0] = site
	}
	r.doneLocked(ts)
}

func (r *scanRun) channelsLookup(ts *teamScan, path string, page int) *lookup {
	return &lookup{path: path, done: func(res lookupResult) { r.channelsDone(ts, res, page) }}
}

// channelsDone adds a site per private or shared channel and looks up each
// channel's files folder, and the next page when there is one.
func (r *scanRun) channelsDone(ts *teamScan, res lookupResult, page int) {
	var p channelsPage
	err := res.err
	if err == nil {
		if decodeErr := json.Unmarshal(res.body, &p); decodeErr != nil {
			err = fmt.Errorf("decode channels: %w", decodeErr)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.doneLocked(ts)
	if err != nil {
		ts.usage.ChannelsReason = "list channels: " + err.Error()
		r.logFailure(ts.usage.Team, "list channels failed", err)
		return
	}

	for _, c := range p.Value {
		if c.ID == "" || c.MembershipType == "standard" {
			continue
		}
		ts.usage.Sites = append(ts.usage.Sites, SiteUsage{Kind: SiteChannel, ChannelID: c.ID, ChannelName: c.DisplayName, MembershipType: c.MembershipType})
		index := len(ts.usage.Sites) - 1
		ts.pending++
		r.batches.follow(&lookup{
			path: "/teams/" + url.PathEscape(ts.usage.Team.ID) + "/channels/" + url.PathEscape(c.ID) + "/filesFolder",
			done: func(res lookupResult) { r.filesFolderDone(ts, index, res) },
		})
	}

	if p.NextLink == "" {
		return
	}
	next, ok := r.scanner.graph.relative(p.NextLink)
	if !ok || page >= maxChannelPages {
		ts.usage.ChannelsReason = fmt.Sprintf("list channels page %d: the @odata.nextLink is not under the Graph base URL or exceeds %d pages", page+1, maxChannelPages)
		return
	}
	ts.pending++
	r.batches.follow(r.channelsLookup(ts, next, page+1))
}

// filesFolderDone reads the drive id of a channel's site and looks up that
// drive's quota. A 404 means the site was never provisioned.
func (r *scanRun) filesFolderDone(ts *teamScan, index int, res lookupResult) {
	var folder filesFolder
	err := res.err
	if err == nil {
		if decodeErr := json.Unmarshal(res.body, &folder); decodeErr != nil {
			err = fmt.Errorf("decode filesFolder: %w", decodeErr)
		} else if folder.ParentReference.DriveID == "" {
			err = errors.New("filesFolder has no parentReference.driveId")
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.doneLocked(ts)
	site := &ts.usage.Sites[index]
	if err != nil {
		site.Outcome, site.Reason = outcomeOf(err), err.Error()
		if site.Outcome == OutcomeNoDrive {
			site.Reason = reasonChannelNotProvisioned
		}
		return
	}
	site.DriveID = folder.ParentReference.DriveID
	ts.pending++
	r.batches.follow(&lookup{
		path: "/drives/" + url.PathEscape(site.DriveID),
		done: func(res lookupResult) { r.channelDriveDone(ts, index, res) },
	})
}

// channelDriveDone records a channel site's quota.
func (r *scanRun) channelDriveDone(ts *teamScan, index int, res lookupResult) {
	outcome := r.siteOutcome(ts.usage.Team, ts.usage.Sites[index].ChannelName, res)

	r.mu.Lock()
	defer r.mu.Unlock()
	site := &ts.usage.Sites[index]
	site.Outcome, site.Quota, site.Reason = outcome.Outcome, outcome.Quota, outcome.Reason
	if site.Outcome == OutcomeNoDrive {
		site.Reason = reasonChannelNotProvisioned
	}
	r.doneLocked(ts)
}

// siteOutcome turns a drive lookup into a site's outcome and quota.
func (r *scanRun) siteOutcome(team Team, channelName string, res lookupResult) SiteUsage {
	var site SiteUsage
	var drive Drive
	err := res.err
	if err == nil {
		if decodeErr := json.Unmarshal(res.body, &drive); decodeErr != nil {
			err = fmt.Errorf("decode drive: %w", decodeErr)
		}
	}

	switch {
	case err == nil && drive.Quota.IsZero():
		site.Outcome, site.Reason = OutcomeUnknown, reasonUnknownQuota
	case err == nil:
		site.Outcome, site.Quota = OutcomeMeasured, drive.Quota
	default:
		site.Outcome, site.Reason = outcomeOf(err), err.Error()
	}
	site.DriveID = drive.ID
	if site.Outcome == OutcomeFailed {
		message := "measure team failed"
		if channelName != "" {
			message = "measure channel site failed"
		}
		r.logFailure(team, message, err)
	}
	return site
}

func (r *scanRun) logFailure(team Team, message string, err error) {
	r.scanner.logger.Warn(message, "team_id", team.ID, "err", err)
}

// doneLocked counts one lookup of ts done and adds the Team's row when it
// was the last. r.mu must be held.
func (r *scanRun) doneLocked(ts *teamScan) {
	ts.pending--
	if ts.pending > 0 {
		return
	}
	r.teams = append(r.teams, ts.usage)
	r.report()
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
