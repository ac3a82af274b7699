package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/botauth/botauthtest"
	"github.com/storagebot/storagebot/simtenant"
)

// checkFixture is a simulated tenant, a local Bot Framework OpenID issuer
// and the environment of a single-tenant bot that uses both.
type checkFixture struct {
	sim    *simtenant.Tenant
	issuer *botauthtest.Server
	env    mapEnv
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	sim, err := simtenant.Start(simtenant.Options{})
	if err != nil {
		t.Fatalf("start simulated tenant: %v", err)
	}
	t.Cleanup(sim.Close)
	key, err := botauthtest.NewKey("key-1", "msteams")
	if err != nil {
		t.Fatal(err)
	}
	issuer := botauthtest.NewServer(key)
	t.Cleanup(issuer.Close)

	return &checkFixture{sim: sim, issuer: issuer, env: mapEnv{
		"MicrosoftAppId":       simtenant.DefaultClientID,
		"MicrosoftAppPassword": simtenant.DefaultClientSecret,
		"MicrosoftAppTenantId": simtenant.PlaygroundTenantID,
		"MicrosoftAppType":     "SingleTenant",
		"BotOpenIdMetadata":    issuer.MetadataURL,
		"AZURE_AUTHORITY_HOST": sim.AuthorityHost(),
		"GRAPH_BASE_URL":       sim.GraphURL(),
		"STORAGEBOT_DB_PATH":   filepath.Join(t.TempDir(), "storagebot.db"),
	}}
}

// check runs serve --check's checks on env with the sim's HTTP client.
func (f *checkFixture) check(t *testing.T, env mapEnv) (stdout, stderr string, err error) {
	t.Helper()
	c, loadErr := loadConfig(env)
	var out, errOut bytes.Buffer
	err = runCheck(t.Context(), c, loadErr, f.sim.HTTPClient(), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCheckPasses(t *testing.T) {
	f := newCheckFixture(t)

	stdout, stderr, err := f.check(t, f.env)

	if err != nil {
		t.Fatalf("check failed: %v\nstderr:\n%s", err, stderr)
	}
	if stdout != "configuration OK\n" {
		t.Errorf("stdout = %q, want configuration OK", stdout)
	}
	if _, err := os.Stat(f.env["STORAGEBOT_DB_PATH"]); err != nil {
		t.Errorf("the check did not create and migrate the SQLite store: %v", err)
	}
}

// Each broken setting or unreachable service gives its own line, which
// names the setting to fix, and no line shows the secret.
func TestCheckReportsEachProblem(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const wrongSecret = "wrong-secret-value"

	tests := []struct {
		name      string
		edit      func(f *checkFixture, e mapEnv)
		wantLines []string
	}{
		{
			name: "invalid values",
			edit: func(_ *checkFixture, e mapEnv) {
				e["STORAGEBOT_SCAN_TTL"] = "soon"
				e["STORAGEBOT_LOG_FORMAT"] = "xml"
			},
			wantLines: []string{"STORAGEBOT_SCAN_TTL=", "STORAGEBOT_LOG_FORMAT="},
		},
		{
			name:      "store path under a file",
			edit:      func(_ *checkFixture, e mapEnv) { e["STORAGEBOT_DB_PATH"] = filepath.Join(notADir, "storagebot.db") },
			wantLines: []string{"STORAGEBOT_DB_PATH"},
		},
		{
			name:      "wrong secret",
			edit:      func(_ *checkFixture, e mapEnv) { e["MicrosoftAppPassword"] = wrongSecret },
			wantLines: []string{"get a Graph token", "get a Bot Connector token"},
		},
		{
			name:      "metadata unavailable",
			edit:      func(f *checkFixture, _ mapEnv) { f.issuer.FailWith(http.StatusNotFound) },
			wantLines: []string{"BotOpenIdMetadata: fetch " + "http://"},
		},
		{
			name: "no tenant and no app id on every interface",
			edit: func(_ *checkFixture, e mapEnv) {
				delete(e, "MicrosoftAppId")
				delete(e, "MicrosoftAppTenantId")
				delete(e, "MicrosoftAppType")
				e["STORAGEBOT_ADDR"] = ":3978"
			},
			wantLines: []string{"missing MicrosoftAppId", "missing tenant", "missing Graph credentials"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCheckFixture(t)
			tt.edit(f, f.env)

			stdout, stderr, err := f.check(t, f.env)

			if !errors.Is(err, errCheckFailed) {
				t.Fatalf("check returned %v, want errCheckFailed", err)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != len(tt.wantLines) {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), len(tt.wantLines), stderr)
			}
			for _, want := range tt.wantLines {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr has no line about %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, wrongSecret) || strings.Contains(stderr, simtenant.DefaultClientSecret) {
				t.Errorf("stderr shows a client secret:\n%s", stderr)
			}
		})
	}
}

func TestServeCheckFlagExitStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := mapEnv{"STORAGEBOT_SCAN_TTL": "soon", "STORAGEBOT_DB_PATH": filepath.Join(t.TempDir(), "storagebot.db")}

	code := run(t.Context(), []string{"serve", "--check"}, env, &stdout, &stderr)

	if code != 1 {
		t.Errorf("serve --check exited %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "STORAGEBOT_SCAN_TTL=\"soon\" is invalid") {
		t.Errorf("stderr does not name the invalid setting:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "configuration check failed") {
		t.Errorf("stderr does not end with the summary line:\n%s", stderr.String())
	}
}

func TestServeReportsEveryMissingSetting(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := mapEnv{"MicrosoftAppId": "11111111-1111-1111-1111-111111111111"}
	code := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, env, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("serve exited %d, want 1", code)
	}
	for _, want := range []string{"missing tenant", "missing Graph credentials", "missing MicrosoftAppPassword"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not report %q:\n%s", want, stderr.String())
		}
	}
}
