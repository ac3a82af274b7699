package cards

import (
	"fmt"
	"slices"
	"strings"

	"github.com/storagebot/storagebot/scanner"
)

// maxChoiceButtons is the maximum number of Teams that Choice offers. A
// longer list ends with a line that requests more of the name.
const maxChoiceButtons = 25

// outcomeExplanations are the card text that explains each outcome other
// than measured to the reader.
var outcomeExplanations = map[scanner.Outcome]string{
	scanner.OutcomeUnknown:   "SharePoint returned a quota of all zeros for this Team's drive, which means it does not report usage there. The Team's real usage is unknown, not 0 B.",
	scanner.OutcomeNoDrive:   "This Team has no drive yet: its SharePoint site is not provisioned, or the group was just deleted.",
	scanner.OutcomeForbidden: "Microsoft Graph denied access to this Team's drive. The app may lack the Sites.Read.All permission.",
	scanner.OutcomeFailed:    "Reading this Team's drive failed.",
}

// UsageDetails are the facts about a Team that its scan does not carry.
type UsageDetails struct {
	// OwnersKnown tells whether Owners was read. When it is false the card
	// has no owners line.
	OwnersKnown bool
	// Owners are the display names of the Team's owners. An empty list
	// with OwnersKnown flags the Team as having no owner.
	Owners []string
	// Changes are the Team's change in used bytes over past periods, for
	// example 7 and 30 days, in the order the card lists them.
	Changes []Change
}

// Change is the change in used bytes since a past scan.
type Change struct {
	// Days is the length of the period.
	Days int
	// Known is false when no scan is that old or the Team was not
	// measured in it.
	Known bool
	// Bytes is the growth, negative for a shrink.
	Bytes int64
}

// Usage builds the card for one Team: used, total, remaining and recycle bin
// bytes, the quota state, its rank and share among measured Teams, and its
// short id. A Team with private or shared channel sites shows its total over
// all sites, the main site's quota, and a breakdown with one line per site.
// For a Team that was not measured it shows the outcome and its reason in
// place of the quota. r supplies the rank, the share, same-named Teams and
// the scan time; with a nil r those are left out.
func Usage(t scanner.TeamUsage, r *scanner.Result) AdaptiveCard {
	return UsageDetail(t, r, UsageDetails{})
}

// UsageDetail builds the Usage card with the owners and changes of d.
// Sites that do not fit under MaxCardBytes are left out and counted.
func UsageDetail(t scanner.TeamUsage, r *scanner.Result, d UsageDetails) AdaptiveCard {
	body := []Element{
		TextBlock{Text: Escape(displayName(t.Team)), Weight: "Bolder", Size: "Large", Wrap: true},
	}

	var facts []Fact
	if t.Outcome == scanner.OutcomeMeasured {
		facts = measuredFacts(t, r)
	} else {
		body = append(body, TextBlock{Text: explainOutcome(t.Outcome), Wrap: true, Spacing: "Small"})
		facts = append(facts, Fact{Title: "Outcome", Value: Escape(outcomeLabel(t.Outcome))})
		if t.Reason != "" {
			facts = append(facts, Fact{Title: "Reason", Value: Escape(clip(t.Reason, maxReasonRunes))})
		}
	}
	facts = append(facts, changeFacts(d.Changes)...)
	if d.OwnersKnown {
		facts = append(facts, ownersFact(d.Owners))
	}

	facts = append(facts, Fact{Title: "Short id", Value: Escape(shortID(t.Team.ID))})
	if r != nil {
		if twin := sameNameIndex(r.Teams)[t.Team.ID]; twin.count > 1 {
			value := fmt.Sprintf("%d of %d Teams named %s", twin.index, twin.count, displayName(t.Team))
			facts = append(facts, Fact{Title: "Same name", Value: Escape(value)})
		}
		facts = append(facts, Fact{Title: "Scanned", Value: scanTime(r)})
	}
	body = append(body, FactSet{Facts: facts, Spacing: "Medium"})

	sites := siteFacts(t)
	return fitCard(len(sites), func(k int) AdaptiveCard {
		full := slices.Clone(body)
		if k > 0 {
			full = append(full,
				TextBlock{Text: "Sites", Weight: "Bolder", Wrap: true, Spacing: "Medium"},
				FactSet{Facts: sites[:k], Spacing: "Small"},
			)
		}
		if omitted := len(sites) - k; omitted > 0 {
			text := fmt.Sprintf("… and %d more %s", omitted, plural(omitted, "site", "sites"))
			full = append(full, TextBlock{Text: text, IsSubtle: true, Wrap: true})
		}
		return AdaptiveCard{Body: full}
	})
}

// changeFacts returns one fact per period, such as "+1.5 GiB".
func changeFacts(changes []Change) []Fact {
	facts := make([]Fact, 0, len(changes))
	for _, c := range changes {
		value := "not known yet: no scan from then"
		if c.Known {
			value = signedBytes(c.Bytes)
		}
		facts = append(facts, Fact{Title: fmt.Sprintf("Change over %d days", c.Days), Value: value})
	}
	return facts
}

// ownersFact lists a Team's owners, or flags a Team without one.
func ownersFact(owners []string) Fact {
	if len(owners) == 0 {
		return Fact{Title: "Owners", Value: "No owner"}
	}
	names := make([]string, 0, len(owners))
	for _, o := range owners[:min(len(owners), maxChoiceButtons)] {
		names = append(names, Escape(clip(o, maxTitleRunes)))
	}
	value := strings.Join(names, ", ")
	if more := len(owners) - len(names); more > 0 {
		value += fmt.Sprintf(" and %d more", more)
	}
	return Fact{Title: "Owners", Value: value}
}

// signedBytes formats a change in bytes with its sign, for example
// "+1.5 GiB", "-200 B" or "no change".
func signedBytes(n int64) string {
	switch {
	case n > 0:
		return "+" + scanner.FormatBytes(n)
	case n < 0:
		return scanner.FormatBytes(n)
	}
	return "no change"
}

// siteFacts returns the breakdown by site of a Team with private or
// shared channels: the main site, then one fact per channel site with its
// used bytes and recycle bin, or why it was not measured. A Team without
// channel sites gets none, because its quota facts already cover its
// only site.
func siteFacts(t scanner.TeamUsage) []Fact {
	var facts []Fact
	for _, s := range t.Sites {
		if s.Kind != scanner.SiteChannel {
			continue
		}
		title := Escape(clip(s.ChannelName, maxTitleRunes))
		if s.MembershipType != "" {
			title += " (" + Escape(s.MembershipType) + ")"
		}
		facts = append(facts, Fact{Title: title, Value: siteValue(s)})
	}
	if t.ChannelsReason != "" {
		facts = append(facts, Fact{Title: "Not listed", Value: Escape(clip(t.ChannelsReason, maxReasonRunes))})
	}
	if len(facts) == 0 {
		return nil
	}

	main := Fact{Title: "Main site", Value: Escape(outcomeLabel(t.Outcome))}
	if t.Outcome == scanner.OutcomeMeasured {
		main.Value = siteValue(scanner.SiteUsage{Outcome: t.Outcome, Quota: t.Quota})
	}
	return append([]Fact{main}, facts...)
}

// siteValue is one site's used bytes and recycle bin, or its outcome.
func siteValue(s scanner.SiteUsage) string {
	switch s.Outcome {
	case scanner.OutcomeMeasured:
		value := scanner.FormatBytes(s.Quota.Used) + ", recycle bin " + scanner.FormatBytes(s.Quota.Deleted)
		if s.Quota.State != "" && s.Quota.State != "normal" {
			value += ", " + Escape(quotaState(s.Quota.State))
		}
		return value
	case scanner.OutcomeNoDrive:
		return "not provisioned"
	}
	value := Escape(outcomeLabel(s.Outcome))
	if s.Reason != "" {
		value += ": " + Escape(clip(s.Reason, maxReasonRunes))
	}
	return value
}

// measuredChannelSites counts the measured channel sites of t.
func measuredChannelSites(t scanner.TeamUsage) int {
	n := 0
	for _, s := range t.Sites {
		if s.Kind == scanner.SiteChannel && s.Outcome == scanner.OutcomeMeasured {
			n++
		}
	}
	return n
}

// measuredFacts returns the quota facts of a measured Team and, when r is
// not nil, its rank and share.
func measuredFacts(t scanner.TeamUsage, r *scanner.Result) []Fact {
	q := t.Quota
	used := scanner.FormatBytes(q.Used)
	if q.Total > 0 {
		used += " (" + formatShare(q.Used, q.Total) + " of quota)"
	}

	facts := []Fact{
		{Title: "Used", Value: used},
		{Title: "Total", Value: scanner.FormatBytes(q.Total)},
		{Title: "Remaining", Value: scanner.FormatBytes(q.Remaining)},
		{Title: "Recycle bin", Value: scanner.FormatBytes(q.Deleted)},
		{Title: "Quota state", Value: Escape(quotaState(q.State))},
	}
	if sites := measuredChannelSites(t); sites > 0 {
		// The quota belongs to the main site, and each channel site has a
		// quota of its own, so the total gets a line apart.
		facts = []Fact{
			{Title: "Used", Value: fmt.Sprintf("%s in %d sites", scanner.FormatBytes(t.TotalUsed()), sites+1)},
			{Title: "Main site", Value: used},
			{Title: "Main site quota", Value: scanner.FormatBytes(q.Total)},
			{Title: "Remaining", Value: scanner.FormatBytes(q.Remaining)},
			{Title: "Recycle bin", Value: scanner.FormatBytes(t.TotalDeleted()) + " in all sites"},
			{Title: "Quota state", Value: Escape(quotaState(q.State))},
		}
	}
	if r == nil {
		return facts
	}

	if rank, measured := rankOf(t.Team.ID, r); rank > 0 {
		facts = append(facts, Fact{Title: "Rank", Value: fmt.Sprintf("%d of %d measured %s", rank, measured, plural(measured, "Team", "Teams"))})
	}
	total := r.TotalUsed()
	share := formatShare(t.TotalUsed(), total) + " of " + scanner.FormatBytes(total) + " used by all measured Teams"
	return append(facts, Fact{Title: "Share", Value: share})
}

// rankOf returns the 1-based rank of the Team id among the measured Teams of
// r, largest first, and the number of measured Teams. The rank is 0 when r
// has no measured Team with that id.
func rankOf(id string, r *scanner.Result) (rank, measured int) {
	teams := slices.Clone(r.Teams)
	scanner.SortTeams(teams)
	measured = r.Count(scanner.OutcomeMeasured)
	for i, t := range teams[:measured] {
		if t.Team.ID == id {
			return i + 1, measured
		}
	}
	return 0, measured
}

// quotaState spells a Graph quota state for a reader. Graph documents
// normal, nearing, critical and exceeded, and any other state is shown as
// Graph returned it.
func quotaState(state string) string {
	switch state {
	case "":
		return "not reported"
	case "normal":
		return "Normal"
	case "nearing":
		return "Nearing the limit"
	case "critical":
		return "Critical"
	case "exceeded":
		return "Exceeded"
	default:
		return clip(state, maxTitleRunes)
	}
}

func outcomeLabel(o scanner.Outcome) string {
	for _, l := range outcomeLabels {
		if l.outcome == o {
			return strings.TrimPrefix(l.label, "with ")
		}
	}
	return clip(string(o), maxTitleRunes)
}

func explainOutcome(o scanner.Outcome) string {
	if text, ok := outcomeExplanations[o]; ok {
		return text
	}
	return "This Team was not measured."
}

// Choice builds the card for a "usage <query>" request that matches several
// Teams: one button per match, in the given order, with its name, short id
// and size. The card never picks one itself. A button sends
// SubmitData{Cmd: CmdUsage, TeamID: id}.
func Choice(query string, matches []scanner.TeamUsage) AdaptiveCard {
	quoted := "“" + clip(query, maxQueryRunes) + "”"
	title := fmt.Sprintf("%d Teams match %s", len(matches), quoted)
	switch len(matches) {
	case 0:
		title = "No Team matches " + quoted
	case 1:
		title = "1 Team matches " + quoted
	}

	head := []Element{
		TextBlock{Text: Escape(title), Weight: "Bolder", Size: "Medium", Wrap: true},
	}
	if len(matches) > 1 {
		head = append(head, TextBlock{Text: "Select the Team you mean.", Wrap: true, Spacing: "Small"})
	}

	offered := matches[:min(len(matches), maxChoiceButtons)]
	buttons := make([]Element, 0, len(offered))
	for _, m := range offered {
		buttons = append(buttons, ActionSet{Actions: []Action{choiceButton(m)}})
	}

	return fitCard(len(buttons), func(k int) AdaptiveCard {
		body := append(slices.Clone(head), buttons[:k]...)
		if omitted := len(matches) - k; omitted > 0 {
			text := fmt.Sprintf("… and %d more. Send more of the name to narrow the list.", omitted)
			body = append(body, TextBlock{Text: text, IsSubtle: true, Wrap: true})
		}
		return AdaptiveCard{Body: body}
	})
}

// choiceButton returns the button for one matching Team. Action titles are
// plain text, so the name is not escaped, but control characters are
// replaced because a title is one line.
func choiceButton(t scanner.TeamUsage) ActionSubmit {
	size := outcomeLabel(t.Outcome)
	if t.Outcome == scanner.OutcomeMeasured {
		size = scanner.FormatBytes(t.TotalUsed())
	}
	title := strings.Join([]string{singleLine(displayName(t.Team)), shortID(t.Team.ID), size}, " · ")
	return ActionSubmit{Title: title, Data: SubmitData{Cmd: CmdUsage, TeamID: t.Team.ID}}
}
