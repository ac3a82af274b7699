// Package storetest gives tests of other packages a fresh store database on
// each backend: a SQLite file, and a PostgreSQL schema when
// STORAGEBOT_TEST_DATABASE_URL names a server.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// DatabaseURLVariable names a PostgreSQL database for the PostgreSQL cases,
// for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const DatabaseURLVariable = "STORAGEBOT_TEST_DATABASE_URL"

// Backend is one fresh, empty database.
type Backend struct {
	// Name is "sqlite" or "postgres".
	Name string
	// URL is what store.Open accepts: a SQLite file path, or a PostgreSQL
	// URL whose search_path selects a schema of the test's own.
	URL string
}

// ForEach runs test as a subtest against a fresh SQLite file and, when
// STORAGEBOT_TEST_DATABASE_URL is set, against a fresh PostgreSQL schema.
// Without the variable the PostgreSQL subtest is skipped with a message.
func ForEach(t *testing.T, test func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { test(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, Postgres(t)) })
}

// SQLite returns a SQLite file in the test's temporary directory.
func SQLite(t *testing.T) Backend {
	return Backend{Name: "sqlite", URL: filepath.Join(t.TempDir(), "storagebot.db")}
}

// Postgres creates a schema of its own, so that tests running at the same
// time share no tables, and drops it when the test ends. It skips the test
// when STORAGEBOT_TEST_DATABASE_URL is not set.
func Postgres(t *testing.T) Backend {
	t.Helper()
	base := os.Getenv(DatabaseURLVariable)
	if base == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL cases", DatabaseURLVariable)
	}

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("connect to %s: %v", DatabaseURLVariable, err)
	}
	t.Cleanup(func() { admin.Close() })

	random := make([]byte, 6)
	rand.Read(random)
	schema := "storagebot_test_" + hex.EncodeToString(random)
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	separator := "?"
	if strings.Contains(base, "?") {
		separator = "&"
	}
	// pgx sends unknown URL parameters such as search_path to the server as
	// run-time parameters.
	return Backend{Name: "postgres", URL: base + separator + "search_path=" + schema}
}
