package store

import (
	"testing"
	"testing/fstest"
)

func TestMigrateIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		first := b.open(t)
		saveScan(t, first, newResult(baseTime, measured("a", 1)))
		first.Close()

		second := b.open(t)
		assertMigrationsRecorded(t, second)
		if _, err := second.LatestScan(t.Context()); err != nil {
			t.Errorf("LatestScan() after reopening error = %v", err)
		}
	})
}

func TestMigrateConcurrentOpen(t *testing.T) {
	const openers = 4
	forEachBackend(t, func(t *testing.T, b testBackend) {
		errs := make(chan error, openers)
		for range openers {
			go func() {
				s, err := Open(t.Context(), b.url, nil)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range openers {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Open() error = %v", err)
			}
		}

		assertMigrationsRecorded(t, b.open(t))
	})
}

// assertMigrationsRecorded checks that schema_migrations has each of the
// dialect's migrations exactly once.
func assertMigrationsRecorded(t *testing.T, s *sqlStore) {
	t.Helper()
	migrations, err := loadMigrations(s.dialect.migrations)
	if err != nil {
		t.Fatalf("loadMigrations() error = %v", err)
	}
	names := queryStrings(t, s, `SELECT name FROM schema_migrations ORDER BY version`)
	if len(names) != len(migrations) {
		t.Fatalf("schema_migrations has %d rows %v, want %d", len(names), names, len(migrations))
	}
	for i, m := range migrations {
		if names[i] != m.name {
			t.Errorf("schema_migrations row %d = %q, want %q", i, names[i], m.name)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	tests := []struct {
		name      string
		files     fstest.MapFS
		wantNames []string
		wantErr   bool
	}{
		{
			name:      "ordered by version, not by name",
			files:     fstest.MapFS{"10_later.sql": file("SELECT 10"), "0002_second.sql": file("SELECT 2"), "README.md": file("")},
			wantNames: []string{"0002_second.sql", "10_later.sql"},
		},
		{name: "no version", files: fstest.MapFS{"initial.sql": file("")}, wantErr: true},
		{name: "version zero", files: fstest.MapFS{"0000_initial.sql": file("")}, wantErr: true},
		{name: "same version twice", files: fstest.MapFS{"0001_a.sql": file(""), "1_b.sql": file("")}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadMigrations(tt.files)
			if tt.wantErr {
				if err == nil {
					t.Errorf("loadMigrations() = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadMigrations() error = %v", err)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.name)
			}
			if len(names) != len(tt.wantNames) {
				t.Fatalf("loadMigrations() names = %v, want %v", names, tt.wantNames)
			}
			for i := range names {
				if names[i] != tt.wantNames[i] {
					t.Errorf("loadMigrations() name %d = %q, want %q", i, names[i], tt.wantNames[i])
				}
			}
		})
	}
}

func TestEmbeddedMigrationsMatch(t *testing.T) {
	sqlite, err := loadMigrations(sqliteDialect().migrations)
	if err != nil {
		t.Fatalf("load SQLite migrations: %v", err)
	}
	postgres, err := loadMigrations(postgresDialect().migrations)
	if err != nil {
		t.Fatalf("load PostgreSQL migrations: %v", err)
	}
	if len(sqlite) != len(postgres) {
		t.Fatalf("%d SQLite migrations and %d PostgreSQL migrations, want the same versions in both", len(sqlite), len(postgres))
	}
	for i := range sqlite {
		if sqlite[i].name != postgres[i].name {
			t.Errorf("migration %d is %q for SQLite and %q for PostgreSQL", i, sqlite[i].name, postgres[i].name)
		}
	}
}
