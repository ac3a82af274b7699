package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/roles"
	"github.com/storagebot/storagebot/scanner"
)

const (
	// ownerLookups bounds the owner lookups one card runs at once.
	ownerLookups = 4
	// ownersTimeout bounds all owner lookups of one card. Rows whose
	// lookup has not returned by then show no owners line.
	ownersTimeout = 5 * time.Second
	// historyTimeout bounds the history reads of one card.
	historyTimeout = 5 * time.Second

	// day is the unit of the growth periods.
	day = 24 * time.Hour
)

// usageChangeDays are the periods whose change a usage card shows.
var usageChangeDays = []int{7, 30}

// quotaHint replaces the tenant quota share in the summary when
// Config.TenantQuota is zero.
const quotaHint = "Set STORAGEBOT_TENANT_QUOTA to see the share, because Microsoft Graph does not report the tenant's quota."

// OwnerDirectory lists the owners of a Team. roles.Resolver implements it,
// and a Roles that does too adds owners lines to the top and usage cards.
type OwnerDirectory interface {
	Owners(ctx context.Context, teamID string) ([]roles.Owner, error)
}

// runSummary handles "summary": the tenant at a glance.
func (b *Bot) runSummary(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	if len(req.args) > 0 {
		return cards.AdaptiveCard{}, &UserError{Title: "Summary", Text: "Send summary without anything after it."}
	}
	result, err := b.result(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}

	details := cards.SummaryDetails{TenantQuota: b.tenantQuota, QuotaHint: quotaHint}
	if g, ok := b.growth(ctx, 7); ok {
		details.WeekChange = cards.Change{Days: 7, Known: true, Bytes: g.Tenant}
	}
	return cards.Summary(result, details), nil
}

// runExport handles "export": a single-use download link for the CSV of
// the latest scan. The link goes to personal chats only, because anyone
// who sees it in a channel could use it first.
func (b *Bot) runExport(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	if !b.export.enabled() {
		return cards.AdaptiveCard{}, &UserError{Title: "Export", Text: "Export is not set up for this bot. Ask the bot's operator to configure it."}
	}
	if !req.personal {
		return cards.AdaptiveCard{}, &UserError{Title: "Export", Text: "Send export in a personal chat with me, so that the download link reaches only you."}
	}
	result, err := b.result(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}

	link, expires, err := b.newExportLink(req.tenantID, result.FinishedAt)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}
	b.logger.Info("issued export link", "user_id", req.asker.userID, "tenant_id", req.tenantID, "expires", expires)
	return cards.ExportLink(link, expires, len(result.Teams), cards.ScanTime(result)), nil
}

// usageDetails returns the owners and the change over each usage period
// of the Team teamID. Owners are left out when they cannot be read, and
// changes when there is no History.
func (b *Bot) usageDetails(ctx context.Context, teamID string) cards.UsageDetails {
	var d cards.UsageDetails
	if owners, ok := b.ownerNames(ctx, []string{teamID})[teamID]; ok {
		d.OwnersKnown = true
		d.Owners = owners
	}
	if b.history == nil {
		return d
	}
	for _, days := range usageChangeDays {
		change := cards.Change{Days: days}
		if g, ok := b.growth(ctx, days); ok {
			change.Bytes, change.Known = g.Teams[teamID]
		}
		d.Changes = append(d.Changes, change)
	}
	return d
}

// growth returns the change over the last days from History, and false
// when there is no History, no scan that old, or the read fails.
func (b *Bot) growth(ctx context.Context, days int) (Growth, bool) {
	if b.history == nil {
		return Growth{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()

	g, err := b.history.Growth(ctx, b.now().Add(-time.Duration(days)*day))
	if errors.Is(err, ErrNoHistory) {
		return Growth{}, false
	}
	if err != nil {
		b.logger.Warn("read growth failed; the card shows it as unknown", "days", days, "err", err)
		return Growth{}, false
	}
	return g, true
}

// ownerNames returns the owners' display names of each Team in teamIDs
// whose lookup succeeded within ownersTimeout, at most ownerLookups at a
// time. It returns nil when Roles lists no owners.
func (b *Bot) ownerNames(ctx context.Context, teamIDs []string) map[string][]string {
	directory, ok := b.roles.(OwnerDirectory)
	if !ok || len(teamIDs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ownersTimeout)
	defer cancel()

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		names    = make(map[string][]string, len(teamIDs))
		failures int
		lastErr  error
		slots    = make(chan struct{}, ownerLookups)
	)
	for _, id := range teamIDs {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			owners, err := directory.Owners(ctx, id)

			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				lastErr = fmt.Errorf("list owners of team %s: %w", id, err)
				return
			}
			list := make([]string, 0, len(owners))
			for _, o := range owners {
				list = append(list, cmp.Or(o.DisplayName, o.ID))
			}
			names[id] = list
		}()
	}
	wg.Wait()

	if failures > 0 {
		b.logger.Warn("owner lookups failed; those rows show no owners", "failed", failures, "teams", len(teamIDs), "err", lastErr)
	}
	return names
}

// rankedIDs returns the ids of the measured Teams ranked offset+1 to
// offset+n, as cards.TopPage pages them.
func rankedIDs(r *scanner.Result, offset, n int) []string {
	teams := slices.Clone(r.Teams)
	scanner.SortTeams(teams)
	measured := teams[:r.Count(scanner.OutcomeMeasured)]
	if offset >= len(measured) {
		offset = max(0, len(measured)-n)
	}

	var ids []string
	for _, t := range measured[offset:min(offset+n, len(measured))] {
		ids = append(ids, t.Team.ID)
	}
	return ids
}
