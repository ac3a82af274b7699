package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(mapEnv{})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.Addr != "127.0.0.1:3978" {
		t.Errorf("Addr = %q, want 127.0.0.1:3978", c.Addr)
	}
	if c.GraphURL != "https://graph.microsoft.com/v1.0" {
		t.Errorf("GraphURL = %q", c.GraphURL)
	}
	if c.ScanConcurrency != 32 {
		t.Errorf("ScanConcurrency = %d, want 32", c.ScanConcurrency)
	}
	if c.ScanTTL != 15*time.Minute {
		t.Errorf("ScanTTL = %s, want 15m", c.ScanTTL)
	}
	if len(c.TenantIDs) != 0 {
		t.Errorf("TenantIDs = %v, want none", c.TenantIDs)
	}
}

func TestLoadConfigFallsBackToBotApp(t *testing.T) {
	c, err := loadConfig(mapEnv{
		"MicrosoftAppId":       "app",
		"MicrosoftAppPassword": "pw",
		"MicrosoftAppTenantId": "tenant",
	})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.ClientID != "app" || c.ClientSecret != "pw" || c.TenantID != "tenant" {
		t.Errorf("Graph credentials = %q/%q/%q, want the bot app's", c.ClientID, c.ClientSecret, c.TenantID)
	}
	if len(c.TenantIDs) != 1 || c.TenantIDs[0] != "tenant" {
		t.Errorf("TenantIDs = %v, want [tenant]", c.TenantIDs)
	}
}

func TestLoadConfigSeparateGraphApp(t *testing.T) {
	c, err := loadConfig(mapEnv{
		"MicrosoftAppId":        "app",
		"MicrosoftAppPassword":  "pw",
		"AZURE_CLIENT_ID":       "graph-app",
		"STORAGEBOT_TENANT_IDS": " a , b ,",
	})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c.ClientSecret != "" {
		t.Error("the bot's password was used for a different Graph app")
	}
	if strings.Join(c.TenantIDs, "|") != "a|b" {
		t.Errorf("TenantIDs = %v, want [a b]", c.TenantIDs)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	_, err := loadConfig(mapEnv{
		"STORAGEBOT_SCAN_CONCURRENCY": "0",
		"STORAGEBOT_SCAN_TTL":         "soon",
		"STORAGEBOT_LOG_FORMAT":       "xml",
	})
	if err == nil {
		t.Fatal("loadConfig accepted invalid settings")
	}
	for _, name := range []string{"STORAGEBOT_SCAN_CONCURRENCY", "STORAGEBOT_SCAN_TTL", "STORAGEBOT_LOG_FORMAT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1:3978": true,
		"localhost:3978": true,
		"[::1]:3978":     true,
		":3978":          false,
		"0.0.0.0:3978":   false,
		"10.0.0.5:3978":  false,
		"3978":           false,
	}
	for addr, want := range cases {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// The README's configuration table must list every setting with its default,
// so that an operator never meets an undocumented variable.
func TestReadmeListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	for _, s := range settings {
		row := "| `" + s.name + "` | "
		i := strings.Index(string(readme), row)
		if i < 0 {
			t.Errorf("README has no configuration row for %s", s.name)
			continue
		}
		if s.def == "" {
			continue
		}
		line := string(readme[i:])
		line = line[:strings.IndexByte(line, '\n')]
		if !strings.Contains(line, "`"+s.def+"`") {
			t.Errorf("README row for %s does not give its default %q: %s", s.name, s.def, line)
		}
	}
}
