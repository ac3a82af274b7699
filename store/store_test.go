package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/store/storetest"
)

// testBackend is one fresh database that tests open Stores on.
type testBackend struct {
	name string
	url  string
}

// open opens a new Store on the backend's database and closes it when the
// test ends.
func (b testBackend) open(t *testing.T) *sqlStore {
	t.Helper()
	s, err := Open(t.Context(), b.url, nil)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", b.name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*sqlStore)
}

// forEachBackend runs test against a fresh SQLite file and, when
// STORAGEBOT_TEST_DATABASE_URL is set, against a fresh PostgreSQL schema.
func forEachBackend(t *testing.T, test func(t *testing.T, b testBackend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { test(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, postgresBackend(t)) })
}

func sqliteBackend(t *testing.T) testBackend {
	return testBackend{name: "sqlite", url: "sqlite://" + filepath.Join(t.TempDir(), "store.db")}
}

// postgresBackend creates a schema of its own, so tests do not share tables,
// and drops it when the test ends.
func postgresBackend(t *testing.T) testBackend {
	t.Helper()
	b := storetest.Postgres(t)
	return testBackend{name: b.Name, url: b.URL}
}

// baseTime is a fixed Monday, so ISO weeks in tests start on known days.
var baseTime = time.Date(2025, time.January, 6, 9, 0, 0, 0, time.UTC)

func measured(id string, used int64) scanner.TeamUsage {
	return scanner.TeamUsage{
		Team:     scanner.Team{ID: id, DisplayName: "Team " + id},
		Outcome:  scanner.OutcomeMeasured,
		Quota:    scanner.Quota{Total: 1 << 40, Used: used, Remaining: 1<<40 - used, State: "normal"},
		Attempts: 1,
	}
}

func failed(id string, outcome scanner.Outcome) scanner.TeamUsage {
	return scanner.TeamUsage{
		Team:     scanner.Team{ID: id, DisplayName: "Team " + id},
		Outcome:  outcome,
		Reason:   "HTTP 503 after 6 attempts",
		Attempts: 6,
	}
}

func newResult(finishedAt time.Time, teams ...scanner.TeamUsage) *scanner.Result {
	return &scanner.Result{
		TenantID:   "tenant-1",
		StartedAt:  finishedAt.Add(-time.Minute),
		FinishedAt: finishedAt,
		Teams:      teams,
	}
}

// manyTeams returns n measured Teams with distinct ids.
func manyTeams(n int) []scanner.TeamUsage {
	teams := make([]scanner.TeamUsage, n)
	for i := range teams {
		teams[i] = measured(fmt.Sprintf("team-%06d", i), int64(i)*1024)
	}
	return teams
}

// storedForm returns r as the store returns it: times in UTC, truncated to
// the microsecond, and a non-nil Teams slice.
func storedForm(r *scanner.Result) *scanner.Result {
	out := *r
	out.StartedAt = r.StartedAt.UTC().Truncate(time.Microsecond)
	out.FinishedAt = r.FinishedAt.UTC().Truncate(time.Microsecond)
	out.Teams = append([]scanner.TeamUsage{}, r.Teams...)
	return &out
}

func saveScan(t *testing.T, s Store, r *scanner.Result) int64 {
	t.Helper()
	id, err := s.SaveScan(t.Context(), r)
	if err != nil {
		t.Fatalf("SaveScan(finished %s) error = %v", r.FinishedAt, err)
	}
	return id
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url         string
		wantBackend string
		wantTarget  string
	}{
		{"sqlite:///var/lib/storagebot/store.db", backendSQLite, "/var/lib/storagebot/store.db"},
		{"sqlite://store.db", backendSQLite, "store.db"},
		{"sqlite:store.db", backendSQLite, "store.db"},
		{"/var/lib/storagebot/store.db", backendSQLite, "/var/lib/storagebot/store.db"},
		{"store.db", backendSQLite, "store.db"},
		{"postgres://bot@127.0.0.1:5432/storagebot", backendPostgres, "postgres://bot@127.0.0.1:5432/storagebot"},
		{"postgresql://bot@127.0.0.1/storagebot?sslmode=disable", backendPostgres, "postgresql://bot@127.0.0.1/storagebot?sslmode=disable"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			backend, target, err := parseURL(tt.url)
			if err != nil {
				t.Fatalf("parseURL(%q) error = %v", tt.url, err)
			}
			if backend != tt.wantBackend {
				t.Errorf("parseURL(%q) backend = %q, want %q", tt.url, backend, tt.wantBackend)
			}
			if target != tt.wantTarget {
				t.Errorf("parseURL(%q) target = %q, want %q", tt.url, target, tt.wantTarget)
			}
		})
	}
}

func TestOpenSQLiteUnusualPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir with space#1", "100%20full.db")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", path, err)
	}
	defer s.Close()
	saveScan(t, s, newResult(baseTime, measured("a", 1)))

	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file at the exact path: %v", err)
	}
}

func TestOpenInvalidURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"empty", ""},
		{"unknown scheme", "mysql://bot@127.0.0.1/storagebot"},
		{"sqlite without path", "sqlite://"},
		{"sqlite path with query", "sqlite:///tmp/store.db?mode=ro"},
		{"sqlite in memory", ":memory:"},
		{"postgres bad port", "postgres://bot:secret-password@127.0.0.1:notaport/storagebot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) error = nil, want ErrInvalidURL", tt.url)
			}
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("Open(%q) error = %v, want ErrInvalidURL", tt.url, err)
			}
			if strings.Contains(err.Error(), "secret-password") {
				t.Errorf("Open(%q) error = %q contains the password", tt.url, err)
			}
		})
	}
}

func TestPingOpenAndClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping on an open store: %v", err)
		}

		s.Close()
		if err := s.Ping(t.Context()); err == nil {
			t.Error("Ping on a closed store returned nil, want an error")
		}
	})
}
