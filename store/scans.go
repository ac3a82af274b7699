package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

// teamBatchSize is how many scan_teams rows one INSERT writes. With 12
// values a row it stays far below SQLite's default limit of 32766 bound
// variables and PostgreSQL's 65535.
const teamBatchSize = 200

// teamColumns are the scan_teams columns that SaveScan writes, in order.
const teamColumns = "scan_id, position, team_id, display_name, outcome, used_bytes, total_bytes, remaining_bytes, deleted_bytes, state, reason, attempts, channels"

const teamColumnCount = 13

// siteBreakdown is the JSON form of a Team's per-site usage in the channels
// column, which is NULL for a Team scanned without channel sites.
type siteBreakdown struct {
	Sites          []scanner.SiteUsage `json:"sites,omitempty"`
	ChannelsReason string              `json:"channelsReason,omitempty"`
}

// sqlStore implements Store on database/sql for both backends.
type sqlStore struct {
	db      *sql.DB
	dialect dialect
	logger  *slog.Logger

	// afterTeamBatch, when set, runs inside SaveScan's transaction after each
	// batch of Team rows with the number of rows written so far. Tests use
	// it to stop a save half-way.
	afterTeamBatch func(saved int)
}

// SaveScan implements Store.
func (s *sqlStore) SaveScan(ctx context.Context, r *scanner.Result) (int64, error) {
	if r == nil {
		return 0, errors.New("save scan: result is nil")
	}
	if r.FinishedAt.IsZero() {
		return 0, errors.New("save scan: FinishedAt is zero")
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("save scan: begin transaction: %w", err)
	}
	defer tx.Rollback()

	var id int64
	err = tx.QueryRowContext(ctx, s.dialect.bind(`
		INSERT INTO scans (tenant_id, started_at, finished_at, team_count, total_used_bytes)
		VALUES (?, ?, ?, ?, ?)
		RETURNING id`),
		r.TenantID, s.dialect.timeValue(r.StartedAt), s.dialect.timeValue(r.FinishedAt), len(r.Teams), r.TotalUsed(),
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("save scan: insert scan: %w", err)
	}

	for start := 0; start < len(r.Teams); start += teamBatchSize {
		end := min(start+teamBatchSize, len(r.Teams))
		if err := s.insertTeams(ctx, tx, id, start, r.Teams[start:end]); err != nil {
			return 0, fmt.Errorf("save scan %d: insert Teams %d to %d: %w", id, start, end-1, err)
		}
		if s.afterTeamBatch != nil {
			s.afterTeamBatch(end)
		}
	}

	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("save scan %d: commit: %w", id, err)
	}
	s.logger.Debug("saved scan", "scan_id", id, "teams", len(r.Teams), "finished_at", r.FinishedAt)
	return id, nil
}

// insertTeams writes teams in one multi-row INSERT. first is the position
// of teams[0] in the scan.
func (s *sqlStore) insertTeams(ctx context.Context, tx *sql.Tx, scanID int64, first int, teams []scanner.TeamUsage) error {
	row := "(" + strings.Repeat("?, ", teamColumnCount-1) + "?)"
	rows := make([]string, len(teams))
	args := make([]any, 0, len(teams)*teamColumnCount)
	for i, t := range teams {
		rows[i] = row
		var channels any
		if t.Sites != nil || t.ChannelsReason != "" {
			encoded, err := json.Marshal(siteBreakdown{Sites: t.Sites, ChannelsReason: t.ChannelsReason})
			if err != nil {
				return fmt.Errorf("encode the sites of Team %q: %w", t.Team.ID, err)
			}
			channels = string(encoded)
		}
		args = append(args,
			scanID, first+i, t.Team.ID, t.Team.DisplayName, string(t.Outcome),
			t.Quota.Used, t.Quota.Total, t.Quota.Remaining, t.Quota.Deleted, t.Quota.State,
			t.Reason, t.Attempts, channels,
		)
	}
	query := "INSERT INTO scan_teams (" + teamColumns + ") VALUES " + strings.Join(rows, ", ")
	_, err := tx.ExecContext(ctx, s.dialect.bind(query), args...)
	return err
}

// LatestScan implements Store.
func (s *sqlStore) LatestScan(ctx context.Context) (*scanner.Result, error) {
	r, err := s.loadScan(ctx, "", nil)
	if err != nil {
		return nil, fmt.Errorf("load latest scan: %w", err)
	}
	return r, nil
}

// ScanAt implements Store.
func (s *sqlStore) ScanAt(ctx context.Context, t time.Time) (*scanner.Result, error) {
	r, err := s.loadScan(ctx, "WHERE finished_at <= ?", s.dialect.timeValue(t))
	if err != nil {
		return nil, fmt.Errorf("load scan finished at or before %s: %w", t.Format(time.RFC3339), err)
	}
	return r, nil
}

// loadScan reads the newest scan that matches where, a WHERE clause on the
// scans table with at most one placeholder. One statement reads the scan and
// its Teams, so a concurrent Prune cannot leave a scan without its Teams.
func (s *sqlStore) loadScan(ctx context.Context, where string, arg any) (*scanner.Result, error) {
	query := `
		SELECT s.tenant_id, s.started_at, s.finished_at,
		       t.team_id, t.display_name, t.outcome, t.used_bytes, t.total_bytes,
		       t.remaining_bytes, t.deleted_bytes, t.state, t.reason, t.attempts, t.channels
		FROM scans s
		LEFT JOIN scan_teams t ON t.scan_id = s.id
		WHERE s.id = (SELECT id FROM scans ` + where + ` ORDER BY finished_at DESC, id DESC LIMIT 1)
		ORDER BY t.position`
	var args []any
	if arg != nil {
		args = append(args, arg)
	}

	rows, err := s.db.QueryContext(ctx, s.dialect.bind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	var r *scanner.Result
	for rows.Next() {
		var (
			scan                            scanner.Result
			teamID, displayName, outcome    *string
			state, reason                   *string
			used, total, remaining, deleted *int64
			attempts                        *int64
			channels                        *string
		)
		err := rows.Scan(
			&scan.TenantID, timeScanner{&scan.StartedAt}, timeScanner{&scan.FinishedAt},
			&teamID, &displayName, &outcome, &used, &total,
			&remaining, &deleted, &state, &reason, &attempts, &channels,
		)
		if err != nil {
			return nil, err
		}
		if r == nil {
			r = &scan
			r.Teams = []scanner.TeamUsage{}
		}
		if teamID == nil {
			continue // A scan without Teams yields one row of NULLs.
		}
		var sites siteBreakdown
		if channels != nil {
			if err := json.Unmarshal([]byte(*channels), &sites); err != nil {
				return nil, fmt.Errorf("decode the sites of Team %q: %w", *teamID, err)
			}
		}
		r.Teams = append(r.Teams, scanner.TeamUsage{
			Team:    scanner.Team{ID: *teamID, DisplayName: *displayName},
			Outcome: scanner.Outcome(*outcome),
			Quota: scanner.Quota{
				Total:     *total,
				Used:      *used,
				Remaining: *remaining,
				Deleted:   *deleted,
				State:     *state,
			},
			Reason:         *reason,
			Attempts:       int(*attempts),
			Sites:          sites.Sites,
			ChannelsReason: sites.ChannelsReason,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, ErrNotFound
	}
	return r, nil
}

// Ping implements Store.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *sqlStore) Close() error {
	return s.db.Close()
}

// timeScanner reads a time column: INTEGER microseconds since the Unix epoch
// on SQLite, timestamptz on PostgreSQL. NULL reads as the zero time.
type timeScanner struct {
	dst *time.Time
}

func (ts timeScanner) Scan(value any) error {
	switch v := value.(type) {
	case nil:
		*ts.dst = time.Time{}
	case int64:
		*ts.dst = time.UnixMicro(v).UTC()
	case time.Time:
		*ts.dst = v.UTC()
	default:
		return fmt.Errorf("read time column: unsupported value type %T", value)
	}
	return nil
}
