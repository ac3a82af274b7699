package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"image"
	_ "image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/bot"
	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/digest"
)

const testManifestAppID = "1f0e6a52-8c8d-4d0b-9a61-3f1b7c2e5d90"

// readZip returns the files of a zip by name, and the names in zip order.
func readZip(t *testing.T, path string) ([]string, map[string][]byte) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("open %s as zip: %v", path, err)
	}
	defer zr.Close()
	var names []string
	files := make(map[string][]byte)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s in the zip: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s in the zip: %v", f.Name, err)
		}
		names = append(names, f.Name)
		files[f.Name] = data
	}
	return names, files
}

// The manifest command writes a package with the manifest and both icons at
// the zip root, in their required sizes, and a command menu that lists
// every command of the bot's table by its command word.
func TestManifestCommandWritesPackage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "storagebot.zip")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"manifest", "--app-id", testManifestAppID, "--out", out, "--version", "1.2.3"}, mapEnv{}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("manifest exited %d\nstderr:\n%s", code, stderr.String())
	}

	names, files := readZip(t, out)
	if want := []string{"manifest.json", "color.png", "outline.png"}; !slices.Equal(names, want) {
		t.Errorf("zip entries = %q, want exactly %q at the root", names, want)
	}
	for name, size := range map[string]int{"color.png": 192, "outline.png": 32} {
		cfg, format, err := image.DecodeConfig(bytes.NewReader(files[name]))
		if err != nil {
			t.Errorf("decode %s: %v", name, err)
			continue
		}
		if format != "png" || cfg.Width != size || cfg.Height != size {
			t.Errorf("%s is a %dx%d %s, want a %dx%d png", name, cfg.Width, cfg.Height, format, size, size)
		}
	}

	var m struct {
		ID      string `json:"id"`
		Version string `json:"version"`
		Bots    []struct {
			BotID        string   `json:"botId"`
			Scopes       []string `json:"scopes"`
			CommandLists []struct {
				Commands []struct {
					Title       string `json:"title"`
					Description string `json:"description"`
				} `json:"commands"`
			} `json:"commandLists"`
		} `json:"bots"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("decode manifest.json: %v", err)
	}
	if m.ID != testManifestAppID || len(m.Bots) != 1 || m.Bots[0].BotID != testManifestAppID {
		t.Fatalf("manifest id %q with bots %+v, want id and botId %s", m.ID, m.Bots, testManifestAppID)
	}
	if m.Version != "1.2.3" {
		t.Errorf("version = %q, want the --version 1.2.3", m.Version)
	}
	if !slices.Equal(m.Bots[0].Scopes, []string{"personal", "team"}) {
		t.Errorf("bot scopes = %v, want [personal team]", m.Bots[0].Scopes)
	}

	table := append(bot.Commands(), cards.Command{Usage: digest.CommandUsage, Description: digest.CommandDescription})
	for i, list := range m.Bots[0].CommandLists {
		if len(list.Commands) != len(table) {
			t.Fatalf("command list %d has %d commands, want one per bot command and digest (%d)", i, len(list.Commands), len(table))
		}
		for j, c := range list.Commands {
			wantTitle := strings.Fields(table[j].Usage)[0]
			if c.Title != wantTitle {
				t.Errorf("command list %d, command %d: title %q, want the command word %q", i, j, c.Title, wantTitle)
			}
			if !strings.HasPrefix(c.Description, table[j].Description) {
				t.Errorf("command %q: description %q does not start with the bot's %q", c.Title, c.Description, table[j].Description)
			}
		}
	}

	validateManifestWithNode(t, files["manifest.json"])
}

func TestManifestCommandRejects(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantText string
	}{
		{"missing app id", nil, "missing --app-id"},
		{"app id not a GUID", []string{"--app-id", "storagebot"}, "GUID"},
		{"version not semver", []string{"--app-id", testManifestAppID, "--version", "1.2"}, "Version"},
		{"website not https", []string{"--app-id", testManifestAppID, "--website-url", "http://example.com/"}, "WebsiteURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "storagebot.zip")
			var stdout, stderr bytes.Buffer

			code := run(t.Context(), append([]string{"manifest", "--out", out}, tt.args...), mapEnv{}, &stdout, &stderr)

			if code != 2 {
				t.Errorf("manifest exited %d, want 2 (usage)", code)
			}
			if !strings.Contains(stderr.String(), tt.wantText) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantText, stderr.String())
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("manifest wrote a package despite the error")
			}
		})
	}
}

func TestManifestCommandReadsAppIDFromEnv(t *testing.T) {
	out := filepath.Join(t.TempDir(), "storagebot.zip")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"manifest", "--out", out}, mapEnv{"MicrosoftAppId": testManifestAppID}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("manifest exited %d\nstderr:\n%s", code, stderr.String())
	}
	_, files := readZip(t, out)
	if !bytes.Contains(files["manifest.json"], []byte(`"id": "`+testManifestAppID+`"`)) {
		t.Errorf("manifest.json does not carry MicrosoftAppId as its id:\n%s", files["manifest.json"])
	}
}

// validateManifestWithNode validates manifest.json with the schema that npm
// @microsoft/app-manifest bundles, through the manifest package's script.
// Without Node.js it skips, unless STORAGEBOT_REQUIRE_NODE=1.
func validateManifestWithNode(t *testing.T, manifestJSON []byte) {
	t.Helper()
	nodeDir := filepath.Join("..", "..", "testdata", "node")
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("STORAGEBOT_REQUIRE_NODE") == "1" {
			t.Fatal("node is not on PATH, and STORAGEBOT_REQUIRE_NODE=1 requires it")
		}
		t.Skip("node is not on PATH: skipping the @microsoft/app-manifest validation")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@microsoft", "app-manifest")); err != nil {
		if os.Getenv("STORAGEBOT_REQUIRE_NODE") == "1" {
			t.Fatalf("@microsoft/app-manifest is not installed in %s: run npm ci --prefix testdata/node", nodeDir)
		}
		t.Skip("@microsoft/app-manifest is not installed: run npm ci --prefix testdata/node")
	}

	path := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(path, manifestJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(nodeDir, "validate-manifest.js"), path).CombinedOutput()
	if err != nil {
		t.Errorf("@microsoft/app-manifest rejected the package's manifest.json (%v):\n%s", err, out)
	}
}
