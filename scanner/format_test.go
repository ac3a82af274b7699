package scanner

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sampleResult has one Team of each outcome, deliberately out of order.
func sampleResult() *Result {
	return &Result{
		TenantID:   "tenant-1",
		StartedAt:  testNow,
		FinishedAt: testNow,
		Teams: []TeamUsage{
			{Team: Team{ID: "id-fail", DisplayName: "Failing"}, Outcome: OutcomeFailed, Reason: "HTTP 503 after 6 attempts", Attempts: 6},
			{Team: Team{ID: "id-small", DisplayName: "Small"}, Outcome: OutcomeMeasured, Quota: Quota{Used: 1024, Total: 1 << 30, Deleted: 0, State: "normal"}, Attempts: 1},
			{Team: Team{ID: "id-unknown", DisplayName: "Unknown"}, Outcome: OutcomeUnknown, Reason: reasonUnknownQuota, Attempts: 1},
			{Team: Team{ID: "id-big", DisplayName: "=HYPERLINK(\"x\")"}, Outcome: OutcomeMeasured, Quota: Quota{Used: 5 << 30, Total: 1 << 40, Deleted: 12, State: "nearing"}, Attempts: 1},
			{Team: Team{ID: "id-404", DisplayName: "+Plus"}, Outcome: OutcomeNoDrive, Reason: "HTTP 404 itemNotFound: The resource could not be found.", Attempts: 1},
			{Team: Team{ID: "id-403", DisplayName: "Secret, \"Team\""}, Outcome: OutcomeForbidden, Reason: "HTTP 403 accessDenied: Access denied", Attempts: 1},
		},
	}
}

func TestWriteCSV(t *testing.T) {
	r := sampleResult()
	original := slices.Clone(r.Teams)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); err != nil {
		t.Fatalf("WriteCSV: %v", err)
	}

	header, _, _ := strings.Cut(buf.String(), "\n")
	if header != "team_id,display_name,used_bytes,total_bytes,deleted_bytes,state,error" {
		t.Errorf("header = %q", header)
	}

	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("read CSV back: %v", err)
	}
	want := [][]string{
		{"team_id", "display_name", "used_bytes", "total_bytes", "deleted_bytes", "state", "error"},
		{"id-big", "'=HYPERLINK(\"x\")", "5368709120", "1099511627776", "12", "nearing", ""},
		{"id-small", "Small", "1024", "1073741824", "0", "normal", ""},
		{"id-404", "'+Plus", "", "", "", "", "no_drive: HTTP 404 itemNotFound: The resource could not be found."},
		{"id-fail", "Failing", "", "", "", "", "failed: HTTP 503 after 6 attempts"},
		{"id-403", "Secret, \"Team\"", "", "", "", "", "forbidden: HTTP 403 accessDenied: Access denied"},
		{"id-unknown", "Unknown", "", "", "", "", "unknown: " + reasonUnknownQuota},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %d, want %d:\n%v", len(rows), len(want), rows)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
	if !slices.EqualFunc(r.Teams, original, func(a, b TeamUsage) bool { return reflect.DeepEqual(a, b) }) {
		t.Error("WriteCSV reordered the caller's Result")
	}
}

func TestEscapeFormula(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"Team = A", "Team = A"},
		{"", ""},
		{"Ünïcode", "Ünïcode"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := escapeFormula(tt.in); got != tt.want {
				t.Errorf("escapeFormula(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleResult()); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}

	var got Result
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("decode output: %v", err)
	}
	if got.TenantID != "tenant-1" || len(got.Teams) != 6 {
		t.Fatalf("decoded result = %+v, want tenant-1 with 6 teams", got)
	}
	if got.Teams[0].Team.ID != "id-big" || got.Teams[0].Quota.Used != 5<<30 {
		t.Errorf("first team = %+v, want id-big with its quota", got.Teams[0])
	}
	if got.Teams[3].Outcome != OutcomeFailed || got.Teams[3].Reason != "HTTP 503 after 6 attempts" {
		t.Errorf("fourth team = %+v, want the failed team with its reason", got.Teams[3])
	}
}

func TestWriteTable(t *testing.T) {
	r := sampleResult()
	r.Teams[1].Team.DisplayName = "Small\x1b[31m\tred"
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")

	if !strings.HasPrefix(lines[0], "TEAM ") || !strings.Contains(lines[0], "NOTE") {
		t.Errorf("header = %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "=HYPERLINK") || !strings.Contains(lines[1], "5.0 GiB") || !strings.Contains(lines[1], "1.0 TiB") {
		t.Errorf("first row = %q, want the largest team with binary sizes", lines[1])
	}
	if strings.ContainsAny(out, "\x1b") {
		t.Errorf("table contains a control character:\n%q", out)
	}
	if !strings.Contains(out, "failed: HTTP 503 after 6 attempts") {
		t.Errorf("table lacks the failed team's reason:\n%s", out)
	}
	wantSummary := "6 teams, 5.0 GiB used by 2 measured; 1 unknown, 1 without drive, 1 forbidden, 1 failed"
	if last := lines[len(lines)-1]; last != wantSummary {
		t.Errorf("summary = %q, want %q", last, wantSummary)
	}
	// Columns line up: USED starts at the same offset in every row.
	col := strings.Index(lines[0], "USED")
	for _, line := range lines[1:7] {
		if len(line) <= col || line[col-2:col] != "  " {
			t.Errorf("row %q does not align with the USED column at %d", line, col)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1.0 MiB"},
		{5 << 30, "5.0 GiB"},
		{1 << 40, "1.0 TiB"},
		{1<<62 + 1<<61, "6.0 EiB"},
		{-2048, "-2.0 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatBytes(tt.n); got != tt.want {
				t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}
