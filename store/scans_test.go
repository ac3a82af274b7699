package store

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

func TestSaveScanRoundtrip(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		result *scanner.Result
	}{
		{
			name: "every outcome",
			result: newResult(baseTime,
				measured("a", 5<<30),
				scanner.TeamUsage{
					Team:     scanner.Team{ID: "b", DisplayName: "Finance *EMEA* [1](x)"},
					Outcome:  scanner.OutcomeMeasured,
					Quota:    scanner.Quota{Total: 1 << 40, Used: 1<<40 - 1, Remaining: 1, Deleted: 7 << 20, State: "exceeded"},
					Attempts: 3,
				},
				scanner.TeamUsage{Team: scanner.Team{ID: "c", DisplayName: "Empty quota"}, Outcome: scanner.OutcomeUnknown, Attempts: 1},
				failed("d", scanner.OutcomeNoDrive),
				failed("e", scanner.OutcomeForbidden),
				failed("f", scanner.OutcomeFailed),
			),
		},
		{
			name:   "no Teams",
			result: newResult(baseTime),
		},
		{
			name: "nanoseconds and another time zone",
			result: &scanner.Result{
				TenantID:   "tenant-2",
				StartedAt:  time.Date(2025, 3, 1, 10, 0, 0, 123456789, berlin),
				FinishedAt: time.Date(2025, 3, 1, 10, 5, 0, 987654321, berlin),
				Teams:      []scanner.TeamUsage{measured("a", 1)},
			},
		},
		{
			name:   "more Teams than one insert batch",
			result: newResult(baseTime, manyTeams(2*teamBatchSize+7)...),
		},
		{
			name: "channel sites",
			result: newResult(baseTime,
				scanner.TeamUsage{
					Team:     scanner.Team{ID: "lib", DisplayName: "The Library"},
					Outcome:  scanner.OutcomeMeasured,
					Quota:    scanner.Quota{Total: 1 << 40, Used: 3 << 30, Remaining: 1<<40 - 3<<30, State: "normal"},
					Attempts: 1,
					Sites: []scanner.SiteUsage{
						{Kind: scanner.SiteMain, DriveID: "b!main", Outcome: scanner.OutcomeMeasured, Quota: scanner.Quota{Total: 1 << 40, Used: 3 << 30}},
						{Kind: scanner.SiteChannel, ChannelID: "19:a@thread.tacv2", ChannelName: "Archive", MembershipType: "private", DriveID: "b!archive", Outcome: scanner.OutcomeMeasured, Quota: scanner.Quota{Total: 1 << 40, Used: 2 << 30, Deleted: 5}},
						{Kind: scanner.SiteChannel, ChannelID: "19:b@thread.tacv2", ChannelName: "New", MembershipType: "shared", Outcome: scanner.OutcomeNoDrive, Reason: "HTTP 404"},
					},
				},
				scanner.TeamUsage{
					Team:           scanner.Team{ID: "art", DisplayName: "Art"},
					Outcome:        scanner.OutcomeMeasured,
					Quota:          scanner.Quota{Total: 1 << 40, Used: 1 << 30},
					Attempts:       1,
					Sites:          []scanner.SiteUsage{{Kind: scanner.SiteMain, Outcome: scanner.OutcomeMeasured, Quota: scanner.Quota{Total: 1 << 40, Used: 1 << 30}}},
					ChannelsReason: "HTTP 403 listing channels",
				},
			),
		},
		{
			name:   "same Team listed twice",
			result: newResult(baseTime, measured("a", 1), measured("a", 2)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b testBackend) {
				s := b.open(t)
				saveScan(t, s, tt.result)

				got, err := s.LatestScan(t.Context())
				if err != nil {
					t.Fatalf("LatestScan() error = %v", err)
				}
				want := storedForm(tt.result)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("LatestScan() = %+v\nwant %+v", got, want)
				}
			})
		})
	}
}

func TestSaveScanInvalidResult(t *testing.T) {
	tests := []struct {
		name   string
		result *scanner.Result
	}{
		{"nil", nil},
		{"zero FinishedAt", &scanner.Result{StartedAt: baseTime}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sqliteBackend(t).open(t)
			if _, err := s.SaveScan(t.Context(), tt.result); err == nil {
				t.Errorf("SaveScan() error = nil, want an error")
			}
			if _, err := s.LatestScan(t.Context()); !errors.Is(err, ErrNotFound) {
				t.Errorf("LatestScan() after a rejected save error = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestLatestScanEmptyStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		if _, err := s.LatestScan(t.Context()); !errors.Is(err, ErrNotFound) {
			t.Errorf("LatestScan() error = %v, want ErrNotFound", err)
		}
	})
}

func TestLatestScanOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		newer := newResult(baseTime.Add(time.Hour), measured("a", 2))
		older := newResult(baseTime, measured("a", 1))
		// Saved out of order: the latest scan is the one that finished last,
		// not the one saved last.
		saveScan(t, s, newer)
		saveScan(t, s, older)

		got, err := s.LatestScan(t.Context())
		if err != nil {
			t.Fatalf("LatestScan() error = %v", err)
		}
		if !got.FinishedAt.Equal(newer.FinishedAt) {
			t.Errorf("LatestScan().FinishedAt = %s, want %s", got.FinishedAt, newer.FinishedAt)
		}
	})
}

func TestSaveScanInvisibleUntilCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		writer := b.open(t)
		reader := b.open(t)
		previous := newResult(baseTime, measured("a", 1))
		saveScan(t, writer, previous)

		paused := make(chan struct{})
		resume := make(chan struct{})
		release := sync.OnceFunc(func() { close(resume) })
		t.Cleanup(release) // Runs before the stores close when the test fails early.
		writer.afterTeamBatch = func(saved int) {
			if saved == teamBatchSize {
				close(paused)
				<-resume
			}
		}
		next := newResult(baseTime.Add(24*time.Hour), manyTeams(3*teamBatchSize)...)
		saved := make(chan error, 1)
		go func() {
			_, err := writer.SaveScan(t.Context(), next)
			saved <- err
		}()

		select {
		case <-paused:
		case err := <-saved:
			t.Fatalf("SaveScan() returned %v before it reached the second batch", err)
		case <-time.After(time.Minute):
			t.Fatal("SaveScan() did not reach the second batch within a minute")
		}

		for _, s := range []*sqlStore{reader, writer} {
			got, err := s.LatestScan(t.Context())
			if err != nil {
				t.Fatalf("LatestScan() during the save error = %v", err)
			}
			if !got.FinishedAt.Equal(previous.FinishedAt) || len(got.Teams) != 1 {
				t.Errorf("LatestScan() during the save = scan finished %s with %d Teams, want the previous scan finished %s with 1 Team",
					got.FinishedAt, len(got.Teams), previous.FinishedAt)
			}
		}

		release()
		if err := <-saved; err != nil {
			t.Fatalf("SaveScan() error = %v", err)
		}
		got, err := reader.LatestScan(t.Context())
		if err != nil {
			t.Fatalf("LatestScan() after the save error = %v", err)
		}
		if !reflect.DeepEqual(got, storedForm(next)) {
			t.Errorf("LatestScan() after the save = scan finished %s with %d Teams, want the new scan with %d Teams",
				got.FinishedAt, len(got.Teams), len(next.Teams))
		}
	})
}

func TestScanAt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		first := newResult(baseTime, measured("a", 1))
		second := newResult(baseTime.Add(24*time.Hour), measured("a", 2))
		third := newResult(baseTime.Add(48*time.Hour), measured("a", 3))
		for _, r := range []*scanner.Result{first, second, third} {
			saveScan(t, s, r)
		}

		tests := []struct {
			name string
			at   time.Time
			want *scanner.Result
		}{
			{"before every scan", baseTime.Add(-time.Microsecond), nil},
			{"exactly the first", baseTime, first},
			{"just before the second", second.FinishedAt.Add(-time.Microsecond), first},
			{"exactly the second", second.FinishedAt, second},
			{"after every scan", baseTime.Add(1000 * time.Hour), third},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ScanAt(t.Context(), tt.at)
				if tt.want == nil {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("ScanAt(%s) error = %v, want ErrNotFound", tt.at, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ScanAt(%s) error = %v", tt.at, err)
				}
				if !reflect.DeepEqual(got, storedForm(tt.want)) {
					t.Errorf("ScanAt(%s) = scan finished %s, want %s", tt.at, got.FinishedAt, tt.want.FinishedAt)
				}
			})
		}
	})
}
