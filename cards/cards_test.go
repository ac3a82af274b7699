package cards

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
	tib = int64(1) << 40
)

// Group ids of the two Teams that are both named "The Library".
const (
	libraryID      = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"
	otherLibraryID = "7b0d4e22-1c3a-4f5e-8d9c-6e5f4a3b2c1d"
)

// sampleResult returns a small tenant with the cases the cards must handle:
// two Teams with one name, emoji, accents, apostrophes, Markdown and HTML in
// names, a Team with 0 bytes used, and one Team for each outcome other than
// measured.
func sampleResult() *scanner.Result {
	measured := func(id, name string, used, total int64, state string) scanner.TeamUsage {
		return scanner.TeamUsage{
			Team:    scanner.Team{ID: id, DisplayName: name},
			Outcome: scanner.OutcomeMeasured,
			Quota: scanner.Quota{
				Total: total, Used: used, Remaining: total - used, Deleted: used / 20, State: state,
			},
			Attempts: 1,
		}
	}
	other := func(id, name string, outcome scanner.Outcome, reason string) scanner.TeamUsage {
		return scanner.TeamUsage{
			Team:     scanner.Team{ID: id, DisplayName: name},
			Outcome:  outcome,
			Reason:   reason,
			Attempts: 1,
		}
	}

	return &scanner.Result{
		TenantID:   "contoso-school",
		StartedAt:  time.Date(2026, 5, 4, 7, 25, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 5, 4, 7, 30, 12, 0, time.UTC),
		Teams: []scanner.TeamUsage{
			measured("c0ffee00-0000-4000-8000-000000000003", "Café Ünïcode 📚", 812*mib, 25*tib, "normal"),
			measured(otherLibraryID, "The Library", 300*gib, 25*tib, "normal"),
			measured("d00dfeed-0000-4000-8000-000000000004", "O'Brien's *Maths* [click](http://evil.example) <b>x</b>", 45*gib, 25*tib, "nearing"),
			measured(libraryID, "The Library", 1671214159708, 25*tib, "critical"),
			measured("e1e1e1e1-0000-4000-8000-000000000005", "1. Not a list", 2*gib, 25*tib, "normal"),
			measured("f2f2f2f2-0000-4000-8000-000000000006", "- dash\n# heading", 10*mib, 25*tib, "exceeded"),
			measured("a3a3a3a3-0000-4000-8000-000000000007", "{{DATE(2017-02-14T06:00:00Z, SHORT)}}", 0, 25*tib, ""),
			other("b4b4b4b4-0000-4000-8000-000000000008", "Science Dept", scanner.OutcomeNoDrive, "HTTP 404 itemNotFound"),
			other("b5b5b5b5-0000-4000-8000-000000000009", "Archive 2019", scanner.OutcomeUnknown, "quota fields all zero"),
			other("b6b6b6b6-0000-4000-8000-00000000000a", "HR Confidential", scanner.OutcomeForbidden, "HTTP 403 accessDenied"),
			other("b7b7b7b7-0000-4000-8000-00000000000b", "Sports_Club", scanner.OutcomeFailed, "HTTP 429 after 6 attempts"),
		},
	}
}

// channelResult returns two Teams, where the smaller main site passes the
// larger one only with its private and shared channel sites.
func channelResult() *scanner.Result {
	quota := func(used int64, state string) scanner.Quota {
		return scanner.Quota{Total: 25 * tib, Used: used, Remaining: 25*tib - used, Deleted: used / 10, State: state}
	}
	library := scanner.TeamUsage{
		Team:     scanner.Team{ID: libraryID, DisplayName: "The Library"},
		Outcome:  scanner.OutcomeMeasured,
		Quota:    quota(100*gib, "normal"),
		Attempts: 1,
		Sites: []scanner.SiteUsage{
			{Kind: scanner.SiteMain, Outcome: scanner.OutcomeMeasured, Quota: quota(100*gib, "normal")},
			{Kind: scanner.SiteChannel, ChannelID: "19:a@thread.tacv2", ChannelName: "Staff *Room*", MembershipType: "private", Outcome: scanner.OutcomeMeasured, Quota: quota(140*gib, "nearing")},
			{Kind: scanner.SiteChannel, ChannelID: "19:b@thread.tacv2", ChannelName: "Reading Programme", MembershipType: "shared", Outcome: scanner.OutcomeMeasured, Quota: quota(46*gib, "normal")},
			{Kind: scanner.SiteChannel, ChannelID: "19:c@thread.tacv2", ChannelName: "Archive", MembershipType: "private", Outcome: scanner.OutcomeNoDrive, Reason: "the channel's SharePoint site is not provisioned"},
			{Kind: scanner.SiteChannel, ChannelID: "19:d@thread.tacv2", ChannelName: "Exams", MembershipType: "private", Outcome: scanner.OutcomeFailed, Reason: "HTTP 503 after 6 attempts"},
		},
	}
	office := scanner.TeamUsage{
		Team:    scanner.Team{ID: otherLibraryID, DisplayName: "Head's Office"},
		Outcome: scanner.OutcomeMeasured,
		Quota:   quota(200*gib, "normal"),
		Sites:   []scanner.SiteUsage{{Kind: scanner.SiteMain, Outcome: scanner.OutcomeMeasured, Quota: quota(200*gib, "normal")}},
	}
	return &scanner.Result{
		StartedAt:  time.Date(2026, 5, 4, 7, 25, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 5, 4, 7, 30, 12, 0, time.UTC),
		Teams:      []scanner.TeamUsage{library, office},
	}
}

func TestChannelSitesInCards(t *testing.T) {
	r := channelResult()
	top := plainText(t, Top(r, 10))
	usage := plainText(t, Usage(r.Teams[0], r))
	for _, tt := range []struct {
		card, text, want string
	}{
		{"top", top, "1. The Library"},
		{"top", top, "286.0 GiB"},
		{"top", top, "incl. 186.0 GiB in 2 channel sites"},
		{"usage", usage, "Used: 286.0 GiB in 3 sites"},
		{"usage", usage, "Main site: 100.0 GiB, recycle bin"},
		{"usage", usage, "Recycle bin: 28.6 GiB in all sites"},
		{"usage", usage, "Staff *Room* (private): 140.0 GiB, recycle bin 14.0 GiB, Nearing the limit"},
		{"usage", usage, "Reading Programme (shared): 46.0 GiB"},
		{"usage", usage, "Archive (private): not provisioned"},
		{"usage", usage, "Exams (private): failed: HTTP 503 after 6 attempts"},
		{"usage", usage, "Rank: 1 of 2 measured Teams"},
	} {
		if !strings.Contains(tt.text, tt.want) {
			t.Errorf("%s card text has no %q:\n%s", tt.card, tt.want, tt.text)
		}
	}
	if strings.Index(top, "The Library") > strings.Index(top, "Head's Office") {
		t.Errorf("top card ranks Head's Office (200 GiB) above The Library (286 GiB with channel sites):\n%s", top)
	}
}

// teamByID returns the Team of r with id, or fails the test.
func teamByID(t *testing.T, r *scanner.Result, id string) scanner.TeamUsage {
	t.Helper()
	for _, team := range r.Teams {
		if team.Team.ID == id {
			return team
		}
	}
	t.Fatalf("sample result has no Team %s", id)
	return scanner.TeamUsage{}
}

// sampleCards returns every card kind built from the sample result, keyed by
// a name that is safe in a file name.
func sampleCards(t *testing.T) map[string]AdaptiveCard {
	t.Helper()
	r := sampleResult()
	return map[string]AdaptiveCard{
		"top":            Top(r, 10),
		"top_one":        Top(r, 1),
		"top_none":       Top(&scanner.Result{}, 10),
		"top_nil":        Top(nil, 10),
		"usage":          Usage(teamByID(t, r, libraryID), r),
		"usage_nil":      Usage(teamByID(t, r, libraryID), nil),
		"usage_failed":   Usage(teamByID(t, r, "b7b7b7b7-0000-4000-8000-00000000000b"), r),
		"usage_nodrive":  Usage(teamByID(t, r, "b4b4b4b4-0000-4000-8000-000000000008"), r),
		"top_channels":   Top(channelResult(), 10),
		"usage_channels": Usage(channelResult().Teams[0], channelResult()),
		"choice": Choice("the *library*", []scanner.TeamUsage{
			teamByID(t, r, libraryID), teamByID(t, r, otherLibraryID), teamByID(t, r, "b4b4b4b4-0000-4000-8000-000000000008"),
		}),
		"choice_none": Choice("nothing", nil),
		"top_page": TopPage(r, TopOptions{N: 3, Offset: 3, Paging: true, Owners: map[string][]string{
			"e1e1e1e1-0000-4000-8000-000000000005": {"Megan Bowen", "Adele *Vance*", "Alex Wilber", "Lynne Robbins"},
			"c0ffee00-0000-4000-8000-000000000003": {},
		}}),
		"usage_detail": UsageDetail(teamByID(t, r, libraryID), r, UsageDetails{
			OwnersKnown: true,
			Owners:      []string{"Adele Vance"},
			Changes:     []Change{{Days: 7, Known: true, Bytes: 3 * gib}, {Days: 30}},
		}),
		"usage_no_owner":   UsageDetail(teamByID(t, r, otherLibraryID), r, UsageDetails{OwnersKnown: true}),
		"summary":          Summary(r, SummaryDetails{TenantQuota: 25 * tib, WeekChange: Change{Known: true, Bytes: -2 * gib}}),
		"summary_no_quota": Summary(r, SummaryDetails{QuotaHint: "Set STORAGEBOT_TENANT_QUOTA to see the share."}),
		"progress":         Progress("Scanning the tenant", ScanProgress{Running: true, Done: 312, Discovered: 535, Elapsed: 3 * time.Second, Remaining: 2 * time.Second}),
		"progress_waiting": Progress("Scanning the tenant", ScanProgress{Elapsed: 4 * time.Second}),
		"export":           ExportLink("https://bot.example/export/abc.csv", time.Date(2026, 5, 4, 7, 45, 0, 0, time.UTC), 11, "2026-05-04 07:30 UTC"),
		"help":             Help(botCommands()),
		"help_empty":       Help(nil),
		"message":          Message("Team not found", "No Team is named “[x](http://evil.example)”.\nSend \"top\" to list the largest Teams."),
	}
}

func botCommands() []Command {
	return []Command{
		{Usage: "help", Description: "Show this list."},
		{Usage: "top [N] [teams]", Description: "List the N Teams that use the most storage (10 if N is left out)."},
		{Usage: "usage <team name>", Description: "Show one Team's storage."},
	}
}

// checkGolden compares got with testdata/<test name>.golden.json as JSON
// values, so formatting and key order do not matter. With -update it writes
// the file instead.
func checkGolden(t *testing.T, got any) {
	t.Helper()
	raw, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatalf("marshal card: %v", err)
	}
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden.json")
	if *update {
		if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
			t.Fatalf("write golden file: %v", err)
		}
		return
	}

	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./cards -update to create it): %v", err)
	}
	var gotValue, wantValue any
	if err := json.Unmarshal(raw, &gotValue); err != nil {
		t.Fatalf("decode card: %v", err)
	}
	if err := json.Unmarshal(want, &wantValue); err != nil {
		t.Fatalf("decode golden file %s: %v", path, err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Errorf("card differs from %s (run go test ./cards -update to accept it)\ngot:\n%s", path, raw)
	}
}

func TestCardsGolden(t *testing.T) {
	for name, card := range sampleCards(t) {
		t.Run(name, func(t *testing.T) {
			checkGolden(t, card)
		})
	}
}

func TestAttachmentGolden(t *testing.T) {
	checkGolden(t, Attachment(Message("No scan yet", "Try again later.")))
}

func TestCardRootProperties(t *testing.T) {
	for name, card := range sampleCards(t) {
		t.Run(name, func(t *testing.T) {
			var root map[string]any
			raw, err := json.Marshal(card)
			if err != nil {
				t.Fatalf("marshal card: %v", err)
			}
			if err := json.Unmarshal(raw, &root); err != nil {
				t.Fatalf("decode card: %v", err)
			}

			want := map[string]any{
				"type":    "AdaptiveCard",
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"version": "1.5",
				"msteams": map[string]any{"width": "Full"},
			}
			for key, value := range want {
				if !reflect.DeepEqual(root[key], value) {
					t.Errorf("root %q = %v, want %v", key, root[key], value)
				}
			}
			if len(raw) > MaxCardBytes {
				t.Errorf("card is %d bytes, want at most %d", len(raw), MaxCardBytes)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "The Library", "The Library"},
		{"accents and emoji", "Café Ünïcode 📚", "Café Ünïcode 📚"},
		{"apostrophe", "O'Brien's", "O'Brien's"},
		{"bold", "**loud**", `\*\*loud\*\*`},
		{"italic", "_quiet_", `\_quiet\_`},
		{"link", "[click](http://evil.example)", `\[click\]\(http://evil\.example\)`},
		{"image", "![x](http://evil.example/a.png)", `\!\[x\]\(http://evil\.example/a\.png\)`},
		{"autolink", "<http://evil.example>", `\<http://evil\.example\>`},
		{"html", "<b>x</b>", `\<b\>x\</b\>`},
		{"entity", "&lt;b&gt;", `\&lt;b\&gt;`},
		{"ordered list", "1. Not a list", `1\. Not a list`},
		{"bullet list", "- item", `\- item`},
		{"plus list", "+ item", `\+ item`},
		{"heading", "# Heading", `\# Heading`},
		{"code", "`code`", "\\`code\\`"},
		{"strikethrough", "~~gone~~", `\~\~gone\~\~`},
		{"table pipe", "a | b", `a \| b`},
		{"backslash", `C:\share`, `C:\\share`},
		{"date function", "{{DATE(2017-02-14T06:00:00Z, SHORT)}}", `\{\{DATE\(2017\-02\-14T06:00:00Z, SHORT\)\}\}`},
		{"new line starts list", "team\n- item", `team \- item`},
		{"carriage return and tab", "a\r\n\tb", "a   b"},
		{"line separator", "a\u2028b", "a b"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Escape(tt.in)
			if got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !strings.ContainsAny(tt.in, "\r\n\t\u2028") && Unescape(got) != tt.in {
				t.Errorf("Unescape(Escape(%q)) = %q, want the input back", tt.in, Unescape(got))
			}
		})
	}
}

func TestEscapeLeavesNoBareMarkdown(t *testing.T) {
	for _, name := range []string{
		"**[a](b)**", `\*not escaped\*`, `\\*`, "<<>>", "_*`~|#+-.!&{}()[]",
	} {
		t.Run(name, func(t *testing.T) {
			escaped := Escape(name)
			for i := 0; i < len(escaped); i++ {
				if escaped[i] == '\\' {
					i++
					continue
				}
				if strings.IndexByte(markdownPunctuation, escaped[i]) >= 0 {
					t.Fatalf("Escape(%q) = %q leaves %q at byte %d unescaped", name, escaped, escaped[i], i)
				}
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`\*bold\*`, "*bold*"},
		{`1\. a`, "1. a"},
		{`\\`, `\`},
		{`a\b`, `a\b`},
		{`trailing\`, `trailing\`},
		{"no escapes", "no escapes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Unescape(tt.in); got != tt.want {
				t.Errorf("Unescape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatShare(t *testing.T) {
	tests := []struct {
		part, total int64
		want        string
	}{
		{0, 100, "0.0%"},
		{1, 0, "0.0%"},
		{181, 1000, "18.1%"},
		{1, 1_000_000, "<0.1%"},
		{1000, 1000, "100.0%"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatShare(tt.part, tt.total); got != tt.want {
				t.Errorf("formatShare(%d, %d) = %q, want %q", tt.part, tt.total, got, tt.want)
			}
		})
	}
}

func TestUsageBar(t *testing.T) {
	tests := []struct {
		name        string
		part, total int64
		want        string
	}{
		{"zero", 0, 100, ""},
		{"empty tenant", 5, 0, ""},
		{"tiny share shows one eighth", 1, 1_000_000, "▏"},
		{"half", 50, 100, "████"},
		{"full", 100, 100, "████████"},
		{"partial cell", 181, 1000, "█▌"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := usageBar(tt.part, tt.total); got != tt.want {
				t.Errorf("usageBar(%d, %d) = %q, want %q", tt.part, tt.total, got, tt.want)
			}
		})
	}
}

// plainText renders card with PlainText and fails the test on an error.
func plainText(t *testing.T, card any) string {
	t.Helper()
	raw, err := json.Marshal(card)
	if err != nil {
		t.Fatalf("marshal card: %v", err)
	}
	text, err := PlainText(raw)
	if err != nil {
		t.Fatalf("PlainText: %v", err)
	}
	return text
}

func TestPlainTextTop(t *testing.T) {
	lines := strings.Split(plainText(t, Top(sampleResult(), 10)), "\n")

	want := []string{
		"Top 7 Teams by storage",
		"1.9 TiB used by 7 measured Teams · scanned 2026-05-04 07:30 UTC",
		"Team   Used   Share",
		"1. The Library (3f2a9c1e, 1 of 2)   1.5 TiB   81.7%   ██████▌",
		"2. The Library (7b0d4e22, 2 of 2)   300.0 GiB   15.8%   █▎",
		"3. O'Brien's *Maths* [click](http://evil.example) <b>x</b>   45.0 GiB   2.4%   ▎",
		"4. 1. Not a list   2.0 GiB   0.1%   ▏",
		"5. Café Ünïcode 📚   812.0 MiB   <0.1%   ▏",
		"6. - dash # heading   10.0 MiB   <0.1%   ▏",
		"7. {{DATE(2017-02-14T06:00:00Z, SHORT)}}   0 B   0.0%",
		"11 Teams scanned: 7 measured, 1 with unknown quota, 1 with no drive yet, 1 forbidden, 1 failed.",
		"Select a Team to see its details.",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("PlainText lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlainTextAttachment(t *testing.T) {
	got := plainText(t, Attachment(Message("No scan yet", "Try again *later*.")))
	if want := "No scan yet\nTry again *later*."; got != want {
		t.Errorf("PlainText = %q, want %q", got, want)
	}
}

func TestPlainTextChoiceButtons(t *testing.T) {
	r := sampleResult()
	got := plainText(t, Choice("library", []scanner.TeamUsage{teamByID(t, r, libraryID), teamByID(t, r, otherLibraryID)}))
	want := strings.Join([]string{
		"2 Teams match “library”",
		"Select the Team you mean.",
		"[The Library · 3f2a9c1e · 1.5 TiB]",
		"[The Library · 7b0d4e22 · 300.0 GiB]",
	}, "\n")
	if got != want {
		t.Errorf("PlainText:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlainTextOtherElements(t *testing.T) {
	raw := `{"type":"AdaptiveCard","version":"1.5","body":[
		{"type":"RichTextBlock","inlines":["plain ",{"type":"TextRun","text":"run\\*"}]},
		{"type":"TextBlock","text":"hidden","isVisible":false},
		{"type":"Table","rows":[{"type":"TableRow","cells":[
			{"type":"TableCell","items":[{"type":"TextBlock","text":"a"}]},
			{"type":"TableCell","items":[{"type":"TextBlock","text":"b"}]}]}]},
		{"type":"Image","url":"https://example.com/a.png"},
		{"type":"Carousel","items":[{"type":"TextBlock","text":"inside unknown"}]}],
		"actions":[{"type":"Action.OpenUrl","title":"Open","url":"https://example.com"}]}`
	got, err := PlainText([]byte(raw))
	if err != nil {
		t.Fatalf("PlainText: %v", err)
	}
	want := "plain run\\*\na   b\ninside unknown\n[Open]"
	if got != want {
		t.Errorf("PlainText = %q, want %q", got, want)
	}
}

func TestPlainTextErrors(t *testing.T) {
	deep := strings.Repeat(`{"type":"Container","items":[`, maxPlainTextDepth+2) +
		strings.Repeat(`]}`, maxPlainTextDepth+2)
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"not a card", `{"type":"message","text":"hi"}`, ErrNotAdaptiveCard},
		{"JSON array", `[1,2]`, nil},
		{"too deep", `{"type":"AdaptiveCard","body":[` + deep + `]}`, ErrCardTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlainText([]byte(tt.raw))
			if err == nil {
				t.Fatal("PlainText returned no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("PlainText error = %v, want %v", err, tt.want)
			}
			var typeErr *json.UnmarshalTypeError
			if tt.want == nil && !errors.As(err, &typeErr) {
				t.Errorf("PlainText error = %v, want a *json.UnmarshalTypeError", err)
			}
		})
	}
}

func TestTopRowsSubmitUsage(t *testing.T) {
	card := Top(sampleResult(), 10)

	var ids []string
	for _, e := range card.Body {
		row, ok := e.(ColumnSet)
		if !ok || row.SelectAction == nil {
			continue
		}
		submit, ok := row.SelectAction.(ActionSubmit)
		if !ok {
			t.Fatalf("row select action is %T, want ActionSubmit", row.SelectAction)
		}
		if submit.Data.Cmd != CmdUsage {
			t.Errorf("row data cmd = %q, want %q", submit.Data.Cmd, CmdUsage)
		}
		ids = append(ids, submit.Data.TeamID)
	}
	if len(ids) != 7 || ids[0] != libraryID || ids[1] != otherLibraryID {
		t.Errorf("row team ids = %v, want 7 rows starting with %s, %s", ids, libraryID, otherLibraryID)
	}
}

func TestTopRowLimit(t *testing.T) {
	tests := []struct {
		n        int
		wantRows int
		wantMore string
	}{
		{n: 2, wantRows: 2, wantMore: "… and 5 more measured Teams"},
		{n: 6, wantRows: 6, wantMore: "… and 1 more measured Team"},
		{n: 0, wantRows: 7},
		{n: -3, wantRows: 7},
		{n: 100, wantRows: 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			text := plainText(t, Top(sampleResult(), tt.n))
			rows := strings.Count(text, "\n") - 4 // title, summary, header, footer: 5 lines, 4 breaks
			if tt.wantMore != "" {
				rows--
				if !strings.Contains(text, tt.wantMore+"\n") {
					t.Errorf("card text has no %q line:\n%s", tt.wantMore, text)
				}
			}
			if rows != tt.wantRows {
				t.Errorf("card has %d rows, want %d:\n%s", rows, tt.wantRows, text)
			}
		})
	}
}

// hugeResult returns a tenant of count measured Teams whose names are as long
// as Graph allows and made of characters that Escape and JSON both expand.
func hugeResult(count int) *scanner.Result {
	name := strings.Repeat("<&>", 256/3)
	r := &scanner.Result{FinishedAt: time.Date(2026, 5, 4, 7, 30, 0, 0, time.UTC)}
	for i := range count {
		r.Teams = append(r.Teams, scanner.TeamUsage{
			Team:    scanner.Team{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), DisplayName: name},
			Outcome: scanner.OutcomeMeasured,
			Quota:   scanner.Quota{Used: int64(count-i) * gib, Total: 25 * tib},
		})
	}
	return r
}

// manySites returns t measured with count private channel sites named
// name.
func manySites(t scanner.TeamUsage, count int, name string) scanner.TeamUsage {
	t.Sites = []scanner.SiteUsage{{Kind: scanner.SiteMain, Outcome: scanner.OutcomeMeasured, Quota: t.Quota}}
	for i := range count {
		t.Sites = append(t.Sites, scanner.SiteUsage{
			Kind: scanner.SiteChannel, ChannelID: fmt.Sprint(i), ChannelName: name, MembershipType: "private",
			Outcome: scanner.OutcomeFailed, Reason: name,
		})
	}
	return t
}

func TestCardsStayUnderSizeLimit(t *testing.T) {
	r := hugeResult(2000)
	longText := strings.Repeat("<&> ", 20_000)
	many := make([]Command, 1000)
	for i := range many {
		many[i] = Command{Usage: longText, Description: longText}
	}

	tests := []struct {
		name     string
		card     AdaptiveCard
		wantMore string
	}{
		{"top", Top(r, 2000), "more measured Teams"},
		{"top page", TopPage(r, TopOptions{N: 2000, Offset: 10, Paging: true, Owners: map[string][]string{r.Teams[10].Team.ID: {longText, longText}}}), "more measured Teams"},
		{"summary", Summary(r, SummaryDetails{QuotaHint: longText}), ""},
		{"usage detail", UsageDetail(manySites(r.Teams[0], 3000, longText), r, UsageDetails{OwnersKnown: true, Owners: strings.Fields(strings.Repeat("Owner ", 100))}), "more sites"},
		{"choice", Choice(longText, r.Teams), "more. Send more of the name"},
		{"help", Help(many), "more commands"},
		{"message", Message(longText, longText), ""},
		{"usage", Usage(scanner.TeamUsage{Team: r.Teams[0].Team, Outcome: scanner.OutcomeFailed, Reason: longText}, r), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.card)
			if err != nil {
				t.Fatalf("marshal card: %v", err)
			}
			if len(raw) > MaxCardBytes {
				t.Errorf("card is %d bytes, want at most %d", len(raw), MaxCardBytes)
			}
			if text := plainText(t, tt.card); tt.wantMore != "" && !strings.Contains(text, tt.wantMore) {
				t.Errorf("card has no truncation line with %q", tt.wantMore)
			}
		})
	}
}

func TestTopPaging(t *testing.T) {
	r := hugeResult(25)
	tests := []struct {
		name       string
		opts       TopOptions
		wantTitle  string
		wantFirst  string
		wantData   []SubmitData
		wantNoMore bool
	}{
		{
			name:      "first page",
			opts:      TopOptions{N: 10, Paging: true},
			wantTitle: "Top 10 Teams by storage",
			wantFirst: "1. ",
			wantData:  []SubmitData{{Cmd: CmdTop, N: 10, Offset: 10}},
		},
		{
			name:      "middle page",
			opts:      TopOptions{N: 10, Offset: 10, Paging: true},
			wantTitle: "Teams ranked 11 to 20 by storage",
			wantFirst: "11. ",
			wantData:  []SubmitData{{Cmd: CmdTop, N: 10}, {Cmd: CmdTop, N: 10, Offset: 20}},
		},
		{
			name:       "last page",
			opts:       TopOptions{N: 10, Offset: 20, Paging: true},
			wantTitle:  "Teams ranked 21 to 25 by storage",
			wantFirst:  "21. ",
			wantData:   []SubmitData{{Cmd: CmdTop, N: 10, Offset: 10}},
			wantNoMore: true,
		},
		{
			name:       "offset past the end shows the last page",
			opts:       TopOptions{N: 10, Offset: 400, Paging: true},
			wantTitle:  "Teams ranked 16 to 25 by storage",
			wantFirst:  "16. ",
			wantData:   []SubmitData{{Cmd: CmdTop, N: 10, Offset: 5}},
			wantNoMore: true,
		},
		{
			name:      "no paging",
			opts:      TopOptions{N: 10},
			wantTitle: "Top 10 Teams by storage",
			wantFirst: "1. ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(TopPage(r, tt.opts))
			if err != nil {
				t.Fatalf("marshal card: %v", err)
			}
			var card struct {
				Body []json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(raw, &card); err != nil {
				t.Fatalf("decode card: %v", err)
			}
			if !strings.Contains(string(card.Body[0]), tt.wantTitle) {
				t.Errorf("title = %s, want %q", card.Body[0], tt.wantTitle)
			}
			if !strings.Contains(plainText(t, TopPage(r, tt.opts)), "\n"+tt.wantFirst) {
				t.Errorf("card has no row starting with %q", tt.wantFirst)
			}

			var got []SubmitData
			for _, element := range card.Body {
				var set struct {
					Type    string `json:"type"`
					Actions []struct {
						Data SubmitData `json:"data"`
					} `json:"actions"`
				}
				if json.Unmarshal(element, &set) == nil && set.Type == "ActionSet" {
					for _, a := range set.Actions {
						got = append(got, a.Data)
					}
				}
			}
			if !reflect.DeepEqual(got, tt.wantData) {
				t.Errorf("paging buttons send %+v, want %+v", got, tt.wantData)
			}
			if more := strings.Contains(plainText(t, TopPage(r, tt.opts)), "more measured"); more == tt.wantNoMore {
				t.Errorf("card has a truncation line: %v, want %v", more, !tt.wantNoMore)
			}
		})
	}
}

func TestTopOwnersLine(t *testing.T) {
	r := sampleResult()
	text := plainText(t, TopPage(r, TopOptions{N: 10, Owners: map[string][]string{
		libraryID:                              {"Adele Vance"},
		otherLibraryID:                         {},
		"e1e1e1e1-0000-4000-8000-000000000005": {"A", "B", "C", "D", "E"},
	}}))
	for _, want := range []string{"Owner: Adele Vance", "No owner", "Owners: A, B, C and 2 more"} {
		if !strings.Contains(text, want) {
			t.Errorf("card text has no %q:\n%s", want, text)
		}
	}
	if got := strings.Count(strings.ToLower(text), "owner"); got != 3 {
		t.Errorf("card has %d owners lines, want 3, one per Team in the owners map:\n%s", got, text)
	}
}

func TestSummaryFacts(t *testing.T) {
	r := sampleResult()
	tests := []struct {
		name    string
		details SummaryDetails
		want    []string
	}{
		{
			name:    "with quota and history",
			details: SummaryDetails{TenantQuota: 25 * tib, WeekChange: Change{Known: true, Bytes: 5 * gib}},
			want: []string{
				"Used: 1.9 TiB by 7 measured Teams",
				"Tenant quota: 7.4% of 25.0 TiB",
				"Change over 7 days: +5.0 GiB",
				"Recycle bins: 95.2 GiB reclaimable",
				"Quota state: 3 normal, 1 nearing the limit, 1 critical, 1 exceeded, 1 not reported",
				"Not measured: 1 with unknown quota, 1 with no drive yet, 1 forbidden, 1 failed",
				"1. The Library (3f2a9c1e, 1 of 2)",
				"2. The Library (7b0d4e22, 2 of 2)",
				"3. O'Brien's",
				"[Top 10]",
			},
		},
		{
			name:    "without quota or history",
			details: SummaryDetails{QuotaHint: "Set STORAGEBOT_TENANT_QUOTA to see the share."},
			want: []string{
				"Tenant quota: Set STORAGEBOT_TENANT_QUOTA to see the share.",
				"Change over 7 days: not known yet: no scan from then",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := plainText(t, Summary(r, tt.details))
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("card text has no %q:\n%s", want, text)
				}
			}
		})
	}
}

func TestProgressText(t *testing.T) {
	tests := []struct {
		name     string
		progress ScanProgress
		want     string
	}{
		{"counts and estimate", ScanProgress{Running: true, Done: 312, Discovered: 535, Remaining: 1600 * time.Millisecond}, "312 of 535 Teams, about 2 s left."},
		{"no estimate yet", ScanProgress{Running: true, Done: 0, Discovered: 100}, "0 of 100 Teams."},
		{"scan elsewhere", ScanProgress{Elapsed: 2400 * time.Millisecond}, "Waiting for the scan, 2 s so far."},
		{"listing not started", ScanProgress{Running: true, Elapsed: 100 * time.Millisecond}, "Waiting for the scan, 1 s so far."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := plainText(t, Progress("Scanning", tt.progress))
			if !strings.Contains(text, tt.want) {
				t.Errorf("card text has no %q:\n%s", tt.want, text)
			}
		})
	}
}

func TestTopNamesTwins(t *testing.T) {
	r := sampleResult()
	r.Teams = append(r.Teams, scanner.TeamUsage{
		Team:    scanner.Team{ID: "00000000-0000-4000-8000-00000000000c", DisplayName: "  the   LIBRARY "},
		Outcome: scanner.OutcomeNoDrive,
	})
	text := plainText(t, Top(r, 2))

	for _, want := range []string{
		"1. The Library (3f2a9c1e, 1 of 3)",
		"2. The Library (7b0d4e22, 2 of 3)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("card text has no %q:\n%s", want, text)
		}
	}
}

func TestUsageFacts(t *testing.T) {
	r := sampleResult()
	tests := []struct {
		name string
		team scanner.TeamUsage
		want []string
		not  []string
	}{
		{
			name: "measured twin",
			team: teamByID(t, r, libraryID),
			want: []string{
				"Used: 1.5 TiB (6.1% of quota)", "Total: 25.0 TiB", "Remaining: 23.5 TiB",
				"Recycle bin: 77.8 GiB", "Quota state: Critical", "Rank: 1 of 7 measured Teams",
				"Share: 81.7% of 1.9 TiB used by all measured Teams", "Short id: 3f2a9c1e",
				"Same name: 1 of 2 Teams named The Library", "Scanned: 2026-05-04 07:30 UTC",
			},
			not: []string{"Outcome:", "Reason:"},
		},
		{
			name: "failed",
			team: teamByID(t, r, "b7b7b7b7-0000-4000-8000-00000000000b"),
			want: []string{"Sports_Club", "Outcome: failed", "Reason: HTTP 429 after 6 attempts", "Short id: b7b7b7b7"},
			not:  []string{"Used:", "Rank:", "Same name:"},
		},
		{
			name: "unknown quota",
			team: teamByID(t, r, "b5b5b5b5-0000-4000-8000-000000000009"),
			want: []string{"unknown, not 0 B", "Outcome: unknown quota"},
			not:  []string{"Used:"},
		},
		{
			name: "markdown name",
			team: teamByID(t, r, "d00dfeed-0000-4000-8000-000000000004"),
			want: []string{"O'Brien's *Maths* [click](http://evil.example) <b>x</b>", "Quota state: Nearing the limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := plainText(t, Usage(tt.team, r))
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("card text has no %q:\n%s", want, text)
				}
			}
			for _, unwanted := range tt.not {
				if strings.Contains(text, unwanted) {
					t.Errorf("card text has %q:\n%s", unwanted, text)
				}
			}
		})
	}
}

func TestCardTextEscapesNames(t *testing.T) {
	raw, err := json.Marshal(Top(sampleResult(), 10))
	if err != nil {
		t.Fatalf("marshal card: %v", err)
	}
	for _, unwanted := range []string{"[click]", "*Maths*", "\\u003cb\\u003e", "{{DATE(", "\\n# heading"} {
		if bytes.Contains(raw, []byte(unwanted)) {
			t.Errorf("card JSON contains unescaped %q", unwanted)
		}
	}
}

func TestTopPageCustomTitle(t *testing.T) {
	text := plainText(t, TopPage(sampleResult(), TopOptions{N: 2, Title: "Your Teams by storage"}))

	first := strings.SplitN(text, "\n", 2)[0]
	if first != "Your Teams by storage" {
		t.Errorf("heading = %q, want the custom title", first)
	}
	if strings.Contains(text, "Top 2 Teams") {
		t.Errorf("card still has the ranking heading:\n%s", text)
	}
}
