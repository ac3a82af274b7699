package scanner

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
)

// csvHeader is the header row of WriteCSV.
var csvHeader = []string{"team_id", "display_name", "used_bytes", "total_bytes", "deleted_bytes", "state", "error"}

// WriteCSV writes one row per Team, largest first. Measured Teams fill the
// byte columns: used and deleted bytes cover the main site and the measured
// channel sites, total bytes and state are the main site's quota. Every other outcome leaves them empty and puts the outcome
// and its reason in the error column, for example
// "failed: HTTP 503 after 6 attempts".
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write CSV header: %w", err)
	}

	for _, t := range sortedTeams(r) {
		row := []string{t.Team.ID, t.Team.DisplayName, "", "", "", "", ""}
		if t.Outcome == OutcomeMeasured {
			row[2] = strconv.FormatInt(t.TotalUsed(), 10)
			row[3] = strconv.FormatInt(t.Quota.Total, 10)
			row[4] = strconv.FormatInt(t.TotalDeleted(), 10)
			row[5] = t.Quota.State
		} else {
			row[6] = outcomeText(t)
		}
		for _, i := range []int{0, 1, 5, 6} {
			row[i] = escapeFormula(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write CSV row for team %s: %w", t.Team.ID, err)
		}
	}

	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// WriteJSON writes r as indented JSON with its Teams largest first.
func WriteJSON(w io.Writer, r *Result) error {
	sorted := *r
	sorted.Teams = sortedTeams(r)

	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&sorted); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// WriteTable writes an aligned text table, largest first, with sizes in
// binary units, followed by one summary line.
func WriteTable(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TEAM\tUSED\tTOTAL\tDELETED\tSTATE\tNOTE")
	for _, t := range sortedTeams(r) {
		name := printable(t.Team.DisplayName)
		if t.Outcome == OutcomeMeasured {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", name,
				FormatBytes(t.TotalUsed()), FormatBytes(t.Quota.Total), FormatBytes(t.TotalDeleted()),
				printable(t.Quota.State))
			continue
		}
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\n", name, printable(outcomeText(t)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}

	_, err := fmt.Fprintf(w, "\n%d teams, %s used by %d measured; %d unknown, %d without drive, %d forbidden, %d failed\n",
		len(r.Teams), FormatBytes(r.TotalUsed()), r.Count(OutcomeMeasured), r.Count(OutcomeUnknown),
		r.Count(OutcomeNoDrive), r.Count(OutcomeForbidden), r.Count(OutcomeFailed))
	if err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// FormatBytes formats n in binary units with one decimal, for example
// "1.5 GiB". Values below 1 KiB are whole bytes.
func FormatBytes(n int64) string {
	const unit = 1024
	sign := ""
	value := float64(n)
	if n < 0 {
		sign = "-"
		value = -value
	}
	if value < unit {
		return fmt.Sprintf("%s%d B", sign, int64(value))
	}

	prefixes := "KMGTPE"
	exp := 0
	value /= unit
	for value >= unit && exp < len(prefixes)-1 {
		value /= unit
		exp++
	}
	// Rounding can carry 1023.95 up to "1024.0"; show the next unit instead.
	if value >= unit-0.05 && exp < len(prefixes)-1 {
		value /= unit
		exp++
	}
	return fmt.Sprintf("%s%.1f %ciB", sign, value, prefixes[exp])
}

// sortedTeams returns a sorted copy of r's Teams, so that writers never
// reorder a Result that a cache shares.
func sortedTeams(r *Result) []TeamUsage {
	teams := slices.Clone(r.Teams)
	SortTeams(teams)
	return teams
}

// outcomeText is the outcome and its reason, for example
// "no_drive: HTTP 404 itemNotFound: ...".
func outcomeText(t TeamUsage) string {
	if t.Reason == "" {
		return string(t.Outcome)
	}
	return string(t.Outcome) + ": " + t.Reason
}

// escapeFormula prefixes a cell that a spreadsheet would run as a formula
// with a single quote. OWASP's "CSV Injection" page lists = + - @ and also
// tab and carriage return as leading characters to neutralise.
func escapeFormula(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// printable replaces control characters, which could break the table or
// drive the terminal, with spaces.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
