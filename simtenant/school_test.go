package simtenant

import (
	"cmp"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// rankedTeams returns the School's Teams with a reported quota, largest used
// first.
func rankedTeams(groups []Group) []Group {
	var teams []Group
	for _, g := range groups {
		if g.IsTeam && g.Drive != nil && !g.Drive.Quota.IsZero() {
			teams = append(teams, g)
		}
	}
	slices.SortFunc(teams, func(a, b Group) int { return cmp.Compare(b.Drive.Quota.Used, a.Drive.Quota.Used) })
	return teams
}

func TestSchoolCounts(t *testing.T) {
	groups := School()

	var teams, nonTeams, noDrive, zero int
	for _, g := range groups {
		if !g.IsTeam {
			nonTeams++
			continue
		}
		teams++
		switch {
		case g.Drive == nil:
			noDrive++
		case g.Drive.Quota.IsZero():
			zero++
		}
	}

	if teams != SchoolTeamCount {
		t.Errorf("School has %d Teams, want %d", teams, SchoolTeamCount)
	}
	if nonTeams < 3 {
		t.Errorf("School has %d groups that are not Teams, want at least 3", nonTeams)
	}
	if noDrive < 5 || noDrive > 8 {
		t.Errorf("School has %d Teams without a drive, want 5 to 8", noDrive)
	}
	if zero != 2 {
		t.Errorf("School has %d Teams with an all-zero quota, want 2", zero)
	}
}

func TestSchoolDeterministic(t *testing.T) {
	if !reflect.DeepEqual(School(), School()) {
		t.Fatal("two calls of School() differ")
	}
}

func TestSchoolLibraries(t *testing.T) {
	ranked := rankedTeams(School())

	first := ranked[0]
	if first.DisplayName != "The Library" {
		t.Fatalf("largest Team is %q, want The Library", first.DisplayName)
	}
	if first.Drive.Quota.Used < tib*3/2 {
		t.Errorf("The Library uses %d bytes, want at least 1.5 TiB", first.Drive.Quota.Used)
	}
	if first.Drive.Quota.Total <= first.Drive.Quota.Used {
		t.Errorf("The Library's quota total %d is not above its used %d", first.Drive.Quota.Total, first.Drive.Quota.Used)
	}
	if second := ranked[1].Drive.Quota.Used; second*2 > first.Drive.Quota.Used {
		t.Errorf("second largest Team uses %d bytes, want well under half of The Library's %d", second, first.Drive.Quota.Used)
	}

	club := -1
	for i, g := range ranked[1:] {
		if g.DisplayName == "The Library" {
			club = i + 1
		}
	}
	if club < 0 {
		t.Fatal("no second Team named The Library with a quota")
	}
	if club < len(ranked)/4 || club > len(ranked)*3/4 {
		t.Errorf("second The Library ranks %d of %d, want mid-table", club+1, len(ranked))
	}
}

func TestSchoolNonTeamTrap(t *testing.T) {
	var library, finance int64
	for _, g := range School() {
		switch {
		case g.IsTeam && g.DisplayName == "The Library" && g.Drive != nil:
			library = max(library, g.Drive.Quota.Used)
		case !g.IsTeam && g.DisplayName == "Finance Office":
			finance = g.Drive.Quota.Used
		}
	}
	if finance <= library {
		t.Errorf("Finance Office uses %d bytes, want more than The Library's %d so that listing all groups shows", finance, library)
	}
}

func TestSchoolSpecialCharacters(t *testing.T) {
	groups := School()
	tests := []struct {
		name string
		has  func(string) bool
	}{
		{"straight apostrophe", func(s string) bool { return strings.Contains(s, "'") }},
		{"curly apostrophe", func(s string) bool { return strings.Contains(s, "’") }},
		{"accent", func(s string) bool { return strings.ContainsAny(s, "çéÉ") }},
		{"emoji", func(s string) bool { return strings.ContainsAny(s, "🎭🤖📚") }},
		{"markdown emphasis", func(s string) bool { return strings.Contains(s, "*") }},
		{"underscore", func(s string) bool { return strings.Contains(s, "_") }},
		{"markdown link", func(s string) bool { return strings.Contains(s, "](") }},
		{"html tag", func(s string) bool { return strings.Contains(s, "<b>") }},
		{"backtick", func(s string) bool { return strings.Contains(s, "`") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, g := range groups {
				if g.IsTeam && tt.has(g.DisplayName) {
					return
				}
			}
			t.Errorf("no Team name has a %s", tt.name)
		})
	}
}

func TestSchoolQuotaStates(t *testing.T) {
	states := map[string]int{}
	for _, g := range School() {
		if g.Drive == nil || g.Drive.Quota.IsZero() {
			continue
		}
		q := g.Drive.Quota
		states[q.State]++
		if want := newQuota(q.Used, q.Total, q.Deleted); q != want {
			t.Errorf("%q quota %+v is inconsistent, want %+v", g.DisplayName, q, want)
		}
	}
	for _, state := range []string{"normal", "nearing", "critical", "exceeded"} {
		if states[state] == 0 {
			t.Errorf("no drive is in quota state %q", state)
		}
	}
}

func TestSchoolIDs(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range School() {
		if !guidPattern.MatchString(g.ID) {
			t.Errorf("%q has id %q, want a lower-case version 4 GUID", g.DisplayName, g.ID)
		}
		if seen[g.ID] {
			t.Errorf("id %q appears twice", g.ID)
		}
		seen[g.ID] = true
		if g.Drive != nil && (len(g.Drive.ID) != 66 || !strings.HasPrefix(g.Drive.ID, "b!")) {
			t.Errorf("%q has drive id %q, want b! and 64 characters", g.DisplayName, g.Drive.ID)
		}
	}
}

func TestSchoolNamesUnique(t *testing.T) {
	seen := map[string]int{}
	for _, g := range School() {
		seen[g.DisplayName]++
	}
	for name, n := range seen {
		if n > 1 && name != "The Library" {
			t.Errorf("name %q appears %d times, want only The Library repeated", name, n)
		}
	}
	if seen["The Library"] != 2 {
		t.Errorf("The Library appears %d times, want 2", seen["The Library"])
	}
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name  string
		teams int
	}{
		{"small", 10},
		{"twenty thousand", 20_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := Generate(tt.teams, 7)

			if len(groups) != tt.teams {
				t.Fatalf("Generate(%d) returned %d groups", tt.teams, len(groups))
			}
			ids := map[string]bool{}
			for _, g := range groups {
				if !g.IsTeam {
					t.Fatalf("%q is not a Team", g.DisplayName)
				}
				if g.Drive != nil && g.Drive.Quota.Used > maxGeneratedUsed {
					t.Errorf("%q uses %d bytes, above the cap %d", g.DisplayName, g.Drive.Quota.Used, maxGeneratedUsed)
				}
				ids[g.ID] = true
			}
			if len(ids) != tt.teams {
				t.Errorf("Generate(%d) has %d distinct ids", tt.teams, len(ids))
			}
			if !reflect.DeepEqual(groups, Generate(tt.teams, 7)) {
				t.Error("Generate is not deterministic for the same seed")
			}
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		Generate(100_000, 1)
	}
}
