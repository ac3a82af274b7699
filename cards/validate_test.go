package cards

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

// validatorTimeout bounds one run of the Node validator, which normally
// takes a few seconds, so that a hung node process cannot stall the tests.
const validatorTimeout = 2 * time.Minute

// validatorScript returns the absolute path of validate-cards.js. When node
// or the npm modules are missing it skips the test, or fails it when
// STORAGEBOT_REQUIRE_NODE=1.
func validatorScript(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "node"))
	if err != nil {
		t.Fatalf("resolve validator directory: %v", err)
	}

	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node on PATH (install Node.js 20 or later)")
	}
	for _, file := range []string{
		"validate-cards.js",
		"node_modules/adaptivecards/dist/adaptivecards.js",
		"node_modules/ajv/package.json",
		"node_modules/ajv-formats/package.json",
	} {
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			missing = append(missing, filepath.Join(dir, file)+" (run npm ci in testdata/node)")
		}
	}
	if len(missing) > 0 {
		message := "skip Adaptive Card validation: missing " + strings.Join(missing, ", ")
		if os.Getenv("STORAGEBOT_REQUIRE_NODE") == "1" {
			t.Fatal(message)
		}
		t.Skip(message)
	}
	return filepath.Join(dir, "validate-cards.js")
}

// runValidator runs the validator on files with the schema copy in
// testdata and returns its output and exit code.
func runValidator(t *testing.T, script string, files []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), validatorTimeout)
	defer cancel()

	schema, err := filepath.Abs(filepath.Join("testdata", "adaptive-card-1.5.schema.json"))
	if err != nil {
		t.Fatalf("resolve schema path: %v", err)
	}
	args := append([]string{script, "--schema", schema}, files...)
	output, err := exec.CommandContext(ctx, "node", args...).CombinedOutput()

	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return string(output), 0
	case errors.As(err, &exitErr) && ctx.Err() == nil:
		return string(output), exitErr.ExitCode()
	default:
		t.Fatalf("run node %s: %v\n%s", script, err, output)
		return "", 0
	}
}

// writeCard writes card JSON to dir/name.json and returns the path.
func writeCard(t *testing.T, dir, name string, card []byte) string {
	t.Helper()
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, card, 0o644); err != nil {
		t.Fatalf("write card: %v", err)
	}
	return path
}

func TestCardsPassRendererAndSchema(t *testing.T) {
	script := validatorScript(t)
	dir := t.TempDir()

	cards := sampleCards(t)
	cards["top_huge"] = Top(hugeResult(500), 500)
	cards["choice_huge"] = Choice("<&>", hugeResult(40).Teams)

	var files []string
	for name, card := range cards {
		raw, err := json.Marshal(card)
		if err != nil {
			t.Fatalf("marshal card %s: %v", name, err)
		}
		files = append(files, writeCard(t, dir, name, raw))
	}

	output, code := runValidator(t, script, files)
	if code != 0 {
		t.Errorf("validator exit code = %d, want 0\n%s", code, output)
	}
	if got := strings.Count(output, "ok   "); got != len(files) {
		t.Errorf("validator passed %d cards, want %d\n%s", got, len(files), output)
	}
}

func TestValidatorRejectsBrokenCards(t *testing.T) {
	script := validatorScript(t)
	dir := t.TempDir()

	const root = `"type":"AdaptiveCard","version":"1.5","$schema":"http://adaptivecards.io/schemas/adaptive-card.json","msteams":{"width":"Full"}`
	tests := []struct {
		name string
		card string
		want string
	}{
		{"unknown element type", `{` + root + `,"body":[{"type":"Chart","text":"x"}]}`, "UnknownElementType"},
		{"missing required text", `{` + root + `,"body":[{"type":"TextBlock"}]}`, "required property 'text'"},
		{"invalid size", `{` + root + `,"body":[{"type":"TextBlock","text":"x","size":"Huge"}]}`, "InvalidPropertyValue"},
		{"duplicate id", `{` + root + `,"body":[{"type":"TextBlock","text":"a","id":"x"},{"type":"TextBlock","text":"b","id":"x"}]}`, "DuplicateId"},
		{"unknown property", `{` + root + `,"body":[{"type":"TextBlock","text":"x","colour":"Good"}]}`, "additional properties"},
		{"unknown action type", `{` + root + `,"body":[],"actions":[{"type":"Action.Launch","title":"x"}]}`, "UnknownActionType"},
		{"other msteams width", `{"type":"AdaptiveCard","version":"1.5","msteams":{"width":"Half"},"body":[]}`, "/msteams/width"},
		{"invalid JSON", `{"type":"AdaptiveCard",`, "read card"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeCard(t, dir, strings.ReplaceAll(tt.name, " ", "_"), []byte(tt.card))
			output, code := runValidator(t, script, []string{path})
			if code != 1 {
				t.Errorf("validator exit code = %d, want 1\n%s", code, output)
			}
			if !strings.Contains(output, tt.want) {
				t.Errorf("validator output has no %q:\n%s", tt.want, output)
			}
		})
	}
}
