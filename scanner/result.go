// Package scanner owns Microsoft Graph access and the storage scan: it lists
// every Team in a tenant, reads the quota of each Team's SharePoint drive and
// returns one outcome per Team.
package scanner

import (
	"sort"
	"time"
)

// Outcome is the result of scanning one Team.
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
	// OutcomeFailed means every attempt failed. Reason gives the cause.
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
	// Attempts counts the HTTP requests that carried this Team's drive
	// lookup, alone or in a JSON batch.
	Attempts int `json:"attempts"`
	// Sites is the per-site breakdown: the main site first, then the site
	// of each private and shared channel. It is nil when the scan did not
	// look up channel sites.
	Sites []SiteUsage `json:"sites,omitempty"`
	// ChannelsReason explains why the Team's channels could not be listed,
	// in which case Sites holds only the main site.
	ChannelsReason string `json:"channelsReason,omitempty"`
}

// Kinds of SiteUsage.
const (
	// SiteMain is the Team's own SharePoint site, the group's drive.
	SiteMain = "main"
	// SiteChannel is the separate SharePoint site of a private or shared
	// channel.
	SiteChannel = "channel"
)

// SiteUsage is the storage of one SharePoint site of a Team.
type SiteUsage struct {
	// Kind is SiteMain or SiteChannel.
	Kind string `json:"kind"`
	// ChannelID, ChannelName and MembershipType ("private" or "shared")
	// describe a channel site and are empty for the main site.
	ChannelID      string `json:"channelId,omitempty"`
	ChannelName    string `json:"channelName,omitempty"`
	MembershipType string `json:"membershipType,omitempty"`
	DriveID        string `json:"driveId,omitempty"`
	// Outcome is OutcomeNoDrive for a channel whose site SharePoint has not
	// provisioned yet.
	Outcome Outcome `json:"outcome"`
	// Quota is meaningful only when Outcome is OutcomeMeasured.
	Quota  Quota  `json:"quota"`
	Reason string `json:"reason,omitempty"`
}

// TotalUsed returns the used bytes of the Team's main site plus those of its
// measured channel sites. Channel sites count only when the main site was
// measured, so that a Team's total never rests on a part of its sites.
func (t TeamUsage) TotalUsed() int64 {
	if t.Outcome != OutcomeMeasured {
		return 0
	}
	return t.Quota.Used + t.ChannelUsed()
}

// TotalDeleted returns the recycle bin bytes of the main site plus those of
// the measured channel sites, with the same rule as TotalUsed.
func (t TeamUsage) TotalDeleted() int64 {
	if t.Outcome != OutcomeMeasured {
		return 0
	}
	total := t.Quota.Deleted
	for _, s := range t.Sites {
		if s.Kind == SiteChannel && s.Outcome == OutcomeMeasured {
			total += s.Quota.Deleted
		}
	}
	return total
}

// ChannelUsed returns the used bytes of the measured channel sites alone.
func (t TeamUsage) ChannelUsed() int64 {
	var total int64
	for _, s := range t.Sites {
		if s.Kind == SiteChannel && s.Outcome == OutcomeMeasured {
			total += s.Quota.Used
		}
	}
	return total
}

// Result is one complete scan of a tenant.
type Result struct {
	TenantID   string      `json:"tenantId,omitempty"`
	StartedAt  time.Time   `json:"startedAt"`
	FinishedAt time.Time   `json:"finishedAt"`
	Teams      []TeamUsage `json:"teams"`
}

// TotalUsed returns the sum of used bytes over measured Teams, channel
// sites included (see TeamUsage.TotalUsed).
func (r *Result) TotalUsed() int64 {
	var total int64
	for _, t := range r.Teams {
		total += t.TotalUsed()
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

// SortTeams orders measured Teams by TotalUsed, largest first, then every
// other outcome after them. Ties break on display name, then id, so the
// order is stable across scans.
func SortTeams(teams []TeamUsage) {
	sort.SliceStable(teams, func(i, j int) bool {
		a, b := teams[i], teams[j]
		am, bm := a.Outcome == OutcomeMeasured, b.Outcome == OutcomeMeasured
		if am != bm {
			return am
		}
		if au, bu := a.TotalUsed(), b.TotalUsed(); am && au != bu {
			return au > bu
		}
		if a.Team.DisplayName != b.Team.DisplayName {
			return a.Team.DisplayName < b.Team.DisplayName
		}
		return a.Team.ID < b.Team.ID
	})
}
