package bot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDecodeActivity feeds arbitrary bodies to the decoder. A body is
// either rejected with an error or yields an activity with a type, and a
// value that is an object or nothing.
func FuzzDecodeActivity(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		`{"type":"message","value":"{\"cmd\":\"usage\",\"teamId\":\"g\"}"}`,
		`{"type":"message","value":"\"nested\""}`,
		`{"type":"message","entities":[1,"x",{"type":"mention","mentioned":null}]}`,
		`{"type":"invoke","name":"adaptiveCard/action","value":{"action":{"verb":"top","data":[]}}}`,
		`{"type":"","text":"top"}`,
		`{"type":1}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decodeActivity(body)
		if err != nil {
			return
		}
		if in.activity.Type == "" {
			t.Errorf("decoded an activity without type from %q", body)
		}
		if in.value == nil && in.activity.Value != nil {
			t.Errorf("activity value %v set without a decoded value", in.activity.Value)
		}
		// Neither a card action nor a submit may panic on odd shapes.
		parseSubmit(in.value)
		parseSubmit(cardActionData(in.value))
	})
}

// FuzzParseCommand feeds arbitrary text through mention stripping, HTML
// removal and command parsing. The verb is lower case without spaces, and
// no argument is empty or holds whitespace.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"top 10 teams",
		"<at>Storage Bot</at> usage The Library",
		"<p>my&nbsp;teams</p>",
		"usage R&amp;D &lt;EU&gt;",
		"to<b>p</b> <i>3</i>",
		"<at>Storage Bot</at>",
		"< <a <!-- -->",
		"TOP\u00a05\u2003TEAMS",
		"\xff\xfe usage",
		"",
	} {
		f.Add(seed, "<at>Storage Bot</at>")
	}

	f.Fuzz(func(t *testing.T, text, mentionText string) {
		m := mention{Type: "mention", Text: mentionText}
		m.Mentioned.ID = "28:bot"
		req := parseText(commandText(text, []mention{m}, "28:bot"))

		if req.verb != strings.ToLower(req.verb) && utf8.ValidString(req.verb) {
			t.Errorf("verb %q is not lower case", req.verb)
		}
		if strings.IndexFunc(req.verb, unicode.IsSpace) >= 0 {
			t.Errorf("verb %q holds whitespace", req.verb)
		}
		for _, arg := range req.args {
			if arg == "" || strings.IndexFunc(arg, unicode.IsSpace) >= 0 {
				t.Errorf("argument %q is empty or holds whitespace", arg)
			}
		}
		if req.verb == "" && len(req.args) > 0 {
			t.Errorf("arguments %q without a verb", req.args)
		}
	})
}
