package cards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

// digestScan is a small tenant with one Team of each kind the digest lists.
func digestScan() *scanner.Result {
	finished := time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC)
	team := func(id, name string, used, total, deleted int64, state string) scanner.TeamUsage {
		return scanner.TeamUsage{
			Team:    scanner.Team{ID: id, DisplayName: name},
			Outcome: scanner.OutcomeMeasured,
			Quota:   scanner.Quota{Total: total, Used: used, Remaining: total - used, Deleted: deleted, State: state},
		}
	}
	return &scanner.Result{
		TenantID:   "tenant-1",
		StartedAt:  finished.Add(-time.Minute),
		FinishedAt: finished,
		Teams: []scanner.TeamUsage{
			team("t1", "The *Library*", 900<<30, 1<<40, 20<<30, QuotaCritical),
			team("t2", "Science", 300<<30, 1<<40, 0, QuotaNormal),
			team("t3", "Drama", 950<<30, 1000<<30, 1<<30, QuotaExceeded),
			{Team: scanner.Team{ID: "t4", DisplayName: "Archive"}, Outcome: scanner.OutcomeFailed, Reason: "HTTP 503 after 6 attempts"},
		},
	}
}

func TestDigestCardsGolden(t *testing.T) {
	tests := []struct {
		name string
		card AdaptiveCard
	}{
		{"digest", Digest(DigestSummary{
			Period:      time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC),
			Scan:        digestScan(),
			Growth:      map[string]int64{"t1": 50 << 30, "t2": -(1 << 30), "t3": 5 << 30},
			GrowthFrom:  time.Date(2026, 3, 23, 7, 0, 0, 0, time.UTC),
			TenantQuota: 4 << 40,
		})},
		{"digest_no_history", Digest(DigestSummary{Scan: digestScan()})},
		{"alert", Alert(AlertSummary{
			ScanFinished: time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC),
			Tenant:       &TenantCrossing{Threshold: 80, Used: 82 << 30, Quota: 100 << 30},
			Teams:        []TeamCrossing{{Team: digestScan().Teams[2], From: QuotaNearing, State: QuotaExceeded}},
		})},
		{"digest_status", DigestStatusCard(DigestStatus{
			Targets:  []DigestTarget{{Name: "IT › Storage", Active: true}, {Name: "Old › General", Reason: "the bot was removed"}},
			Next:     time.Date(2026, 4, 6, 7, 0, 0, 0, time.UTC).In(mustLocation(t, "Europe/London")),
			Schedule: "0 8 * * 1 (Europe/London)",
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDigestGolden(t, tt.card)
		})
	}
}

func TestDigestCardEscapesNames(t *testing.T) {
	raw, err := json.Marshal(Digest(DigestSummary{Scan: digestScan()}))
	if err != nil {
		t.Fatalf("encode card: %v", err)
	}
	if !strings.Contains(string(raw), `The \\*Library\\*`) {
		t.Errorf("digest card does not escape the Markdown in a Team name:\n%s", raw)
	}
}

func mustLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load location %s: %v", name, err)
	}
	return loc
}

// checkDigestGolden compares card with testdata/<test name>.golden.json as
// JSON values. With -update it rewrites the file.
func checkDigestGolden(t *testing.T, card AdaptiveCard) {
	t.Helper()
	got, err := json.MarshalIndent(card, "", "  ")
	if err != nil {
		t.Fatalf("encode card: %v", err)
	}
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatalf("write golden file: %v", err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./cards -run TestDigestCardsGolden -update to create it): %v", err)
	}
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Fatalf("decode card: %v", err)
	}
	if err := json.Unmarshal(want, &wantValue); err != nil {
		t.Fatalf("decode golden file %s: %v", path, err)
	}
	gotJSON, _ := json.Marshal(gotValue)
	wantJSON, _ := json.Marshal(wantValue)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("card differs from %s (run go test ./cards -run TestDigestCardsGolden -update to accept it)\ngot:\n%s", path, got)
	}
}
