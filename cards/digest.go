package cards

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

// Row limits of the digest card's lists, which keep the card far below
// MaxCardBytes for any tenant.
const (
	digestTopRows      = 10
	digestGrowerRows   = 5
	digestQuotaRows    = 10
	digestRecycleRows  = 3
	digestFailedRows   = 10
	alertTeamRows      = 20
	digestStatusTarget = 25
)

// Quota states that Graph reports in quota.state, in rising order.
const (
	QuotaNormal   = "normal"
	QuotaNearing  = "nearing"
	QuotaCritical = "critical"
	QuotaExceeded = "exceeded"
)

// DigestSummary is the content of the weekly digest card.
type DigestSummary struct {
	// Period is the scheduled time that the digest is for.
	Period time.Time
	// Scan is the scan the digest describes. Required.
	Scan *scanner.Result
	// Growth maps a Team id to its change in used bytes since GrowthFrom,
	// as store.Growth computes it. Nil means that no scan is old enough.
	Growth map[string]int64
	// GrowthFrom is when the older scan of Growth finished.
	GrowthFrom time.Time
	// TenantQuota is the tenant's storage in bytes, zero when unknown.
	TenantQuota int64
}

// DigestTarget is one channel that receives the digest, for the status card.
type DigestTarget struct {
	// Name is the channel's or Team's name, or its id when no name is known.
	Name string
	// Active is false once the Bot Connector returned 403 or 404 for it.
	Active bool
	// Reason is the error that made the target inactive.
	Reason string
}

// DigestStatus lists the digest targets and the next scheduled run.
type DigestStatus struct {
	Targets []DigestTarget
	// Next is the next scheduled run, shown in Next's location and in UTC.
	Next time.Time
	// Schedule is the cron spec as configured, for example "0 8 * * 1".
	Schedule string
}

// TenantCrossing is the tenant's used share rising past a threshold.
type TenantCrossing struct {
	// Threshold is the percentage of TenantQuota that was crossed.
	Threshold float64
	Used      int64
	Quota     int64
}

// TeamCrossing is a Team whose quota state rose to nearing, critical or
// exceeded.
type TeamCrossing struct {
	Team  scanner.TeamUsage
	From  string
	State string
}

// AlertSummary is the content of a quota alert card.
type AlertSummary struct {
	// ScanFinished is when the scan that shows the crossings finished.
	ScanFinished time.Time
	// Tenant is nil when the tenant crossed no threshold.
	Tenant *TenantCrossing
	Teams  []TeamCrossing
}

// Digest builds the weekly storage digest card. It shows the tenant's total
// and its change over the week, the largest Teams with their change and the
// biggest growers. It also lists the Teams near or over quota, the recycle
// bin bytes that could be reclaimed and the Teams whose scan failed.
func Digest(s DigestSummary) AdaptiveCard {
	teams := slices.Clone(s.Scan.Teams)
	scanner.SortTeams(teams)

	body := []Element{
		TextBlock{Text: "Weekly storage digest", Weight: "Bolder", Size: "Large", Wrap: true},
		TextBlock{Text: fmt.Sprintf("Scan of %s, %d Teams", s.Scan.FinishedAt.UTC().Format(timeLayout), len(teams)), IsSubtle: true, Spacing: "None", Wrap: true},
		FactSet{Facts: tenantFacts(s)},
	}
	body = append(body, digestTopRowsOf(teams, s.Growth)...)
	body = append(body, growerRows(teams, s.Growth)...)
	body = append(body, quotaRows(teams)...)
	body = append(body, recycleRows(teams)...)
	body = append(body, failedRows(teams)...)
	return AdaptiveCard{Body: body}
}

// tenantFacts returns the total, its share of the tenant quota and the
// weekly change.
func tenantFacts(s DigestSummary) []Fact {
	used := s.Scan.TotalUsed()
	total := scanner.FormatBytes(used)
	if s.TenantQuota > 0 {
		total += fmt.Sprintf(" of %s (%s)", scanner.FormatBytes(s.TenantQuota), formatShare(used, s.TenantQuota))
	}
	facts := []Fact{{Title: "Total used", Value: total}}

	if s.Growth == nil {
		return append(facts, Fact{Title: "Change", Value: "no scan from a week ago yet"})
	}
	var change int64
	for _, delta := range s.Growth {
		change += delta
	}
	return append(facts, Fact{Title: "Change", Value: fmt.Sprintf("%s since %s", signedBytes(change), s.GrowthFrom.UTC().Format(timeLayout))})
}

// digestTopRowsOf lists the largest measured Teams with their weekly change.
func digestTopRowsOf(teams []scanner.TeamUsage, growth map[string]int64) []Element {
	elements := []Element{digestSection("Largest Teams")}
	shown := 0
	for _, t := range teams {
		if shown == digestTopRows || t.Outcome != scanner.OutcomeMeasured {
			break
		}
		shown++
		elements = append(elements, digestRow(strconv.Itoa(shown)+". "+Escape(clip(t.Team.DisplayName, 60)), scanner.FormatBytes(t.TotalUsed()), digestChange(growth, t.Team.ID)))
	}
	if shown == 0 {
		elements = append(elements, TextBlock{Text: "No Team was measured.", Wrap: true})
	}
	return elements
}

// growerRows lists the Teams whose usage grew most over the week.
func growerRows(teams []scanner.TeamUsage, growth map[string]int64) []Element {
	if growth == nil {
		return nil
	}
	var growers []scanner.TeamUsage
	for _, t := range teams {
		if growth[t.Team.ID] > 0 {
			growers = append(growers, t)
		}
	}
	if len(growers) == 0 {
		return nil
	}
	slices.SortStableFunc(growers, func(a, b scanner.TeamUsage) int {
		return cmp.Compare(growth[b.Team.ID], growth[a.Team.ID])
	})

	elements := []Element{digestSection("Biggest growers")}
	for _, t := range growers[:min(len(growers), digestGrowerRows)] {
		elements = append(elements, digestRow(Escape(clip(t.Team.DisplayName, 60)), scanner.FormatBytes(t.TotalUsed()), digestChange(growth, t.Team.ID)))
	}
	return elements
}

// quotaRows lists the Teams whose quota state is nearing, critical or
// exceeded, the worst first.
func quotaRows(teams []scanner.TeamUsage) []Element {
	var flagged []scanner.TeamUsage
	for _, t := range teams {
		if t.Outcome == scanner.OutcomeMeasured && QuotaLevel(t.Quota.State) > 0 {
			flagged = append(flagged, t)
		}
	}
	if len(flagged) == 0 {
		return nil
	}
	slices.SortStableFunc(flagged, func(a, b scanner.TeamUsage) int {
		return QuotaLevel(b.Quota.State) - QuotaLevel(a.Quota.State)
	})

	elements := []Element{digestSection("Near or over quota")}
	for _, t := range flagged[:min(len(flagged), digestQuotaRows)] {
		elements = append(elements, digestRow(Escape(clip(t.Team.DisplayName, 60)), digestQuotaText(t), t.Quota.State))
	}
	return append(elements, digestMore(len(flagged), digestQuotaRows)...)
}

// recycleRows shows the recycle bin bytes of all measured Teams and the
// Teams with the fullest recycle bins.
func recycleRows(teams []scanner.TeamUsage) []Element {
	var total int64
	var holders []scanner.TeamUsage
	for _, t := range teams {
		if deleted := t.TotalDeleted(); deleted > 0 {
			total += deleted
			holders = append(holders, t)
		}
	}
	if total == 0 {
		return nil
	}
	slices.SortStableFunc(holders, func(a, b scanner.TeamUsage) int {
		return cmp.Compare(b.TotalDeleted(), a.TotalDeleted())
	})

	elements := []Element{
		digestSection("Reclaimable"),
		TextBlock{Text: fmt.Sprintf("%s in recycle bins of %d Teams", scanner.FormatBytes(total), len(holders)), Wrap: true, Spacing: "None"},
	}
	for _, t := range holders[:min(len(holders), digestRecycleRows)] {
		elements = append(elements, digestRow(Escape(clip(t.Team.DisplayName, 60)), scanner.FormatBytes(t.TotalDeleted()), ""))
	}
	return elements
}

// failedRows lists the Teams whose drive could not be read, so that none
// is silently left out of the totals.
func failedRows(teams []scanner.TeamUsage) []Element {
	var failed []scanner.TeamUsage
	for _, t := range teams {
		if t.Outcome == scanner.OutcomeFailed || t.Outcome == scanner.OutcomeForbidden {
			failed = append(failed, t)
		}
	}
	if len(failed) == 0 {
		return nil
	}

	elements := []Element{digestSection(fmt.Sprintf("Failed to scan (%d)", len(failed)))}
	for _, t := range failed[:min(len(failed), digestFailedRows)] {
		elements = append(elements, digestRow(Escape(clip(t.Team.DisplayName, 60)), string(t.Outcome), Escape(clip(t.Reason, 80))))
	}
	return append(elements, digestMore(len(failed), digestFailedRows)...)
}

// Alert builds the card that announces quota crossings.
func Alert(a AlertSummary) AdaptiveCard {
	body := []Element{
		TextBlock{Text: "Storage alert", Weight: "Bolder", Size: "Large", Color: "Attention", Wrap: true},
		TextBlock{Text: "Scan of " + a.ScanFinished.UTC().Format(timeLayout), IsSubtle: true, Spacing: "None", Wrap: true},
	}
	if c := a.Tenant; c != nil {
		body = append(body, TextBlock{
			Text: fmt.Sprintf("The tenant uses %s of %s (%s), above the %s%% threshold.",
				scanner.FormatBytes(c.Used), scanner.FormatBytes(c.Quota), formatShare(c.Used, c.Quota), strconv.FormatFloat(c.Threshold, 'f', -1, 64)),
			Wrap: true,
		})
	}
	if len(a.Teams) > 0 {
		body = append(body, digestSection("Teams whose quota state rose"))
		for _, c := range a.Teams[:min(len(a.Teams), alertTeamRows)] {
			body = append(body, digestRow(Escape(clip(c.Team.Team.DisplayName, 60)), digestQuotaText(c.Team), c.From+" → "+c.State))
		}
		body = append(body, digestMore(len(a.Teams), alertTeamRows)...)
	}
	return AdaptiveCard{Body: body}
}

// DigestStatusCard builds the reply to "digest status".
func DigestStatusCard(s DigestStatus) AdaptiveCard {
	next := s.Next.Format("Mon 2006-01-02 15:04 MST")
	if s.Next.Location() != time.UTC {
		next += " (" + s.Next.UTC().Format(timeLayout) + ")"
	}
	body := []Element{
		TextBlock{Text: "Digest status", Weight: "Bolder", Size: "Large", Wrap: true},
		FactSet{Facts: []Fact{
			{Title: "Schedule", Value: Escape(s.Schedule)},
			{Title: "Next digest", Value: next},
		}},
	}
	if len(s.Targets) == 0 {
		body = append(body, TextBlock{Text: "No channel receives the digest. Send digest here in a channel to add it.", Wrap: true})
		return AdaptiveCard{Body: body}
	}

	body = append(body, digestSection(fmt.Sprintf("Channels (%d)", len(s.Targets))))
	for _, t := range s.Targets[:min(len(s.Targets), digestStatusTarget)] {
		state := "active"
		if !t.Active {
			state = "inactive: " + Escape(clip(t.Reason, 80))
		}
		body = append(body, digestRow(Escape(clip(t.Name, 60)), state, ""))
	}
	body = append(body, digestMore(len(s.Targets), digestStatusTarget)...)
	return AdaptiveCard{Body: body}
}

// QuotaLevel ranks a Graph quota state: 0 for normal or unknown, then 1, 2
// and 3 for nearing, critical and exceeded.
func QuotaLevel(state string) int {
	switch strings.ToLower(state) {
	case QuotaNearing:
		return 1
	case QuotaCritical:
		return 2
	case QuotaExceeded:
		return 3
	}
	return 0
}

// digestSection starts a section of the digest.
func digestSection(text string) TextBlock {
	return TextBlock{Text: text, Weight: "Bolder", Separator: true, Spacing: "Medium", Wrap: true}
}

// digestRow is one row of a digest list: a name, a size and a note.
func digestRow(name, size, note string) ColumnSet {
	return ColumnSet{Spacing: "Small", Columns: []Column{
		{Width: Weight(6), Items: []Element{TextBlock{Text: name, Wrap: true}}},
		{Width: Weight(3), Items: []Element{TextBlock{Text: size, HorizontalAlignment: "Right"}}},
		{Width: Weight(3), Items: []Element{TextBlock{Text: note, IsSubtle: true, HorizontalAlignment: "Right", Wrap: true}}},
	}}
}

// digestMore counts the rows that a list left out.
func digestMore(total, shown int) []Element {
	if total <= shown {
		return nil
	}
	return []Element{TextBlock{Text: fmt.Sprintf("… and %d more", total-shown), IsSubtle: true, Wrap: true}}
}

// digestChange formats a Team's weekly change, empty when no scan is a
// week old.
func digestChange(growth map[string]int64, teamID string) string {
	if growth == nil {
		return ""
	}
	delta, known := growth[teamID]
	if !known {
		return "change unknown"
	}
	return signedBytes(delta)
}

// digestQuotaText formats "used of total" for a Team's main site.
func digestQuotaText(t scanner.TeamUsage) string {
	if t.Quota.Total <= 0 {
		return scanner.FormatBytes(t.TotalUsed())
	}
	return scanner.FormatBytes(t.Quota.Used) + " of " + scanner.FormatBytes(t.Quota.Total)
}
