package store

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

func TestCompareScans(t *testing.T) {
	older := newResult(baseTime,
		measured("grew", 100),
		measured("deleted", 40),
		measured("fails-now", 10),
		failed("failed-before", scanner.OutcomeFailed),
		failed("never-measured", scanner.OutcomeNoDrive),
		measured("unchanged", 5),
	)
	newer := newResult(baseTime.Add(7*24*time.Hour),
		measured("grew", 150),
		measured("new", 30),
		failed("fails-now", scanner.OutcomeForbidden),
		measured("failed-before", 20),
		failed("never-measured", scanner.OutcomeNoDrive),
		measured("unchanged", 5),
	)

	got := compareScans(older, newer)

	wantTeams := map[string]int64{"grew": 50, "new": 30, "deleted": -40, "unchanged": 0}
	if !reflect.DeepEqual(got.Teams, wantTeams) {
		t.Errorf("compareScans().Teams = %v, want %v", got.Teams, wantTeams)
	}
	if got.Tenant != 40 {
		t.Errorf("compareScans().Tenant = %d, want 40", got.Tenant)
	}
	if !got.From.Equal(older.FinishedAt) || !got.To.Equal(newer.FinishedAt) {
		t.Errorf("compareScans() From, To = %s, %s, want %s, %s", got.From, got.To, older.FinishedAt, newer.FinishedAt)
	}
}

func TestGrowth(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		week0 := newResult(baseTime, measured("a", 100), measured("c", 40))
		week1 := newResult(baseTime.Add(7*24*time.Hour), measured("a", 120), measured("c", 40))
		week2 := newResult(baseTime.Add(14*24*time.Hour), measured("a", 150), measured("b", 30))
		for _, r := range []*scanner.Result{week0, week1, week2} {
			saveScan(t, s, r)
		}

		tests := []struct {
			name       string
			since      time.Time
			wantFrom   time.Time
			wantTenant int64
			wantTeams  map[string]int64
		}{
			{"since the first scan", baseTime.Add(time.Hour), week0.FinishedAt, 40, map[string]int64{"a": 50, "b": 30, "c": -40}},
			{"since the second scan", week1.FinishedAt, week1.FinishedAt, 20, map[string]int64{"a": 30, "b": 30, "c": -40}},
			{"since the latest scan", week2.FinishedAt, week2.FinishedAt, 0, map[string]int64{"a": 0, "b": 0}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Growth(t.Context(), tt.since)
				if err != nil {
					t.Fatalf("Growth(%s) error = %v", tt.since, err)
				}
				if !got.From.Equal(tt.wantFrom) {
					t.Errorf("Growth(%s).From = %s, want %s", tt.since, got.From, tt.wantFrom)
				}
				if !got.To.Equal(week2.FinishedAt) {
					t.Errorf("Growth(%s).To = %s, want %s", tt.since, got.To, week2.FinishedAt)
				}
				if got.Tenant != tt.wantTenant {
					t.Errorf("Growth(%s).Tenant = %d, want %d", tt.since, got.Tenant, tt.wantTenant)
				}
				if !reflect.DeepEqual(got.Teams, tt.wantTeams) {
					t.Errorf("Growth(%s).Teams = %v, want %v", tt.since, got.Teams, tt.wantTeams)
				}
			})
		}

		if _, err := s.Growth(t.Context(), baseTime.Add(-time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Growth(before every scan) error = %v, want ErrNotFound", err)
		}
	})
}

func TestSelectPruned(t *testing.T) {
	day := func(n int) time.Time { return baseTime.Add(time.Duration(n) * 24 * time.Hour) }
	tests := []struct {
		name         string
		scans        []scanTime // newest first
		weeklyCutoff time.Time
		newestID     int64
		want         []int64
	}{
		{
			name:         "keeps the newest scan of each week",
			scans:        []scanTime{{4, day(9)}, {3, day(8)}, {2, day(6)}, {1, day(0)}},
			weeklyCutoff: day(-100),
			newestID:     10,
			want:         []int64{3, 1},
		},
		{
			name:         "deletes scans older than the weekly cutoff",
			scans:        []scanTime{{3, day(14)}, {2, day(7)}, {1, day(0)}},
			weeklyCutoff: day(7),
			newestID:     10,
			want:         []int64{1},
		},
		{
			name:         "keeps the newest scan even when it is too old",
			scans:        []scanTime{{3, day(2)}, {2, day(1)}, {1, day(0)}},
			weeklyCutoff: day(100),
			newestID:     3,
			want:         []int64{2, 1},
		},
		{
			// Monday 00:30 UTC is Sunday afternoon in UTC-10, the same local
			// week as the Sunday 23:00 UTC scan but another ISO week in UTC.
			name: "weeks are ISO weeks in UTC",
			scans: []scanTime{
				{2, time.Date(2025, 1, 13, 0, 30, 0, 0, time.UTC).In(time.FixedZone("UTC-10", -10*3600))},
				{1, time.Date(2025, 1, 12, 23, 0, 0, 0, time.UTC)},
			},
			weeklyCutoff: day(-100),
			newestID:     10,
			want:         nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := selectPruned(tt.scans, tt.weeklyCutoff, tt.newestID)
			if !slices.Equal(got, tt.want) {
				t.Errorf("selectPruned() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	// 400 daily scans at 09:00 from Monday 2025-01-06 to Monday 2026-02-09.
	const days = 400
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		for d := range days {
			saveScan(t, s, newResult(baseTime.Add(time.Duration(d)*24*time.Hour), measured("a", int64(d)), measured("b", 1)))
		}
		now := baseTime.Add((days-1)*24*time.Hour + time.Hour)

		deleted, err := s.Prune(t.Context(), now, DefaultKeepAll, DefaultKeepWeekly)
		if err != nil {
			t.Fatalf("Prune() error = %v", err)
		}

		// Prune keeps every scan of the last 30 days, days 370 to 399. From
		// the year before, days 35 to 369, it keeps the last scan of each ISO
		// week: the Sundays 41, 48, ..., 363, and Saturday 369 because
		// Sunday 370 is inside the 30 days.
		var wantDays []int
		for d := 41; d <= 363; d += 7 {
			wantDays = append(wantDays, d)
		}
		wantDays = append(wantDays, 369)
		for d := 370; d < days; d++ {
			wantDays = append(wantDays, d)
		}

		if deleted != days-len(wantDays) {
			t.Errorf("Prune() = %d, want %d", deleted, days-len(wantDays))
		}
		if got := storedScanDays(t, s); !slices.Equal(got, wantDays) {
			t.Errorf("days of the scans kept = %v\nwant %v", got, wantDays)
		}
		var teamRows int
		if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM scan_teams`).Scan(&teamRows); err != nil {
			t.Fatalf("count scan_teams rows: %v", err)
		}
		if teamRows != 2*len(wantDays) {
			t.Errorf("scan_teams rows = %d, want %d: the Teams of deleted scans must go with them", teamRows, 2*len(wantDays))
		}

		again, err := s.Prune(t.Context(), now, DefaultKeepAll, DefaultKeepWeekly)
		if err != nil {
			t.Fatalf("second Prune() error = %v", err)
		}
		if again != 0 {
			t.Errorf("second Prune() = %d, want 0", again)
		}
	})
}

// storedScanDays returns the day numbers, counted from baseTime, of the
// stored scans in increasing order.
func storedScanDays(t *testing.T, s *sqlStore) []int {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT finished_at FROM scans ORDER BY finished_at`)
	if err != nil {
		t.Fatalf("list scans: %v", err)
	}
	defer rows.Close()
	var days []int
	for rows.Next() {
		var finishedAt time.Time
		if err := rows.Scan(timeScanner{&finishedAt}); err != nil {
			t.Fatalf("list scans: %v", err)
		}
		days = append(days, int(finishedAt.Sub(baseTime)/(24*time.Hour)))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list scans: %v", err)
	}
	return days
}

func TestPruneKeepsNewestScan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		for d := range 3 {
			saveScan(t, s, newResult(baseTime.Add(time.Duration(d)*24*time.Hour), measured("a", int64(d))))
		}
		now := baseTime.Add(2 * DefaultKeepWeekly)

		deleted, err := s.Prune(t.Context(), now, DefaultKeepAll, DefaultKeepWeekly)
		if err != nil {
			t.Fatalf("Prune() error = %v", err)
		}
		if deleted != 2 {
			t.Errorf("Prune() = %d, want 2", deleted)
		}
		got, err := s.LatestScan(t.Context())
		if err != nil {
			t.Fatalf("LatestScan() after Prune error = %v", err)
		}
		if want := baseTime.Add(48 * time.Hour); !got.FinishedAt.Equal(want) {
			t.Errorf("LatestScan().FinishedAt = %s, want %s", got.FinishedAt, want)
		}
	})
}

func TestPruneExpiredState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		ctx := t.Context()
		now := baseTime.Add(1000 * 24 * time.Hour)
		if _, err := s.SeenActivity(ctx, "expired", now.Add(-2*time.Hour), time.Hour); err != nil {
			t.Fatalf("SeenActivity() error = %v", err)
		}
		if _, err := s.SeenActivity(ctx, "live", now.Add(-30*time.Minute), time.Hour); err != nil {
			t.Fatalf("SeenActivity() error = %v", err)
		}
		if _, _, err := s.RecordSend(ctx, "old", "conversation-1", now.Add(-DefaultKeepWeekly-time.Hour), 0); err != nil {
			t.Fatalf("RecordSend() error = %v", err)
		}
		if _, _, err := s.RecordSend(ctx, "recent", "conversation-1", now.Add(-time.Hour), 0); err != nil {
			t.Fatalf("RecordSend() error = %v", err)
		}

		if _, err := s.Prune(ctx, now, DefaultKeepAll, DefaultKeepWeekly); err != nil {
			t.Fatalf("Prune() error = %v", err)
		}

		tests := []struct {
			query string
			want  []string
		}{
			{`SELECT activity_id FROM seen_activities ORDER BY activity_id`, []string{"live"}},
			{`SELECT send_key FROM sends ORDER BY send_key`, []string{"recent"}},
		}
		for _, tt := range tests {
			if got := queryStrings(t, s, tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("%s after Prune = %v, want %v", tt.query, got, tt.want)
			}
		}
	})
}

func TestPruneInvalidRetention(t *testing.T) {
	tests := []struct {
		name                string
		keepAll, keepWeekly time.Duration
	}{
		{"zero keepAll", 0, DefaultKeepWeekly},
		{"keepWeekly shorter than keepAll", DefaultKeepAll, DefaultKeepAll - time.Hour},
	}
	s := sqliteBackend(t).open(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Prune(t.Context(), baseTime, tt.keepAll, tt.keepWeekly); err == nil {
				t.Errorf("Prune(keepAll %v, keepWeekly %v) error = nil, want an error", tt.keepAll, tt.keepWeekly)
			}
		})
	}
}

func queryStrings(t *testing.T, s *sqlStore, query string) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var values []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		values = append(values, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return values
}
