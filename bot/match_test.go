package bot

import (
	"slices"
	"testing"

	"github.com/storagebot/storagebot/scanner"
)

func measuredTeam(id, name string, used int64) scanner.TeamUsage {
	return scanner.TeamUsage{
		Team:    scanner.Team{ID: id, DisplayName: name},
		Outcome: scanner.OutcomeMeasured,
		Quota:   scanner.Quota{Used: used, Total: 1 << 40},
	}
}

func TestMatchTeamsOrderAndKinds(t *testing.T) {
	teams := []scanner.TeamUsage{
		measuredTeam("6d436c7a-0000-4000-8000-000000000001", "The Library", 900),
		measuredTeam("61131b0d-0000-4000-8000-000000000002", "The Library", 5),
		measuredTeam("aaaa0000-0000-4000-8000-000000000003", "Drama 10W3", 10),
		measuredTeam("bbbb0000-0000-4000-8000-000000000004", "🎭 Drama Productions", 800),
		measuredTeam("cccc0000-0000-4000-8000-000000000005", "Year 9 Drama", 50),
		measuredTeam("dddd0000-0000-4000-8000-000000000006", "Café Crew", 1),
	}

	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"exact twins largest first", "the library", []string{"6d436c7a-0000-4000-8000-000000000001", "61131b0d-0000-4000-8000-000000000002"}},
		{"emoji prefix counts as prefix", "drama productions", []string{"bbbb0000-0000-4000-8000-000000000004"}},
		{"prefixes by size then substrings", "drama", []string{
			"bbbb0000-0000-4000-8000-000000000004",
			"aaaa0000-0000-4000-8000-000000000003",
			"cccc0000-0000-4000-8000-000000000005",
		}},
		{"short id", "61131b0d", []string{"61131b0d-0000-4000-8000-000000000002"}},
		{"accents folded", "cafe", []string{"dddd0000-0000-4000-8000-000000000006"}},
		{"no match", "orchestra", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range matchTeams(teams, tt.query) {
				got = append(got, m.Team.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("matchTeams(%q) = %v, want %v", tt.query, got, tt.want)
			}
		})
	}
}
