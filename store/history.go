package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

// pruneBatchSize is how many scan ids one DELETE names.
const pruneBatchSize = 500

// Growth is the change in used bytes between two scans, channel sites
// included (see scanner.TeamUsage.TotalUsed).
type Growth struct {
	// From and To are the FinishedAt times of the older and the newer scan.
	From, To time.Time
	// Tenant is the sum of the values in Teams.
	Tenant int64
	// Teams maps a Team id to its change in used bytes. A Team measured in
	// both scans has the difference. A Team absent from the older scan and
	// measured in the newer one counts its whole usage, and a Team measured
	// in the older scan and absent from the newer one counts its usage as a
	// loss. A Team with any other outcome in either scan is left out,
	// because its usage is unknown there.
	Teams map[string]int64
}

// Growth implements Store.
func (s *sqlStore) Growth(ctx context.Context, since time.Time) (*Growth, error) {
	from, err := s.ScanAt(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("compute growth: %w", err)
	}
	to, err := s.LatestScan(ctx)
	if err != nil {
		return nil, fmt.Errorf("compute growth: %w", err)
	}
	return compareScans(from, to), nil
}

// compareScans returns the growth from the older scan to the newer one.
func compareScans(older, newer *scanner.Result) *Growth {
	g := &Growth{From: older.FinishedAt, To: newer.FinishedAt, Teams: map[string]int64{}}

	before := teamsByID(older)
	after := teamsByID(newer)
	for id, n := range after {
		o, listed := before[id]
		switch {
		case n.Outcome != scanner.OutcomeMeasured:
		case !listed:
			g.Teams[id] = n.TotalUsed()
		case o.Outcome == scanner.OutcomeMeasured:
			g.Teams[id] = n.TotalUsed() - o.TotalUsed()
		}
	}
	for id, o := range before {
		if _, listed := after[id]; !listed && o.Outcome == scanner.OutcomeMeasured {
			g.Teams[id] = -o.TotalUsed()
		}
	}

	for _, delta := range g.Teams {
		g.Tenant += delta
	}
	return g
}

// teamsByID indexes a scan's Teams. When Graph listed a Team twice the last
// entry wins.
func teamsByID(r *scanner.Result) map[string]scanner.TeamUsage {
	byID := make(map[string]scanner.TeamUsage, len(r.Teams))
	for _, t := range r.Teams {
		byID[t.Team.ID] = t
	}
	return byID
}

// Prune implements Store.
func (s *sqlStore) Prune(ctx context.Context, now time.Time, keepAll, keepWeekly time.Duration) (int, error) {
	if keepAll <= 0 || keepWeekly < keepAll {
		return 0, fmt.Errorf("prune: invalid retention: keepAll %v must be positive and keepWeekly %v at least keepAll", keepAll, keepWeekly)
	}
	allCutoff := now.Add(-keepAll)
	weeklyCutoff := now.Add(-keepWeekly)

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("prune: begin transaction: %w", err)
	}
	defer tx.Rollback()

	candidates, err := s.scansBefore(ctx, tx, allCutoff)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	var newestID int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM scans ORDER BY finished_at DESC, id DESC LIMIT 1`).Scan(&newestID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("prune: find newest scan: %w", err)
	}

	doomed := selectPruned(candidates, weeklyCutoff, newestID)
	for start := 0; start < len(doomed); start += pruneBatchSize {
		batch := doomed[start:min(start+pruneBatchSize, len(doomed))]
		query := "DELETE FROM scans WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(batch)), ", ") + ")"
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, s.dialect.bind(query), args...); err != nil {
			return 0, fmt.Errorf("prune: delete %d scans: %w", len(batch), err)
		}
	}

	activities, err := tx.ExecContext(ctx, s.dialect.bind(`DELETE FROM seen_activities WHERE expires_at <= ?`), s.dialect.timeValue(now))
	if err != nil {
		return 0, fmt.Errorf("prune: delete expired activity ids: %w", err)
	}
	sends, err := tx.ExecContext(ctx, s.dialect.bind(`DELETE FROM sends WHERE recorded_at < ?`), s.dialect.timeValue(weeklyCutoff))
	if err != nil {
		return 0, fmt.Errorf("prune: delete send records: %w", err)
	}

	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune: commit: %w", err)
	}
	activityCount, _ := activities.RowsAffected()
	sendCount, _ := sends.RowsAffected()
	s.logger.Info("pruned store", "scans", len(doomed), "activity_ids", activityCount, "send_records", sendCount)
	return len(doomed), nil
}

// scanTime is a scan's id and FinishedAt.
type scanTime struct {
	id         int64
	finishedAt time.Time
}

// scansBefore returns the scans that finished before t, newest first.
func (s *sqlStore) scansBefore(ctx context.Context, tx *sql.Tx, t time.Time) ([]scanTime, error) {
	rows, err := tx.QueryContext(ctx, s.dialect.bind(`
		SELECT id, finished_at FROM scans
		WHERE finished_at < ?
		ORDER BY finished_at DESC, id DESC`), s.dialect.timeValue(t))
	if err != nil {
		return nil, fmt.Errorf("list scans before %s: %w", t.Format(time.RFC3339), err)
	}
	defer rows.Close()

	var scans []scanTime
	for rows.Next() {
		var st scanTime
		if err := rows.Scan(&st.id, timeScanner{&st.finishedAt}); err != nil {
			return nil, fmt.Errorf("list scans before %s: %w", t.Format(time.RFC3339), err)
		}
		scans = append(scans, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list scans before %s: %w", t.Format(time.RFC3339), err)
	}
	return scans, nil
}

// selectPruned returns the ids to delete among scans, which are ordered
// newest first. It deletes every scan that finished before weeklyCutoff and
// keeps the newest scan of each ISO week (in UTC) after it. The scan with
// id newestID is always kept, so a store that stopped scanning still
// returns its last scan.
func selectPruned(scans []scanTime, weeklyCutoff time.Time, newestID int64) []int64 {
	type isoWeek struct{ year, week int }
	weeksKept := map[isoWeek]bool{}
	var doomed []int64
	for _, st := range scans {
		year, week := st.finishedAt.UTC().ISOWeek()
		w := isoWeek{year, week}
		switch {
		case st.id == newestID:
			weeksKept[w] = true
		case st.finishedAt.Before(weeklyCutoff), weeksKept[w]:
			doomed = append(doomed, st.id)
		default:
			weeksKept[w] = true
		}
	}
	return doomed
}
