package manifest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validatorTimeout bounds one run of the Node validator, so that a hung node
// process fails the test instead of blocking it.
const validatorTimeout = 2 * time.Minute

var (
	nodeDir         = filepath.Join("..", "testdata", "node")
	validatorScript = filepath.Join(nodeDir, "validate-manifest.js")
)

// skipWithoutNode skips the test when Node.js or the npm packages are
// missing, or fails it when STORAGEBOT_REQUIRE_NODE=1 is set.
func skipWithoutNode(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("STORAGEBOT_REQUIRE_NODE") == "1" {
		t.Fatalf("%s, and STORAGEBOT_REQUIRE_NODE=1 requires the Node.js validator", reason)
	}
	t.Skipf("%s: skipping the @microsoft/app-manifest validation (run npm ci --prefix testdata/node)", reason)
}

// findNode returns the node binary after checking that it can load
// @microsoft/app-manifest from testdata/node.
func findNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipWithoutNode(t, "node is not on PATH")
	}

	ctx, cancel := context.WithTimeout(t.Context(), validatorTimeout)
	defer cancel()
	probe := exec.CommandContext(ctx, node, "-e", "require('@microsoft/app-manifest')")
	probe.Dir = nodeDir
	if out, err := probe.CombinedOutput(); err != nil {
		skipWithoutNode(t, "node cannot load @microsoft/app-manifest from testdata/node: "+loadError(string(out)))
	}
	return node
}

// loadError picks Node's "Cannot find module" line out of a stack trace.
func loadError(output string) string {
	for line := range strings.Lines(output) {
		if strings.Contains(line, "Cannot find module") {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(output)
}

// validateWithNode runs validate-manifest.js on manifest and returns its
// exit status and output. It fails the test on exit status 2, which means
// that the validator could not load the manifest or its schema.
func validateWithNode(t *testing.T, node string, manifest map[string]any) (status int, output string) {
	t.Helper()
	data, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatalf("encode manifest: %v", err)
	}
	path := filepath.Join(t.TempDir(), manifestFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write manifest: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), validatorTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, validatorScript, path).CombinedOutput()
	output = string(out)

	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, output
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 2:
		t.Fatalf("validate-manifest.js could not validate: %s", output)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), output
	default:
		t.Fatalf("run validate-manifest.js: %v\n%s", err, output)
	}
	return 0, ""
}

func TestBuildPassesAppManifestSchema(t *testing.T) {
	node := findNode(t)

	tests := []struct {
		name string
		opts Options
	}{
		{"defaults", Options{AppID: testAppID, Commands: testCommands}},
		{"no commands", Options{AppID: testAppID}},
		{"every option at its limit", Options{
			AppID:            testAppID,
			Version:          "12.0.7",
			ShortName:        strings.Repeat("s", maxShortName),
			FullName:         strings.Repeat("f", maxFullName),
			ShortDescription: strings.Repeat("d", maxShortDescription),
			FullDescription:  strings.Repeat("d", maxFullDescription),
			DeveloperName:    strings.Repeat("n", maxDeveloperName),
			WebsiteURL:       "https://contoso.example.org/",
			PrivacyURL:       "https://contoso.example.org/privacy",
			TermsOfUseURL:    "https://contoso.example.org/terms",
			AccentColor:      "#0a0B0c",
			Commands: append(numberedCommands(maxCommands-1),
				Command{Title: strings.Repeat("t", maxCommandTitle), Description: strings.Repeat("d", maxCommandDesc)}),
			ValidDomains: numberedDomains(maxValidDomains),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := buildManifest(t, tt.opts)

			status, output := validateWithNode(t, node, m)
			if status != 0 {
				t.Errorf("@microsoft/app-manifest rejected the manifest (exit status %d):\n%s", status, output)
			}
		})
	}
}

// TestAppManifestSchemaRejects checks that the validator can fail, and that
// each limit Build enforces is the schema's: one past it fails validation.
func TestAppManifestSchemaRejects(t *testing.T) {
	node := findNode(t)

	tests := []struct {
		name   string
		modify func(m map[string]any)
		want   string
	}{
		{"missing developer", func(m map[string]any) { delete(m, "developer") }, "developer"},
		{"missing icons", func(m map[string]any) { delete(m, "icons") }, "icons"},
		{"missing bot id", func(m map[string]any) { delete(firstBot(m), "botId") }, "botId"},
		{"short name past limit", func(m map[string]any) {
			m["name"].(map[string]any)["short"] = strings.Repeat("s", maxShortName+1)
		}, "/name/short"},
		{"short description past limit", func(m map[string]any) {
			m["description"].(map[string]any)["short"] = strings.Repeat("d", maxShortDescription+1)
		}, "/description/short"},
		{"developer name past limit", func(m map[string]any) {
			m["developer"].(map[string]any)["name"] = strings.Repeat("n", maxDeveloperName+1)
		}, "/developer/name"},
		{"command title past limit", func(m map[string]any) {
			firstCommand(m)["title"] = strings.Repeat("t", maxCommandTitle+1)
		}, "/commands/0/title"},
		{"command description past limit", func(m map[string]any) {
			firstCommand(m)["description"] = strings.Repeat("d", maxCommandDesc+1)
		}, "/commands/0/description"},
		{"commands past limit", func(m map[string]any) {
			list := firstBot(m)["commandLists"].([]any)[0].(map[string]any)
			commands := make([]any, maxCommands+1)
			for i := range commands {
				commands[i] = map[string]any{"title": "command"}
			}
			list["commands"] = commands
		}, "/commandLists/0/commands"},
		{"app id not a GUID", func(m map[string]any) { m["id"] = "storagebot" }, "/id"},
		{"accent colour not hex", func(m map[string]any) { m["accentColor"] = "purple" }, "/accentColor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := buildManifest(t, Options{AppID: testAppID, Commands: testCommands})
			tt.modify(m)

			status, output := validateWithNode(t, node, m)
			if status != 1 {
				t.Fatalf("validator exit status = %d, want 1 for an invalid manifest:\n%s", status, output)
			}
			if !strings.Contains(output, tt.want) {
				t.Errorf("validator output does not mention %q:\n%s", tt.want, output)
			}
		})
	}
}

func firstBot(m map[string]any) map[string]any {
	return m["bots"].([]any)[0].(map[string]any)
}

func firstCommand(m map[string]any) map[string]any {
	list := firstBot(m)["commandLists"].([]any)[0].(map[string]any)
	return list["commands"].([]any)[0].(map[string]any)
}
