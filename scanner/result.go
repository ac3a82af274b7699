// Package scanner owns Microsoft Graph access and the storage scan: it lists
// every Team in a tenant, reads the quota of each Team's SharePoint drive and
// returns one outcome per Team.
package scanner

import (
	"sort"
	"time"
)

// Outcome is how the scan of one Team ended.
type Outcome string

// Every Team in a Result carries exactly one of these outcomes.
const (
	// OutcomeMeasured means the drive answered with a non-empty quota.
	OutcomeMeasured Outcome = "measured"
	// OutcomeUnknown means the drive answered but every quota field was zero,
	// which SharePoint does when it does not report usage. It is not 0 bytes.
	OutcomeUnknown Outcome = "unknown"
	// OutcomeNoDrive means Graph answered 404: the Team's SharePoint site is
	// not provisioned yet, or the group was just deleted.
	OutcomeNoDrive Outcome = "no_drive"
	// OutcomeForbidden means Graph answered 401 or 403 for this Team's drive.
	OutcomeForbidden Outcome = "forbidden"
	// OutcomeFailed means every attempt failed; Reason says why.
	OutcomeFailed Outcome = "failed"
)

// Team is a Microsoft 365 group that has a Team, as Graph lists it.
type Team struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// Quota is a drive's quota facet from Graph, in bytes.
type Quota struct {
	Total     int64  `json:"total"`
	Used      int64  `json:"used"`
	Remaining int64  `json:"remaining"`
	Deleted   int64  `json:"deleted"`
	State     string `json:"state,omitempty"`
}

// IsZero reports whether every numeric field is zero, which SharePoint
// returns when it does not expose usage for a drive.
func (q Quota) IsZero() bool {
	return q.Total == 0 && q.Used == 0 && q.Remaining == 0 && q.Deleted == 0
}

// TeamUsage is the outcome of scanning one Team.
type TeamUsage struct {
	Team    Team    `json:"team"`
	Outcome Outcome `json:"outcome"`
	// Quota is meaningful only when Outcome is OutcomeMeasured.
	Quota Quota `json:"quota"`
	// Reason explains any outcome other than OutcomeMeasured, for example
	// "HTTP 429 after 6 attempts".
	Reason string `json:"reason,omitempty"`
	// Attempts counts the HTTP requests made for this Team's drive.
	Attempts int `json:"attempts"`
}

// Result is one complete scan of a tenant.
type Result struct {
	TenantID   string      `json:"tenantId,omitempty"`
	StartedAt  time.Time   `json:"startedAt"`
	FinishedAt time.Time   `json:"finishedAt"`
	Teams      []TeamUsage `json:"teams"`
}

// TotalUsed returns the sum of used bytes over measured Teams.
func (r *Result) TotalUsed() int64 {
	var total int64
	for _, t := range r.Teams {
		if t.Outcome == OutcomeMeasured {
			total += t.Quota.Used
		}
	}
	return total
}

// Count returns how many Teams ended with the given outcome.
func (r *Result) Count(o Outcome) int {
	n := 0
	for _, t := range r.Teams {
		if t.Outcome == o {
			n++
		}
	}
	return n
}

// SortTeams orders measured Teams by used bytes, largest first, then every
// other outcome after them. Ties break on display name, then id, so the
// order is stable across scans.
func SortTeams(teams []TeamUsage) {
	sort.SliceStable(teams, func(i, j int) bool {
		a, b := teams[i], teams[j]
		am, bm := a.Outcome == OutcomeMeasured, b.Outcome == OutcomeMeasured
		if am != bm {
			return am
		}
		if am && a.Quota.Used != b.Quota.Used {
			return a.Quota.Used > b.Quota.Used
		}
		if a.Team.DisplayName != b.Team.DisplayName {
			return a.Team.DisplayName < b.Team.DisplayName
		}
		return a.Team.ID < b.Team.ID
	})
}
