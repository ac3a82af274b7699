package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite" // registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeout is how long a SQLite connection waits for another
// connection's write lock before it fails with SQLITE_BUSY, in milliseconds.
// SQLite has one writer at a time, so a write waits for any SaveScan or
// Prune in progress, in this process or another.
const sqliteBusyTimeout = 10_000

// Retries of the switch to WAL mode, which can fail with SQLITE_BUSY without
// waiting for the busy timeout (see enableWAL).
const (
	sqliteWALAttempts   = 50
	sqliteWALRetryDelay = 20 * time.Millisecond
)

// Pool limits for PostgreSQL. Replicas share the server's max_connections
// (100 by default), so each one keeps a small pool.
const (
	postgresMaxOpenConns    = 8
	postgresMaxIdleConns    = 4
	postgresConnMaxIdleTime = 5 * time.Minute
)

// migrationLockKey is the PostgreSQL advisory lock that serialises schema
// migrations between processes. The number is arbitrary and fixed for
// storagebot.
const migrationLockKey = 7_236_278_493_102_513_337

//go:embed migrations
var migrationFiles embed.FS

// dialect holds what differs between the SQLite and PostgreSQL backends.
// Queries are written with "?" placeholders and rewritten by bind.
type dialect struct {
	name string
	// migrations contains files named "NNNN_description.sql".
	migrations fs.FS
	// bind rewrites "?" placeholders into the driver's syntax.
	bind func(query string) string
	// timeValue converts a time into the value stored in a time column.
	timeValue func(t time.Time) any
	// migrationsTableExists is a query that returns one row with 1 when the
	// schema_migrations table exists and 0 otherwise.
	migrationsTableExists string
	// lockMigrations runs first in the migration transaction, and is empty
	// when the transaction itself excludes other writers.
	lockMigrations string
}

func sqliteDialect() dialect {
	migrations, err := fs.Sub(migrationFiles, "migrations/sqlite")
	if err != nil {
		panic(err) // The directory is embedded at build time.
	}
	return dialect{
		name:       backendSQLite,
		migrations: migrations,
		bind:       func(query string) string { return query },
		timeValue: func(t time.Time) any {
			return t.UnixMicro()
		},
		migrationsTableExists: `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`,
	}
}

func postgresDialect() dialect {
	migrations, err := fs.Sub(migrationFiles, "migrations/postgres")
	if err != nil {
		panic(err) // The directory is embedded at build time.
	}
	return dialect{
		name:       backendPostgres,
		migrations: migrations,
		bind:       numberPlaceholders,
		timeValue: func(t time.Time) any {
			return t.UTC().Truncate(time.Microsecond)
		},
		migrationsTableExists: `SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`,
		// The transaction-level lock is released at commit or rollback, so a
		// process killed mid-migration cannot leave it held.
		lockMigrations: "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(migrationLockKey, 10) + ")",
	}
}

// numberPlaceholders rewrites "?" into "$1", "$2", ... The store's queries
// contain no "?" inside string literals.
func numberPlaceholders(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// openSQLite opens the SQLite file at path in WAL mode, so readers do not
// wait for a writer, with foreign keys on and a busy timeout. Write
// transactions begin IMMEDIATE: they take the write lock at BEGIN and wait
// for it there, instead of failing with SQLITE_BUSY when a read inside the
// transaction is later upgraded to a write.
func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*sqlStore, error) {
	if strings.Contains(path, "?") {
		// The driver reads its settings after the first '?'.
		return nil, fmt.Errorf("open SQLite database %q: %w: the path must not contain '?'", path, ErrInvalidURL)
	}
	if path == ":memory:" {
		// Each pooled connection would open its own empty database.
		return nil, fmt.Errorf("open SQLite database %q: %w: in-memory databases are not supported, use a file path", path, ErrInvalidURL)
	}

	params := url.Values{}
	params.Set("_busy_timeout", strconv.Itoa(sqliteBusyTimeout))
	params.Set("_foreign_keys", "1")
	params.Set("_txlock", "immediate")
	// Without a "file:" prefix the driver opens path as it is, with no URI
	// decoding of '%' or '#'.
	db, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %q: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open SQLite database %q: %w", path, err)
	}
	logger = logger.With("backend", backendSQLite)
	if err := enableWAL(ctx, db, logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("open SQLite database %q: %w", path, err)
	}

	logger.Info("opened store", "path", path)
	return &sqlStore{db: db, dialect: sqliteDialect(), logger: logger}, nil
}

// enableWAL switches the database file to WAL mode, which SQLite records in
// the file, so connections opened later need not repeat it. The switch needs
// an exclusive lock. When two connections switch a new file at once, SQLite
// fails one of them with SQLITE_BUSY at once instead of calling the busy
// handler, because waiting could deadlock (SQLite C interface,
// sqlite3_busy_handler), so enableWAL retries.
func enableWAL(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	for attempt := 1; ; attempt++ {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			return fmt.Errorf("enable WAL mode: journal mode is still %q, the file system may not support WAL", mode)
		}
		var sqliteErr *sqlite.Error
		busy := errors.As(err, &sqliteErr) && sqliteErr.Code()&0xff == sqlite3.SQLITE_BUSY
		if !busy || attempt == sqliteWALAttempts {
			return fmt.Errorf("enable WAL mode after %d attempts: %w", attempt, err)
		}
		logger.Debug("retry switch to WAL mode", "attempt", attempt, "err", err)

		timer := time.NewTimer(sqliteWALRetryDelay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("enable WAL mode: %w", ctx.Err())
		case <-timer.C:
		}
	}
}

// openPostgres opens a pool of connections to the PostgreSQL database that
// connString names.
func openPostgres(ctx context.Context, connString string, logger *slog.Logger) (*sqlStore, error) {
	config, err := pgx.ParseConfig(connString)
	if err != nil {
		// The parse error quotes the URL, whose password pgx redacts only
		// on a best-effort basis, so it is not passed on.
		return nil, fmt.Errorf("open PostgreSQL database: %w: the URL does not parse as a PostgreSQL connection string", ErrInvalidURL)
	}

	db := stdlib.OpenDB(*config)
	db.SetMaxOpenConns(postgresMaxOpenConns)
	db.SetMaxIdleConns(postgresMaxIdleConns)
	db.SetConnMaxIdleTime(postgresConnMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open PostgreSQL database %q on %s:%d: %w", config.Database, config.Host, config.Port, err)
	}

	logger = logger.With("backend", backendPostgres)
	logger.Info("opened store", "host", config.Host, "port", config.Port, "database", config.Database)
	return &sqlStore{db: db, dialect: postgresDialect(), logger: logger}, nil
}
