package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// recordingEnv is an empty environment that records every name looked up.
type recordingEnv struct {
	names []string
}

func (e *recordingEnv) Lookup(name string) (string, bool) {
	e.names = append(e.names, name)
	return "", false
}

// platformVariables are read to place the default SQLite file, as the XDG
// Base Directory Specification defines, and are documented in the
// STORAGEBOT_DB_PATH row rather than as settings of their own.
var platformVariables = []string{"HOME", "XDG_STATE_HOME"}

// Every variable that loadConfig reads is in the settings table.
func TestSettingsListEveryVariableRead(t *testing.T) {
	env := &recordingEnv{}
	loadConfig(env)

	if len(env.names) == 0 {
		t.Fatal("loadConfig looked up no variable")
	}
	for _, name := range env.names {
		if slices.Contains(platformVariables, name) {
			continue
		}
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.name == name }) {
			t.Errorf("loadConfig reads %s, which the settings table does not list", name)
		}
	}
}

// Every row of the README's configuration table is a setting that the code
// lists, so that the table names no variable storagebot ignores.
func TestReadmeListsNoUnknownSetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")

	rows := 0
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		rows++
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.name == name }) {
			t.Errorf("README's configuration table has a row for %s, which the code does not read", name)
		}
	}
	if rows != len(settings) {
		t.Errorf("README's configuration table has %d rows, want one per setting (%d)", rows, len(settings))
	}
}
