// Package store owns storagebot's persistent state: the history of storage
// scans and the state that replicas share (conversation references, activity
// deduplication, leases and the log of proactive sends), on SQLite or
// PostgreSQL.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

// Retention defaults for Prune.
const (
	// DefaultKeepAll is how long every scan is kept.
	DefaultKeepAll = 30 * 24 * time.Hour
	// DefaultKeepWeekly is how long one scan per ISO week is kept.
	DefaultKeepWeekly = 365 * 24 * time.Hour
)

var (
	// ErrNotFound is returned when the requested scan or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidURL is returned by Open for a database URL it cannot use.
	ErrInvalidURL = errors.New("invalid database URL")
)

// Store is storagebot's persistent state. Every method is safe for
// concurrent use, and several Store values, in one process or in several,
// may share one database. Times are stored in UTC with microsecond
// precision, so values read back are truncated to the microsecond.
type Store interface {
	// SaveScan stores a complete scan in one transaction, so readers see
	// either the whole scan or nothing, and returns the scan's id. The
	// result's FinishedAt must be set.
	SaveScan(ctx context.Context, r *scanner.Result) (int64, error)
	// LatestScan returns the scan that finished last, or ErrNotFound.
	LatestScan(ctx context.Context) (*scanner.Result, error)
	// ScanAt returns the newest scan that finished at or before t, or
	// ErrNotFound.
	ScanAt(ctx context.Context, t time.Time) (*scanner.Result, error)
	// Growth compares the latest scan with the newest scan that finished at
	// or before since. It returns ErrNotFound when no scan is that old.
	Growth(ctx context.Context, since time.Time) (*Growth, error)
	// Prune deletes scans that finished before now-keepAll, except the last
	// scan of each ISO week, and deletes every scan that finished before
	// now-keepWeekly. The newest scan is never deleted. Prune also deletes
	// expired activity ids and send records older than keepWeekly. It
	// returns the number of scans deleted.
	Prune(ctx context.Context, now time.Time, keepAll, keepWeekly time.Duration) (int, error)

	// SaveConversation inserts or replaces the reference with the same
	// ConversationID.
	SaveConversation(ctx context.Context, ref ConversationReference) error
	// Conversations returns the references of one kind, or of every kind
	// when kind is empty, ordered by ConversationID.
	Conversations(ctx context.Context, kind string) ([]ConversationReference, error)
	// DeleteConversation deletes a reference. Deleting a reference that
	// does not exist is not an error, so an uninstall event can be handled
	// twice.
	DeleteConversation(ctx context.Context, conversationID string) error

	// SeenActivity records an activity id and reports whether this is the
	// first time it was seen within ttl. Teams resends a message when the
	// bot does not respond within about 15 seconds, and the retry may reach
	// another replica.
	SeenActivity(ctx context.Context, activityID string, now time.Time, ttl time.Duration) (bool, error)

	// TryLease acquires the named lease for holder until now+ttl, or renews
	// it when holder already has it. It returns false while another holder
	// has an unexpired lease.
	TryLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives up the lease if holder has it, and does nothing
	// otherwise.
	ReleaseLease(ctx context.Context, name, holder string) error

	// RecordSend writes a pending send record before a proactive message is
	// sent. It returns true when the caller should send: the key is new, or
	// its record is still pending and was written at or before
	// now-retryAfter (the sender likely crashed). A retryAfter of zero or
	// less never takes over a pending record. It also returns the record as
	// stored after the call.
	RecordSend(ctx context.Context, key, conversationID string, now time.Time, retryAfter time.Duration) (Send, bool, error)
	// CompleteSend marks a send record as sent, with the activity id that
	// the Bot Connector returned. It returns ErrNotFound for an unknown key.
	CompleteSend(ctx context.Context, key, activityID string, now time.Time) error

	// Ping checks that the database answers a query, for readiness probes.
	Ping(ctx context.Context) error

	// Close closes the database connections.
	Close() error
}

// ConversationReference is the address of a conversation for proactive
// messages.
type ConversationReference struct {
	// ConversationID is the Bot Framework conversation id, the record's key.
	ConversationID string
	// Kind is the Teams conversationType: "personal", "groupChat" or
	// "channel".
	Kind       string
	ServiceURL string
	TenantID   string
	// BotID is the recipient id of the activity that brought the reference.
	BotID string
	// TeamID is channelData.team.id, empty outside a Team.
	TeamID string
	// GroupID is the Team's Microsoft 365 group id (channelData.team.aadGroupId),
	// empty when unknown.
	GroupID string
	// TeamsChannelID is channelData.channel.id, empty outside a channel.
	TeamsChannelID string
	// Reference is the full ConversationReference as JSON, or nil.
	// PostgreSQL stores it as jsonb, which does not keep whitespace or key
	// order.
	Reference json.RawMessage
	UpdatedAt time.Time
}

// Send is one record of the idempotency log of proactive messages such as
// digests and alerts.
type Send struct {
	// Key identifies the message, for example the digest's week and the
	// conversation id.
	Key            string
	ConversationID string
	RecordedAt     time.Time
	// CompletedAt is zero while the send is pending.
	CompletedAt time.Time
	// ActivityID is the id of the sent activity, empty while pending.
	ActivityID string
}

// Completed reports whether the message was sent.
func (s Send) Completed() bool {
	return !s.CompletedAt.IsZero()
}

// Open connects to the database that url names and applies pending schema
// migrations. A "postgres://" or "postgresql://" URL opens PostgreSQL. A
// "sqlite://" URL ("sqlite:///var/lib/storagebot.db" for an absolute path) or
// a plain file path opens SQLite, creating the file when it does not exist.
// A nil logger discards log records.
func Open(ctx context.Context, url string, logger *slog.Logger) (Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	backend, target, err := parseURL(url)
	if err != nil {
		return nil, err
	}

	var s *sqlStore
	switch backend {
	case backendPostgres:
		s, err = openPostgres(ctx, target, logger)
	default:
		s, err = openSQLite(ctx, target, logger)
	}
	if err != nil {
		return nil, err
	}

	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
)

// parseURL returns the backend and what its driver opens: a file path for
// SQLite, the whole URL for PostgreSQL.
func parseURL(url string) (backend, target string, err error) {
	switch {
	case url == "":
		return "", "", fmt.Errorf("open store: %w: empty", ErrInvalidURL)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return backendPostgres, url, nil
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if path == "" {
			return "", "", fmt.Errorf("open store: %w: %q has no file path", ErrInvalidURL, url)
		}
		return backendSQLite, path, nil
	case strings.Contains(url, "://"):
		scheme, _, _ := strings.Cut(url, "://")
		return "", "", fmt.Errorf("open store: %w: scheme %q is not sqlite, postgres or postgresql", ErrInvalidURL, scheme)
	default:
		return backendSQLite, url, nil
	}
}
