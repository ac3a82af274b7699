package bot

import (
	"html"
	"strings"
)

// inlineTags are HTML tags removed without a trace, because Teams wraps
// parts of a word in them ("<b>to</b>p"). Every other tag (p, div, br, …)
// becomes a space.
var inlineTags = map[string]bool{
	"a": true, "b": true, "code": true, "em": true, "font": true, "i": true,
	"s": true, "span": true, "strike": true, "strong": true, "u": true,
}

// commandText returns the command a user typed: the bot's own mentions
// removed, HTML tags dropped, entities such as &nbsp; decoded and
// whitespace collapsed. A mention is removed by its entity's exact text,
// wherever it sits, and only when it names botID, because Teams puts
// "<at>Bot name</at>" in the text and the name differs per install.
func commandText(text string, mentions []mention, botID string) string {
	for _, m := range mentions {
		if m.Type != "mention" || m.Text == "" || botID == "" || m.Mentioned.ID != botID {
			continue
		}
		text = strings.Replace(text, m.Text, " ", 1)
	}

	text = dropTags(text)
	text = html.UnescapeString(text)
	return strings.Join(strings.Fields(text), " ")
}

// dropTags removes HTML tags from s. A '<' that does not open a tag, as in
// "a < b", is kept.
func dropTags(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		end, name, ok := tagAt(s, i)
		if !ok {
			b.WriteByte(s[i])
			i++
			continue
		}
		if !inlineTags[name] {
			b.WriteByte(' ')
		}
		i = end
	}
	return b.String()
}

// tagAt reports whether a tag starts at s[i] and returns the index after
// its '>' and its lower-case name ("" for comments and declarations).
func tagAt(s string, i int) (int, string, bool) {
	if s[i] != '<' || i+1 >= len(s) {
		return 0, "", false
	}
	next := s[i+1]
	if !isASCIILetter(next) && next != '/' && next != '!' {
		return 0, "", false
	}
	closeAt := strings.IndexByte(s[i:], '>')
	if closeAt < 0 {
		return 0, "", false
	}

	inner := strings.TrimPrefix(s[i+1:i+closeAt], "/")
	nameEnd := 0
	for nameEnd < len(inner) && isASCIILetter(inner[nameEnd]) {
		nameEnd++
	}
	return i + closeAt + 1, strings.ToLower(inner[:nameEnd]), true
}

func isASCIILetter(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
