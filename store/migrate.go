package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// migration is one versioned schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the files named "NNNN_description.sql" in fsys,
// ordered by version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}

	migrations := make([]migration, 0, len(names))
	for _, name := range names {
		prefix, _, found := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if !found || err != nil || version <= 0 {
			return nil, fmt.Errorf("load migration %q: name does not start with a positive version and '_'", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("load migration %q: %w", name, err)
		}
		migrations = append(migrations, migration{version: version, name: name, sql: string(body)})
	}

	slices.SortFunc(migrations, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version == migrations[i-1].version {
			return nil, fmt.Errorf("load migrations: %q and %q have the same version", migrations[i-1].name, migrations[i].name)
		}
	}
	return migrations, nil
}

// migrate applies the pending migrations in one transaction and records
// each in schema_migrations. An up-to-date database is only read, so
// opening it does not wait for another process's write. Otherwise the
// transaction excludes other migrating processes (an advisory lock on
// PostgreSQL, BEGIN IMMEDIATE on SQLite) and checks the applied versions
// again under that exclusion.
func (s *sqlStore) migrate(ctx context.Context) error {
	migrations, err := loadMigrations(s.dialect.migrations)
	if err != nil {
		return err
	}

	applied, err := s.appliedVersions(ctx, s.db)
	if err != nil {
		return err
	}
	if newer := unknownVersions(migrations, applied); len(newer) > 0 {
		s.logger.Warn("database has schema migrations that this build does not know, a newer build wrote them", "versions", newer)
	}
	if len(pendingMigrations(migrations, applied)) == 0 {
		return nil
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema: begin transaction: %w", err)
	}
	defer tx.Rollback()

	if s.dialect.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, s.dialect.lockMigrations); err != nil {
			return fmt.Errorf("migrate schema: take migration lock: %w", err)
		}
	}
	_, err = tx.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL
		)`)
	if err != nil {
		return fmt.Errorf("migrate schema: create schema_migrations: %w", err)
	}
	applied, err = s.appliedVersions(ctx, tx)
	if err != nil {
		return err
	}

	pending := pendingMigrations(migrations, applied)
	for _, m := range pending {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate schema: apply %s: %w", m.name, err)
		}
		_, err := tx.ExecContext(ctx, s.dialect.bind(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`), m.version, m.name)
		if err != nil {
			return fmt.Errorf("migrate schema: record %s: %w", m.name, err)
		}
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate schema: commit: %w", err)
	}
	for _, m := range pending {
		s.logger.Info("applied schema migration", "version", m.version, "name", m.name)
	}
	return nil
}

// querier is the part of *sql.DB and *sql.Tx that appliedVersions uses.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appliedVersions returns the versions recorded in schema_migrations, or
// none when the table does not exist yet.
func (s *sqlStore) appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	var exists int
	if err := q.QueryRowContext(ctx, s.dialect.migrationsTableExists).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate schema: look for schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	if exists == 0 {
		return applied, nil
	}

	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate schema: read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var version int
		if err := rows.Scan(&version); err != nil {
			return nil, fmt.Errorf("migrate schema: read schema_migrations: %w", err)
		}
		applied[version] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate schema: read schema_migrations: %w", err)
	}
	return applied, nil
}

// pendingMigrations returns the migrations whose version is not applied.
// A database that has versions this build does not know, written by a
// newer build, is left as it is.
func pendingMigrations(migrations []migration, applied map[int]bool) []migration {
	var pending []migration
	for _, m := range migrations {
		if !applied[m.version] {
			pending = append(pending, m)
		}
	}
	return pending
}

// unknownVersions returns the applied versions that no migration has, in
// increasing order.
func unknownVersions(migrations []migration, applied map[int]bool) []int {
	known := map[int]bool{}
	for _, m := range migrations {
		known[m.version] = true
	}
	var unknown []int
	for version := range applied {
		if !known[version] {
			unknown = append(unknown, version)
		}
	}
	slices.Sort(unknown)
	return unknown
}
