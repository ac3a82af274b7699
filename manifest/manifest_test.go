package manifest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const testAppID = "1f0e6a52-8c8d-4d0b-9a61-3f1b7c2e5d90"

// testCommands has the shape of the menu that storagebot's manifest command
// builds from the bot's command table: the command word as the title.
var testCommands = []Command{
	{Title: "top", Description: "List the N Teams that use the most SharePoint storage. Usage: top [N] [teams]"},
	{Title: "usage", Description: "Show the SharePoint storage of one Team. Usage: usage <team name>"},
	{Title: "help", Description: "List the commands you can use."},
}

// readPackage returns the files of an app package by name, in zip order.
func readPackage(t *testing.T, pkg []byte) (names []string, files map[string][]byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatalf("open app package as zip: %v", err)
	}
	files = make(map[string][]byte)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s in app package: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s in app package: %v", f.Name, err)
		}
		names = append(names, f.Name)
		files[f.Name] = data
	}
	return names, files
}

func buildManifest(t *testing.T, opts Options) map[string]any {
	t.Helper()
	pkg, err := Build(opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	_, files := readPackage(t, pkg)
	var m map[string]any
	if err := json.Unmarshal(files[manifestFile], &m); err != nil {
		t.Fatalf("decode %s: %v", manifestFile, err)
	}
	return m
}

// optionFields returns the Field of every *OptionError in err's tree.
func optionFields(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(err error) {
		if optErr, ok := err.(*OptionError); ok {
			fields = append(fields, optErr.Field)
			return
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		if inner := errors.Unwrap(err); inner != nil {
			walk(inner)
		}
	}
	walk(err)
	return fields
}

func TestBuildManifestGolden(t *testing.T) {
	pkg, err := Build(Options{AppID: testAppID, Commands: testCommands})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	_, files := readPackage(t, pkg)
	got := files[manifestFile]

	golden := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("manifest.json differs from %s (run go test -update after checking the change)\ngot:\n%s", golden, got)
	}
}

func TestBuildPackageFiles(t *testing.T) {
	pkg, err := Build(Options{AppID: testAppID})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}

	names, _ := readPackage(t, pkg)
	want := []string{"manifest.json", "color.png", "outline.png"}
	if !slices.Equal(names, want) {
		t.Errorf("zip entries = %q, want exactly %q at the root", names, want)
	}
}

func TestBuildDeterministic(t *testing.T) {
	first, err := Build(Options{AppID: testAppID})
	if err != nil {
		t.Fatalf("first Build: %v", err)
	}
	second, err := Build(Options{AppID: testAppID})
	if err != nil {
		t.Fatalf("second Build: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("two Builds with the same options returned different bytes (%d and %d bytes)", len(first), len(second))
	}
}

func TestBuildBot(t *testing.T) {
	m := buildManifest(t, Options{AppID: testAppID})

	if m["id"] != testAppID {
		t.Errorf("id = %v, want %s", m["id"], testAppID)
	}
	bots, _ := m["bots"].([]any)
	if len(bots) != 1 {
		t.Fatalf("bots has %d entries, want 1", len(bots))
	}
	b := bots[0].(map[string]any)
	if b["botId"] != testAppID {
		t.Errorf("bots[0].botId = %v, want the app id %s", b["botId"], testAppID)
	}
	if got, want := b["scopes"], []any{"personal", "team"}; !slices.Equal(got.([]any), want) {
		t.Errorf("bots[0].scopes = %v, want %v", got, want)
	}
	if b["supportsFiles"] != false {
		t.Errorf("bots[0].supportsFiles = %v, want false", b["supportsFiles"])
	}
	if b["isNotificationOnly"] != false {
		t.Errorf("bots[0].isNotificationOnly = %v, want false", b["isNotificationOnly"])
	}
}

func TestBuildCommandLists(t *testing.T) {
	commands := []Command{
		{Title: "top 5 teams", Description: "The five largest Teams"},
		{Title: "help"},
	}
	m := buildManifest(t, Options{AppID: testAppID, Commands: commands})

	lists := m["bots"].([]any)[0].(map[string]any)["commandLists"].([]any)
	if len(lists) != 2 {
		t.Fatalf("commandLists has %d entries, want one per scope (2)", len(lists))
	}
	for i, scope := range []string{"personal", "team"} {
		t.Run(scope, func(t *testing.T) {
			list := lists[i].(map[string]any)
			if got := list["scopes"].([]any); len(got) != 1 || got[0] != scope {
				t.Errorf("commandLists[%d].scopes = %v, want [%s]", i, got, scope)
			}
			got := list["commands"].([]any)
			if len(got) != len(commands) {
				t.Fatalf("commandLists[%d] has %d commands, want %d", i, len(got), len(commands))
			}
			first := got[0].(map[string]any)
			if first["title"] != "top 5 teams" || first["description"] != "The five largest Teams" {
				t.Errorf("first command = %v, want the first Options command", first)
			}
			if _, ok := got[1].(map[string]any)["description"]; ok {
				t.Errorf("command without a description has a description property: %v", got[1])
			}
		})
	}
}

func TestBuildWithoutCommandsHasNoMenu(t *testing.T) {
	m := buildManifest(t, Options{AppID: testAppID})

	b := m["bots"].([]any)[0].(map[string]any)
	if lists, ok := b["commandLists"]; ok {
		t.Errorf("bots[0].commandLists = %v, want no property when Options has no commands", lists)
	}
}

func TestBuildOptionOverrides(t *testing.T) {
	opts := Options{
		AppID:            testAppID,
		Version:          "2.10.3",
		ShortName:        "Storage",
		FullName:         "Storage by Team",
		ShortDescription: "Storage per Team",
		FullDescription:  "Ranks Teams by storage.",
		DeveloperName:    "Contoso IT",
		WebsiteURL:       "https://contoso.example.org/",
		PrivacyURL:       "https://contoso.example.org/privacy",
		TermsOfUseURL:    "https://contoso.example.org/terms",
		AccentColor:      "#112233",
		ValidDomains:     []string{"contoso.example.org", "*.contoso.example.org"},
	}
	m := buildManifest(t, opts)

	tests := []struct {
		path []string
		want any
	}{
		{[]string{"version"}, "2.10.3"},
		{[]string{"name", "short"}, "Storage"},
		{[]string{"name", "full"}, "Storage by Team"},
		{[]string{"description", "short"}, "Storage per Team"},
		{[]string{"description", "full"}, "Ranks Teams by storage."},
		{[]string{"developer", "name"}, "Contoso IT"},
		{[]string{"developer", "websiteUrl"}, "https://contoso.example.org/"},
		{[]string{"developer", "privacyUrl"}, "https://contoso.example.org/privacy"},
		{[]string{"developer", "termsOfUseUrl"}, "https://contoso.example.org/terms"},
		{[]string{"accentColor"}, "#112233"},
		{[]string{"manifestVersion"}, ManifestVersion},
		{[]string{"$schema"}, SchemaURL},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, "."), func(t *testing.T) {
			var v any = m
			for _, key := range tt.path {
				v = v.(map[string]any)[key]
			}
			if v != tt.want {
				t.Errorf("%s = %v, want %v", strings.Join(tt.path, "."), v, tt.want)
			}
		})
	}

	t.Run("validDomains", func(t *testing.T) {
		got := m["validDomains"].([]any)
		if len(got) != 2 || got[0] != "contoso.example.org" || got[1] != "*.contoso.example.org" {
			t.Errorf("validDomains = %v, want %v", got, opts.ValidDomains)
		}
	})
}

func TestBuildDefaultValidDomainsEmpty(t *testing.T) {
	m := buildManifest(t, Options{AppID: testAppID})

	got, ok := m["validDomains"].([]any)
	if !ok || len(got) != 0 {
		t.Errorf("validDomains = %#v, want an empty array", m["validDomains"])
	}
}

func TestBuildAcceptsLimits(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Options)
	}{
		{"short name of 30 characters", func(o *Options) { o.ShortName = strings.Repeat("s", 30) }},
		{"short name of 30 multi-byte runes", func(o *Options) { o.ShortName = strings.Repeat("é", 30) }},
		{"full name of 100 characters", func(o *Options) { o.FullName = strings.Repeat("f", 100) }},
		{"short description of 80 characters", func(o *Options) { o.ShortDescription = strings.Repeat("d", 80) }},
		{"full description of 4000 characters", func(o *Options) { o.FullDescription = strings.Repeat("d", 4000) }},
		{"developer name of 32 characters", func(o *Options) { o.DeveloperName = strings.Repeat("n", 32) }},
		{"command title of 128 characters", func(o *Options) { o.Commands = []Command{{Title: strings.Repeat("t", 128)}} }},
		{"command description of 4000 characters", func(o *Options) {
			o.Commands = []Command{{Title: "help", Description: strings.Repeat("d", 4000)}}
		}},
		{"12 commands", func(o *Options) { o.Commands = numberedCommands(12) }},
		{"upper-case app id", func(o *Options) { o.AppID = strings.ToUpper(testAppID) }},
		{"version 0.0.0", func(o *Options) { o.Version = "0.0.0" }},
		{"domain with port", func(o *Options) { o.ValidDomains = []string{"storagebot.example.com:8443"} }},
		{"100 domains", func(o *Options) { o.ValidDomains = numberedDomains(100) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{AppID: testAppID}
			tt.modify(&opts)
			if _, err := Build(opts); err != nil {
				t.Errorf("Build: %v, want no error", err)
			}
		})
	}
}

func TestBuildRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Options)
		fields []string
	}{
		{"missing app id", func(o *Options) { o.AppID = "" }, []string{"AppID"}},
		{"app id not a GUID", func(o *Options) { o.AppID = "storagebot" }, []string{"AppID"}},
		{"app id in braces", func(o *Options) { o.AppID = "{" + testAppID + "}" }, []string{"AppID"}},
		{"version with two parts", func(o *Options) { o.Version = "1.0" }, []string{"Version"}},
		{"version with leading zero", func(o *Options) { o.Version = "1.01.0" }, []string{"Version"}},
		{"version with pre-release", func(o *Options) { o.Version = "1.0.0-beta" }, []string{"Version"}},
		{"short name of 31 characters", func(o *Options) { o.ShortName = strings.Repeat("s", 31) }, []string{"ShortName"}},
		{"blank short name", func(o *Options) { o.ShortName = "   " }, []string{"ShortName"}},
		{"full name of 101 characters", func(o *Options) { o.FullName = strings.Repeat("f", 101) }, []string{"FullName"}},
		{"short description of 81 characters", func(o *Options) { o.ShortDescription = strings.Repeat("d", 81) }, []string{"ShortDescription"}},
		{"full description of 4001 characters", func(o *Options) { o.FullDescription = strings.Repeat("d", 4001) }, []string{"FullDescription"}},
		{"developer name of 33 characters", func(o *Options) { o.DeveloperName = strings.Repeat("n", 33) }, []string{"DeveloperName"}},
		{"http website", func(o *Options) { o.WebsiteURL = "http://storagebot.example.com/" }, []string{"WebsiteURL"}},
		{"relative privacy url", func(o *Options) { o.PrivacyURL = "/privacy" }, []string{"PrivacyURL"}},
		{"terms url without host", func(o *Options) { o.TermsOfUseURL = "https:///terms" }, []string{"TermsOfUseURL"}},
		{"accent colour without #", func(o *Options) { o.AccentColor = "5B5FC7" }, []string{"AccentColor"}},
		{"accent colour with three digits", func(o *Options) { o.AccentColor = "#FFF" }, []string{"AccentColor"}},
		{"command title of 129 characters", func(o *Options) { o.Commands = []Command{{Title: strings.Repeat("t", 129)}} }, []string{"Commands[0].Title"}},
		{"blank command title", func(o *Options) { o.Commands = []Command{{Title: "help"}, {Title: " ", Description: "x"}} }, []string{"Commands[1].Title"}},
		{"command description of 4001 characters", func(o *Options) {
			o.Commands = []Command{{Title: "help", Description: strings.Repeat("d", 4001)}}
		}, []string{"Commands[0].Description"}},
		{"13 commands", func(o *Options) { o.Commands = numberedCommands(13) }, []string{"Commands"}},
		{"duplicate command title", func(o *Options) { o.Commands = []Command{{Title: "help"}, {Title: "Help"}} }, []string{"Commands[1].Title"}},
		{"domain with scheme", func(o *Options) { o.ValidDomains = []string{"https://storagebot.example.com"} }, []string{"ValidDomains[0]"}},
		{"domain with path", func(o *Options) { o.ValidDomains = []string{"ok.example.com", "storagebot.example.com/app"} }, []string{"ValidDomains[1]"}},
		{"blank domain", func(o *Options) { o.ValidDomains = []string{""} }, []string{"ValidDomains[0]"}},
		{"101 domains", func(o *Options) { o.ValidDomains = numberedDomains(101) }, []string{"ValidDomains"}},
		{"several invalid options", func(o *Options) {
			o.AppID = "x"
			o.Version = "one"
			o.AccentColor = "purple"
		}, []string{"AppID", "Version", "AccentColor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{AppID: testAppID}
			tt.modify(&opts)

			pkg, err := Build(opts)
			if err == nil {
				t.Fatalf("Build returned a %d-byte package, want an error on %v", len(pkg), tt.fields)
			}
			var optErr *OptionError
			if !errors.As(err, &optErr) {
				t.Fatalf("Build error %q is not an *OptionError", err)
			}
			if got := optionFields(err); !slices.Equal(got, tt.fields) {
				t.Errorf("rejected fields = %q, want %q (error: %v)", got, tt.fields, err)
			}
		})
	}
}

func TestOptionErrorShortensLongValue(t *testing.T) {
	_, err := Build(Options{AppID: testAppID, FullDescription: strings.Repeat("d", 5000)})

	if err == nil {
		t.Fatal("Build accepted a 5000-character full description")
	}
	if len(err.Error()) > 300 {
		t.Errorf("error message is %d bytes long, want the value shortened: %.120s...", len(err.Error()), err)
	}
	if !strings.Contains(err.Error(), "5000 characters") {
		t.Errorf("error %q does not state the length of the value", err)
	}
}

func numberedCommands(n int) []Command {
	commands := make([]Command, n)
	for i := range commands {
		commands[i] = Command{Title: "command " + string(rune('a'+i))}
	}
	return commands
}

func numberedDomains(n int) []string {
	domains := make([]string, n)
	for i := range domains {
		domains[i] = strings.Repeat("d", i+1) + ".example.com"
	}
	return domains
}
