package bot

import (
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
// case, accents, apostrophe and dash variants, extra whitespace and leading
// emoji or symbols. A query of eight or more hex digits also matches the
// start of a group id, as the cards show it. Exact matches win alone;
// otherwise prefix matches come before substring matches. Each group is
// ordered as the scanner orders Teams, largest first, so two Teams that
// share a name appear in the order their cards number them.
func matchTeams(teams []scanner.TeamUsage, query string) []scanner.TeamUsage {
	q := strings.Trim(foldName(query), `"' `)
	if q == "" {
		return nil
	}
	idQuery := isShortID(q)

	var exact, prefix, substring []scanner.TeamUsage
	for _, t := range teams {
		name := foldName(t.Team.DisplayName)
		bare := trimLeadingSymbols(name)
		switch {
		case name == q || bare == q || idQuery && strings.HasPrefix(strings.ToLower(t.Team.ID), q):
			exact = append(exact, t)
		case strings.HasPrefix(name, q) || strings.HasPrefix(bare, q):
			prefix = append(prefix, t)
		case strings.Contains(name, q):
			substring = append(substring, t)
		}
	}

	if len(exact) > 0 {
		scanner.SortTeams(exact)
		return exact
	}
	scanner.SortTeams(prefix)
	scanner.SortTeams(substring)
	return append(prefix, substring...)
}

// isShortID reports whether q looks like the start of a group id: at least
// eight hex digits, possibly with dashes.
func isShortID(q string) bool {
	digits := 0
	for _, r := range q {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'f':
			digits++
		case r == '-':
		default:
			return false
		}
	}
	return digits >= 8
}

// trimLeadingSymbols drops emoji, punctuation and spaces before the first
// letter or digit, so "🎭 Drama Productions" starts with "drama".
func trimLeadingSymbols(name string) string {
	return strings.TrimLeftFunc(name, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
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
