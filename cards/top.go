package cards

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/storagebot/storagebot/scanner"
)

// MaxCardBytes is the largest card JSON that this package builds. Teams
// documents about 100 KB per bot message and rejects larger ones with 413,
// and the activity around the card needs room too.
//
// NOTE: a Microsoft Q&A thread (learn.microsoft.com/en-us/answers/questions/5566078)
// reports 413 RequestEntityTooLarge for a 70 KB payload, so Teams may count
// bytes differently. Cards of the sample tenant stay far below this limit.
const MaxCardBytes = 80_000

// DefaultTopRows is how many rows Top shows when asked for fewer than one.
const DefaultTopRows = 10

// Column weights of a Top row. Every row is its own ColumnSet, so the same
// weights keep the columns aligned from row to row.
const (
	nameWeight  = 5
	usedWeight  = 3
	shareWeight = 2
	barWeight   = 2
)

// timeLayout formats scan times. Cards show UTC because the bot does not
// know the reader's time zone.
const timeLayout = "2006-01-02 15:04 UTC"

// outcomeLabels name each outcome in card text, in the order the footer
// lists them.
var outcomeLabels = []struct {
	outcome scanner.Outcome
	label   string
}{
	{scanner.OutcomeMeasured, "measured"},
	{scanner.OutcomeUnknown, "with unknown quota"},
	{scanner.OutcomeNoDrive, "with no drive yet"},
	{scanner.OutcomeForbidden, "forbidden"},
	{scanner.OutcomeFailed, "failed"},
}

// maxOwnerNames is how many owner names a Top row lists before it counts
// the rest.
const maxOwnerNames = 3

// TopOptions selects the page of a Top card and what its rows show.
type TopOptions struct {
	// N is the number of rows; below 1 means DefaultTopRows.
	N int
	// Offset is how many measured Teams rank above the first row.
	Offset int
	// Paging adds "Previous N" and "Next N" buttons, which send
	// SubmitData{Cmd: CmdTop, N: n, Offset: offset}.
	Paging bool
	// Owners maps a Team id to its owners' display names. A Team in the
	// map with no names is flagged "No owner". A Team missing from the map
	// gets no owners line, for example because its lookup failed.
	Owners map[string][]string
	// Title replaces the "Top N Teams by storage" heading, for a list that
	// is not the tenant's ranking, such as the asker's own Teams. It is
	// markdown written by the caller, so it must not hold user input.
	Title string
}

// Top builds the "top N Teams" card: the N Teams that use the most storage,
// largest first, with their size, their share of the total used by all
// measured Teams and a bar of that share. Only measured Teams are ranked, and
// a footer counts every outcome, so no Team is silently dropped. A row that
// does not fit under MaxCardBytes is left out and counted in a "… and N
// more" line. A click on a row sends SubmitData{Cmd: CmdUsage, TeamID: id}.
// n below 1 means DefaultTopRows.
func Top(r *scanner.Result, n int) AdaptiveCard {
	return TopPage(r, TopOptions{N: n})
}

// TopPage builds the Top card for one page of the ranking, with the owners
// line of each row and the paging buttons that opts ask for. An Offset past
// the last measured Team shows the last page.
func TopPage(r *scanner.Result, opts TopOptions) AdaptiveCard {
	if r == nil {
		return Message("No scan yet", "Storage has not been scanned yet. Try again in a few minutes.")
	}
	n := opts.N
	if n < 1 {
		n = DefaultTopRows
	}

	teams := slices.Clone(r.Teams)
	scanner.SortTeams(teams)
	measured := teams[:r.Count(scanner.OutcomeMeasured)]
	offset := max(0, opts.Offset)
	if offset >= len(measured) {
		offset = max(0, len(measured)-n)
	}
	total := r.TotalUsed()
	twins := sameNameIndex(r.Teams)

	page := measured[offset:min(offset+n, len(measured))]
	rows := make([]Element, 0, len(page))
	for i, t := range page {
		row := topRow(offset+i+1, t, total, twins[t.Team.ID])
		if owners, ok := opts.Owners[t.Team.ID]; ok {
			row.Columns[0].Items = append(row.Columns[0].Items, ownersLine(owners))
		}
		rows = append(rows, row)
	}

	return fitCard(len(rows), func(shown int) AdaptiveCard {
		body := topHead(r, offset, shown, total, opts.Title)
		body = append(body, rows[:shown]...)
		if opts.Paging {
			body = append(body, pagingButtons(n, offset, shown, len(measured))...)
		}
		body = append(body, topTail(r, len(measured)-offset-shown)...)
		return AdaptiveCard{Body: body}
	})
}

// ownersLine lists the owners of a Team, or flags a Team without one.
func ownersLine(owners []string) TextBlock {
	if len(owners) == 0 {
		return TextBlock{Text: "No owner", Color: "Attention", Weight: "Bolder", Size: "Small", Wrap: true, Spacing: "None"}
	}
	names := make([]string, 0, maxOwnerNames)
	for _, o := range owners[:min(len(owners), maxOwnerNames)] {
		names = append(names, Escape(clip(o, maxTitleRunes)))
	}
	text := plural(len(owners), "Owner: ", "Owners: ") + strings.Join(names, ", ")
	if more := len(owners) - len(names); more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	return TextBlock{Text: text, IsSubtle: true, Size: "Small", Wrap: true, Spacing: "None"}
}

// pagingButtons returns the "Previous" and "Next" buttons of a page that
// starts at offset and shows shown of the measured Teams.
func pagingButtons(n, offset, shown, measured int) []Element {
	var actions []Action
	if offset > 0 {
		previous := max(0, offset-n)
		actions = append(actions, ActionSubmit{
			Title: fmt.Sprintf("Previous %d", offset-previous),
			Data:  SubmitData{Cmd: CmdTop, N: n, Offset: previous},
		})
	}
	if next := offset + shown; shown > 0 && next < measured {
		actions = append(actions, ActionSubmit{
			Title: fmt.Sprintf("Next %d", min(n, measured-next)),
			Data:  SubmitData{Cmd: CmdTop, N: n, Offset: next},
		})
	}
	if len(actions) == 0 {
		return nil
	}
	return []Element{ActionSet{Actions: actions, Spacing: "Medium"}}
}

// topHead returns the title, the summary line and the column headers. A
// non-empty custom title replaces the ranking heading.
func topHead(r *scanner.Result, offset, rowCount int, total int64, custom string) []Element {
	title := fmt.Sprintf("Top %d Teams by storage", rowCount)
	switch {
	case custom != "":
		title = custom
	case offset > 0 && rowCount > 0:
		title = fmt.Sprintf("Teams ranked %d to %d by storage", offset+1, offset+rowCount)
	case rowCount == 1:
		title = "Top Team by storage"
	}

	measured := r.Count(scanner.OutcomeMeasured)
	summary := fmt.Sprintf("%s used by %d measured %s · scanned %s",
		scanner.FormatBytes(total), measured, plural(measured, "Team", "Teams"), scanTime(r))

	head := []Element{
		TextBlock{Text: title, Weight: "Bolder", Size: "Medium", Wrap: true},
		TextBlock{Text: summary, IsSubtle: true, Wrap: true, Spacing: "None"},
	}
	if measured == 0 {
		return append(head, TextBlock{Text: "No Team has a measured quota yet.", Wrap: true})
	}

	header := func(text string, align string) TextBlock {
		return TextBlock{Text: text, Weight: "Bolder", IsSubtle: true, HorizontalAlignment: align}
	}
	return append(head, ColumnSet{
		Spacing: "Medium",
		Columns: []Column{
			{Width: Weight(nameWeight), Items: []Element{header("Team", "")}},
			{Width: Weight(usedWeight), Items: []Element{header("Used", "Right")}},
			{Width: Weight(shareWeight), Items: []Element{header("Share", "Right")}},
			{Width: Weight(barWeight)},
		},
	})
}

// topRow returns the row of the Team ranked rank.
func topRow(rank int, t scanner.TeamUsage, total int64, twin sameName) ColumnSet {
	name := Escape(strconv.Itoa(rank)+".") + " " + Escape(displayName(t.Team))
	if twin.count > 1 {
		name += fmt.Sprintf(" (%s, %d of %d)", Escape(shortID(t.Team.ID)), twin.index, twin.count)
	}

	used := t.TotalUsed()
	var bar []Element
	if b := usageBar(used, total); b != "" {
		bar = []Element{TextBlock{Text: b, FontType: "Monospace", Color: "Accent"}}
	}
	nameItems := []Element{TextBlock{Text: name, Wrap: true}}
	if sites := measuredChannelSites(t); sites > 0 {
		note := fmt.Sprintf("incl. %s in %d channel %s", scanner.FormatBytes(t.ChannelUsed()), sites, plural(sites, "site", "sites"))
		nameItems = append(nameItems, TextBlock{Text: note, IsSubtle: true, Size: "Small", Wrap: true, Spacing: "None"})
	}

	return ColumnSet{
		Spacing:      "Small",
		SelectAction: ActionSubmit{Title: "Show usage", Data: SubmitData{Cmd: CmdUsage, TeamID: t.Team.ID}},
		Columns: []Column{
			{Width: Weight(nameWeight), Items: nameItems},
			{Width: Weight(usedWeight), Items: []Element{TextBlock{Text: scanner.FormatBytes(used), HorizontalAlignment: "Right"}}},
			{Width: Weight(shareWeight), Items: []Element{TextBlock{Text: formatShare(used, total), HorizontalAlignment: "Right"}}},
			{Width: Weight(barWeight), Items: bar},
		},
	}
}

// topTail returns the truncation line, when rows were left out, and the
// footer that counts every outcome.
func topTail(r *scanner.Result, omitted int) []Element {
	var tail []Element
	if omitted > 0 {
		tail = append(tail, TextBlock{
			Text:     fmt.Sprintf("… and %d more measured %s", omitted, plural(omitted, "Team", "Teams")),
			IsSubtle: true,
			Wrap:     true,
		})
	}

	footer := Container{
		Separator: true,
		Spacing:   "Medium",
		Items: []Element{
			TextBlock{Text: outcomeSummary(r), IsSubtle: true, Wrap: true, Size: "Small"},
			TextBlock{Text: "Select a Team to see its details.", IsSubtle: true, Wrap: true, Size: "Small", Spacing: "None"},
		},
	}
	return append(tail, footer)
}

// outcomeSummary counts the Teams of r by outcome, for example "63 Teams
// scanned: 57 measured, 2 with unknown quota, 1 failed."
func outcomeSummary(r *scanner.Result) string {
	parts := make([]string, 0, len(outcomeLabels)+1)
	counted := 0
	for _, o := range outcomeLabels {
		c := r.Count(o.outcome)
		counted += c
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, o.label))
		}
	}
	if other := len(r.Teams) - counted; other > 0 {
		parts = append(parts, fmt.Sprintf("%d with another outcome", other))
	}

	summary := fmt.Sprintf("%d %s scanned", len(r.Teams), plural(len(r.Teams), "Team", "Teams"))
	if len(parts) == 0 {
		return summary + "."
	}
	return summary + ": " + strings.Join(parts, ", ") + "."
}

// scanTime formats when r was scanned: its finish time or, for a scan still
// running, its start time.
func scanTime(r *scanner.Result) string {
	switch {
	case !r.FinishedAt.IsZero():
		return r.FinishedAt.UTC().Format(timeLayout)
	case !r.StartedAt.IsZero():
		return r.StartedAt.UTC().Format(timeLayout) + ", still running"
	default:
		return "unknown"
	}
}

// sameName is a Team's place among the Teams that share its display name:
// index counts from 1, largest first (measured before unmeasured, then by
// group id), and count is 1 for a unique name.
type sameName struct {
	index, count int
}

// sameNameIndex groups teams by display name, ignoring letter case and
// surrounding space, and returns each Team id's place in its group. An id
// listed twice counts once.
func sameNameIndex(teams []scanner.TeamUsage) map[string]sameName {
	groups := make(map[string][]scanner.TeamUsage)
	seen := make(map[string]bool, len(teams))
	for _, t := range teams {
		if seen[t.Team.ID] {
			continue
		}
		seen[t.Team.ID] = true
		key := nameKey(t.Team.DisplayName)
		groups[key] = append(groups[key], t)
	}

	index := make(map[string]sameName, len(seen))
	for _, group := range groups {
		scanner.SortTeams(group)
		for i, t := range group {
			index[t.Team.ID] = sameName{index: i + 1, count: len(group)}
		}
	}
	return index
}

func nameKey(name string) string {
	return strings.ToLower(strings.Join(strings.Fields(name), " "))
}

// displayName returns the Team's name, clipped, or a placeholder for an
// empty one.
func displayName(t scanner.Team) string {
	if strings.TrimSpace(t.DisplayName) == "" {
		return "Unnamed Team"
	}
	return clip(t.DisplayName, maxNameRunes)
}

func plural(n int, singular, pluralForm string) string {
	if n == 1 {
		return singular
	}
	return pluralForm
}

// fitCard returns build(k) for the largest k from 0 to n whose card JSON
// fits in MaxCardBytes, where k counts the list items the card shows.
// build(0) must fit.
func fitCard(n int, build func(k int) AdaptiveCard) AdaptiveCard {
	if card := build(n); cardSize(card) <= MaxCardBytes {
		return card
	}

	// Binary search: build(lo) always fits and build(hi+1) never does.
	lo, hi := 0, n-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if cardSize(build(mid)) <= MaxCardBytes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return build(lo)
}

// cardSize returns the JSON size of card. json.Marshal escapes <, > and & as
// \u003c and so on, the longest encoding that a sender may choose.
func cardSize(card AdaptiveCard) int {
	raw, err := json.Marshal(card)
	if err != nil {
		// Every type in this package marshals, so a failure is a
		// programming error that the tests catch.
		panic(fmt.Sprintf("marshal card: %v", err))
	}
	return len(raw)
}
