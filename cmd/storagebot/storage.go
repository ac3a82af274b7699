package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/storagebot/storagebot/schedule"
	"github.com/storagebot/storagebot/store"
)

const (
	// storeOpenTimeout bounds connecting to the database and migrating it
	// at start.
	storeOpenTimeout = 30 * time.Second

	// seenActivityTTL is how long an activity id is remembered. Teams
	// retries a POST it thinks timed out within seconds to minutes, so ten
	// minutes is enough, as for the bot's in-memory set.
	seenActivityTTL = 10 * time.Minute

	// pruneEvery is the period of the scheduled prune of old scans.
	pruneEvery = 24 * time.Hour

	// defaultDBName is the SQLite file's name in the state directory.
	defaultDBName = "storagebot.db"
)

// defaultDBPath returns the SQLite file in the user's state directory as the
// XDG Base Directory Specification defines it: $XDG_STATE_HOME, else
// $HOME/.local/state. Without either it returns a file in the working
// directory.
func defaultDBPath(env Env) string {
	if dir, ok := env.Lookup("XDG_STATE_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "storagebot", defaultDBName)
	}
	if home, ok := env.Lookup("HOME"); ok && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "storagebot", defaultDBName)
	}
	return defaultDBName
}

// openStore opens PostgreSQL when DATABASE_URL is set, else the SQLite file,
// creating its directory.
func openStore(c Config, logger *slog.Logger) (store.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	logger = logger.With("component", "store")

	if c.DatabaseURL != "" {
		s, err := store.Open(ctx, c.DatabaseURL, logger)
		if err != nil {
			return nil, fmt.Errorf("open the store at DATABASE_URL: %w", err)
		}
		return s, nil
	}

	if err := os.MkdirAll(filepath.Dir(c.DBPath), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of STORAGEBOT_DB_PATH: %w", err)
	}
	s, err := store.Open(ctx, c.DBPath, logger)
	if err != nil {
		return nil, fmt.Errorf("open the store at STORAGEBOT_DB_PATH: %w", err)
	}
	return s, nil
}

// seenActivities adapts the store's activity ids to bot.Config.Seen, so a
// retried delivery is ignored on every replica.
type seenActivities struct {
	store store.Store
	now   func() time.Time
}

// FirstSeen records the SHA-256 of activityID, because the bot's key joins
// the channel, conversation and activity ids with NUL bytes, which a
// PostgreSQL text column rejects, and its length has no set bound.
func (s seenActivities) FirstSeen(ctx context.Context, activityID string) (bool, error) {
	sum := sha256.Sum256([]byte(activityID))
	return s.store.SeenActivity(ctx, hex.EncodeToString(sum[:]), s.now(), seenActivityTTL)
}

// pruneJob deletes old scans, expired activity ids and old send records
// once a day, on the leader.
func pruneJob(st store.Store, c Config, now func() time.Time) schedule.Job {
	return schedule.Job{
		Name:  "prune",
		Every: pruneEvery,
		Run: func(ctx context.Context, _ time.Time) error {
			_, err := st.Prune(ctx, now(), c.KeepAllScans, c.KeepWeeklyScans)
			return err
		},
	}
}
