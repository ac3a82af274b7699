package cards

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rune limits for text that comes from the tenant or the user. Graph limits a
// group's displayName to 256 characters. The other limits keep one element
// small enough that every card stays under MaxCardBytes.
const (
	maxNameRunes    = 256
	maxQueryRunes   = 256
	maxReasonRunes  = 500
	maxTitleRunes   = 200
	maxMessageRunes = 4000
	maxCommandRunes = 300
)

// shortIDLength is how many leading characters of a group id the cards show
// to tell Teams apart.
const shortIDLength = 8

// barCells is the width of a usage bar in monospace character cells.
const barCells = 8

// markdownPunctuation is every character that Escape prefixes with a
// backslash. CommonMark lets any ASCII punctuation be escaped this way, and
// these are the ones that start emphasis, links, lists, headings, code,
// HTML, entities, strikethrough, tables, or Adaptive Card {{DATE()}} and
// {{TIME()}} functions.
const markdownPunctuation = "\\*_[]()#`+-.!<>~|&{}"

// Escape makes s safe to put into TextBlock text or a Fact title or value,
// which Teams renders as a Markdown subset. It puts a backslash before every
// ASCII punctuation character that Markdown or Adaptive Card text functions
// act on. It turns line breaks and other control characters into spaces, so
// that the text cannot start a new list item or paragraph. Unescape removes
// the backslashes again.
//
// NOTE: Teams iOS and Android clients were reported in 2021 to show the
// backslashes instead of honouring them, but the text still cannot format or
// link there. Bare URLs are left as they are: the
// adaptivecards renderer runs markdown-it without linkify, and Teams does not
// document whether it links them.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range singleLine(s) {
		if r < utf8.RuneSelf && strings.ContainsRune(markdownPunctuation, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// singleLine replaces control characters, line breaks among them, and the
// Unicode line and paragraph separators with spaces.
func singleLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// Unescape removes the backslash that Markdown puts before an ASCII
// punctuation character, so Unescape(Escape(s)) returns s for any s without
// control characters.
func Unescape(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && isASCIIPunctuation(s[i+1]) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isASCIIPunctuation reports whether c is one of the characters that
// CommonMark allows after a backslash escape.
func isASCIIPunctuation(c byte) bool {
	return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0
}

// clip shortens s to at most maxRunes runes and ends a shortened s with "…".
func clip(s string, maxRunes int) string {
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	runes := []rune(s)
	return string(runes[:maxRunes-1]) + "…"
}

// shortID returns the first characters of a group id, enough for a person to
// tell two Teams apart.
func shortID(id string) string {
	if len(id) <= shortIDLength {
		return id
	}
	return id[:shortIDLength]
}

// formatShare formats part as a percentage of total with one decimal. A share
// that is not zero but rounds to 0.0 is shown as "<0.1%" so that it does not
// read as empty. The result needs no Escape: in CommonMark "<" starts HTML
// or an autolink only when a letter follows it.
func formatShare(part, total int64) string {
	if total <= 0 || part <= 0 {
		return "0.0%"
	}
	percent := float64(part) / float64(total) * 100
	if percent < 0.05 {
		return "<0.1%"
	}
	return strconv.FormatFloat(percent, 'f', 1, 64) + "%"
}

// usageBar draws part as a share of total with block characters, barCells
// cells wide at eighth-cell resolution. A share that is not zero shows at
// least one eighth.
func usageBar(part, total int64) string {
	if total <= 0 || part <= 0 {
		return ""
	}
	eighths := int(math.Round(float64(part) / float64(total) * barCells * 8))
	eighths = max(1, min(eighths, barCells*8))

	const partialBlocks = "▏▎▍▌▋▊▉"
	var b strings.Builder
	b.WriteString(strings.Repeat("█", eighths/8))
	if rest := eighths % 8; rest > 0 {
		b.WriteRune([]rune(partialBlocks)[rest-1])
	}
	return b.String()
}
