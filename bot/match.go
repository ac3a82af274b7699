package bot

import (
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/storagebot/storagebot/scanner"
)

// punctuationFold maps the typographic variants that Teams clients and
// phone keyboards insert to the ASCII character a user would type.
var punctuationFold = strings.NewReplacer(
	"\u2018", "'", "\u2019", "'", "\u201b", "'", "\u02bc", "'", "\u2032", "'", "\u00b4", "'", "`", "'",
	"\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u2033", `"`,
	"\u2010", "-", "\u2011", "-", "\u2012", "-", "\u2013", "-", "\u2014", "-", "\u2212", "-",
)

// matchTeams returns the Teams whose display name matches query, ignoring
// case, accents, apostrophe and dash variants and extra whitespace. Exact
// matches win over prefix matches, which win over substring matches. The
// result is sorted by display name, then id.
func matchTeams(teams []scanner.TeamUsage, query string) []scanner.TeamUsage {
	q := strings.Trim(foldName(query), `"' `)
	if q == "" {
		return nil
	}

	var exact, prefix, substring []scanner.TeamUsage
	for _, t := range teams {
		name := foldName(t.Team.DisplayName)
		switch {
		case name == q:
			exact = append(exact, t)
		case strings.HasPrefix(name, q):
			prefix = append(prefix, t)
		case strings.Contains(name, q):
			substring = append(substring, t)
		}
	}

	for _, matches := range [][]scanner.TeamUsage{exact, prefix, substring} {
		if len(matches) > 0 {
			sortByName(matches)
			return matches
		}
	}
	return nil
}

// foldName returns s in the form names are compared in. It applies
// compatibility decomposition (NFKD) and drops combining marks, so "Café"
// matches "Cafe" and full-width letters match ASCII. It then maps
// typographic punctuation to ASCII, lowers case and collapses spaces.
func foldName(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(r)
	}
	folded := strings.ToLower(punctuationFold.Replace(b.String()))
	return strings.Join(strings.Fields(folded), " ")
}

func sortByName(teams []scanner.TeamUsage) {
	sort.SliceStable(teams, func(i, j int) bool {
		a, b := teams[i].Team, teams[j].Team
		if a.DisplayName != b.DisplayName {
			return a.DisplayName < b.DisplayName
		}
		return a.ID < b.ID
	})
}
