package cards

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

// summaryBiggest is how many of the largest Teams the summary names.
const summaryBiggest = 3

// quotaStates are the Graph quota states in the order the summary counts
// them, with the words it uses for each.
var quotaStates = []struct {
	state, label string
}{
	{"normal", "normal"},
	{"nearing", "nearing the limit"},
	{"critical", "critical"},
	{"exceeded", "exceeded"},
}

// SummaryDetails are the tenant facts that a scan does not carry.
type SummaryDetails struct {
	// TenantQuota is the tenant's SharePoint storage quota in bytes, which
	// Graph does not expose. Zero means it is not configured.
	TenantQuota int64
	// QuotaHint is shown in place of the share when TenantQuota is zero,
	// for example the setting that configures it.
	QuotaHint string
	// WeekChange is the tenant's change in used bytes over the last week.
	WeekChange Change
}

// Summary builds the tenant overview. It shows the bytes used by all
// measured Teams and their share of the tenant quota, and the change over
// the last week. It then lists reclaimable recycle-bin bytes, measured Teams
// by quota state, unmeasured Teams by outcome, and the three largest Teams.
// A click on one of those sends SubmitData{Cmd: CmdUsage, TeamID: id}.
func Summary(r *scanner.Result, d SummaryDetails) AdaptiveCard {
	if r == nil {
		return Message("No scan yet", "Storage has not been scanned yet. Try again in a few minutes.")
	}

	total := r.TotalUsed()
	measured := r.Count(scanner.OutcomeMeasured)
	var deleted int64
	for _, t := range r.Teams {
		deleted += t.TotalDeleted()
	}

	share := Escape(clip(d.QuotaHint, maxMessageRunes))
	if d.TenantQuota > 0 {
		share = formatShare(total, d.TenantQuota) + " of " + scanner.FormatBytes(d.TenantQuota)
	} else if share == "" {
		share = "not configured"
	}
	weekChange := d.WeekChange
	weekChange.Days = 7

	facts := []Fact{
		{Title: "Used", Value: fmt.Sprintf("%s by %d measured %s", scanner.FormatBytes(total), measured, plural(measured, "Team", "Teams"))},
		{Title: "Tenant quota", Value: share},
		changeFacts([]Change{weekChange})[0],
		{Title: "Recycle bins", Value: scanner.FormatBytes(deleted) + " reclaimable"},
		{Title: "Quota state", Value: quotaStateCounts(r)},
		{Title: "Not measured", Value: unmeasuredCounts(r)},
	}

	body := []Element{
		TextBlock{Text: "Storage summary", Weight: "Bolder", Size: "Medium", Wrap: true},
		TextBlock{Text: fmt.Sprintf("%d %s · scanned %s", len(r.Teams), plural(len(r.Teams), "Team", "Teams"), scanTime(r)), IsSubtle: true, Wrap: true, Spacing: "None"},
		FactSet{Facts: facts, Spacing: "Medium"},
	}

	teams := slices.Clone(r.Teams)
	scanner.SortTeams(teams)
	biggest := teams[:min(measured, summaryBiggest)]
	if len(biggest) > 0 {
		body = append(body, TextBlock{Text: "Largest Teams", Weight: "Bolder", Wrap: true, Spacing: "Medium"})
		twins := sameNameIndex(r.Teams)
		for i, t := range biggest {
			body = append(body, topRow(i+1, t, total, twins[t.Team.ID]))
		}
	}
	body = append(body, ActionSet{
		Spacing: "Medium",
		Actions: []Action{ActionSubmit{Title: fmt.Sprintf("Top %d", DefaultTopRows), Data: SubmitData{Cmd: CmdTop, N: DefaultTopRows}}},
	})
	return AdaptiveCard{Body: body}
}

// quotaStateCounts counts the measured Teams by the quota state of their
// main site, for example "530 normal, 2 nearing the limit".
func quotaStateCounts(r *scanner.Result) string {
	counts := map[string]int{}
	for _, t := range r.Teams {
		if t.Outcome == scanner.OutcomeMeasured {
			counts[t.Quota.State]++
		}
	}

	var parts []string
	for _, s := range quotaStates {
		if n := counts[s.state]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s.label))
		}
		delete(counts, s.state)
	}
	other := 0
	for _, n := range counts {
		other += n
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d not reported", other))
	}
	if len(parts) == 0 {
		return "no Team measured"
	}
	return strings.Join(parts, ", ")
}

// unmeasuredCounts counts the Teams that were not measured, by outcome.
func unmeasuredCounts(r *scanner.Result) string {
	var parts []string
	for _, o := range outcomeLabels {
		if o.outcome == scanner.OutcomeMeasured {
			continue
		}
		if n := r.Count(o.outcome); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o.label))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// ScanProgress is how far a scan has come.
type ScanProgress struct {
	// Running is false when no scan runs in this process, for example
	// while another replica scans.
	Running bool
	// Done counts the Teams measured so far, and Discovered the Teams
	// listed so far, which grows until the listing ends.
	Done, Discovered int
	// Elapsed is the time since the request arrived.
	Elapsed time.Duration
	// Remaining is an estimate of the time left; zero means unknown.
	Remaining time.Duration
}

// ProgressNote ends every Progress card, so that a reader of card text can
// tell a progress card from an answer.
const ProgressNote = "This card updates itself and shows the answer when it is ready."

// Progress builds the card that stands in for a slow answer while it is
// worked on, for example "Scanning: 312 of 535 Teams, about 2 s left". The
// bot updates it in place and finally replaces it with the answer.
func Progress(title string, p ScanProgress) AdaptiveCard {
	status := fmt.Sprintf("Waiting for the scan, %s so far.", roundSeconds(p.Elapsed))
	if p.Running && p.Discovered > 0 {
		status = fmt.Sprintf("%d of %d Teams", p.Done, p.Discovered)
		if p.Remaining > 0 {
			status += ", about " + roundSeconds(p.Remaining) + " left"
		}
		status += "."
	}

	body := []Element{
		TextBlock{Text: Escape(clip(title, maxTitleRunes)), Weight: "Bolder", Size: "Medium", Wrap: true},
		TextBlock{Text: status, Wrap: true, Spacing: "Small"},
	}
	if bar := usageBar(int64(p.Done), int64(p.Discovered)); p.Running && bar != "" {
		body = append(body, TextBlock{Text: bar, FontType: "Monospace", Color: "Accent", Spacing: "None"})
	}
	body = append(body, TextBlock{Text: ProgressNote, IsSubtle: true, Size: "Small", Wrap: true})
	return AdaptiveCard{Body: body}
}

// roundSeconds formats d in whole seconds, at least "1 s".
func roundSeconds(d time.Duration) string {
	return fmt.Sprintf("%d s", max(1, int(d.Round(time.Second)/time.Second)))
}

// ExportLink builds the card that offers the CSV download of a scan of
// teams Teams. The server that link points at lets it work once and until
// expires. link goes into the button unescaped, because action URLs are
// not Markdown.
func ExportLink(link string, expires time.Time, teams int, scanned string) AdaptiveCard {
	text := fmt.Sprintf("A CSV file of %d %s from the scan of %s. The link works once and expires at %s, so download it soon and do not share it.",
		teams, plural(teams, "Team", "Teams"), scanned, expires.UTC().Format(timeLayout))
	return AdaptiveCard{Body: []Element{
		TextBlock{Text: "Export ready", Weight: "Bolder", Size: "Medium", Wrap: true},
		TextBlock{Text: Escape(text), Wrap: true},
		ActionSet{Actions: []Action{ActionOpenURL{Title: "Download CSV", URL: link}}},
	}}
}

// ScanTime formats when r was scanned, as the cards show it.
func ScanTime(r *scanner.Result) string {
	return scanTime(r)
}
