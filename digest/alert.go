package digest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/store"
)

// quotaStates names the levels of cards.QuotaLevel.
var quotaStates = []string{cards.QuotaNormal, cards.QuotaNearing, cards.QuotaCritical, cards.QuotaExceeded}

// checkAlerts compares the latest scan with the last scan checked before
// it, or with the scan before it when none was checked in this process,
// and posts one alert per target for the crossings between them. A
// crossing is announced by the scan that first shows it, so it is not
// announced again until a later scan shows it dropped back below.
//
// NOTE: alerts use the scans that the bot and the digest make anyway; the
// alert check starts none. A failed alert post is logged and not tried
// again, after the connector's own retries.
func (s *Service) checkAlerts(ctx context.Context) error {
	latest, err := s.store.LatestScan(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check quota alerts: %w", err)
	}

	s.mu.Lock()
	checked := s.alertChecked
	s.mu.Unlock()
	if checked.Equal(latest.FinishedAt) {
		return nil
	}
	if checked.IsZero() || checked.After(latest.FinishedAt) {
		// Stored times have microsecond precision, so this finds the scan
		// just before the latest one.
		checked = latest.FinishedAt.Add(-time.Microsecond)
	}

	previous, err := s.store.ScanAt(ctx, checked)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("check quota alerts: %w", err)
	}
	if err == nil {
		if err := s.postAlert(ctx, s.crossings(previous, latest)); err != nil {
			return err
		}
	}

	s.mu.Lock()
	s.alertChecked = latest.FinishedAt
	s.mu.Unlock()
	return nil
}

// postAlert posts the alert to every active target, once per scan and
// target.
func (s *Service) postAlert(ctx context.Context, alert cards.AlertSummary) error {
	if alert.Tenant == nil && len(alert.Teams) == 0 {
		return nil
	}
	targets, err := s.activeTargets(ctx)
	if err != nil {
		return err
	}

	card := cards.Alert(alert)
	sent := 0
	for _, t := range targets {
		result := s.post(ctx, t, alertKey(alert.ScanFinished, t.ConversationID), card)
		if result.Outcome == Sent {
			sent++
		}
	}
	s.logger.Info("quota alert checked", "scan_finished", alert.ScanFinished, "tenant_crossing", alert.Tenant != nil,
		"team_crossings", len(alert.Teams), "targets", len(targets), "sent", sent)
	return nil
}

// crossings returns what rose between two scans: the highest tenant
// threshold that the tenant's used share crossed upwards, and the Teams
// whose quota state rose to nearing, critical or exceeded. A Team that
// the older scan could not measure is left out, because its state there
// is unknown, and a Team new in the newer scan counts as normal before.
func (s *Service) crossings(older, newer *scanner.Result) cards.AlertSummary {
	alert := cards.AlertSummary{ScanFinished: newer.FinishedAt}

	if s.tenantQuota > 0 {
		before := share(older.TotalUsed(), s.tenantQuota)
		after := share(newer.TotalUsed(), s.tenantQuota)
		for _, threshold := range s.thresholds {
			if before < threshold && after >= threshold {
				alert.Tenant = &cards.TenantCrossing{Threshold: threshold, Used: newer.TotalUsed(), Quota: s.tenantQuota}
			}
		}
	}

	olderTeams := make(map[string]scanner.TeamUsage, len(older.Teams))
	for _, t := range older.Teams {
		olderTeams[t.Team.ID] = t
	}
	for _, t := range newer.Teams {
		level := cards.QuotaLevel(t.Quota.State)
		if t.Outcome != scanner.OutcomeMeasured || level == 0 {
			continue
		}
		previousLevel := 0
		if o, listed := olderTeams[t.Team.ID]; listed {
			if o.Outcome != scanner.OutcomeMeasured {
				continue
			}
			previousLevel = cards.QuotaLevel(o.Quota.State)
		}
		if level > previousLevel {
			alert.Teams = append(alert.Teams, cards.TeamCrossing{Team: t, From: quotaStates[previousLevel], State: quotaStates[level]})
		}
	}
	return alert
}

// share returns used as a percentage of quota.
func share(used, quota int64) float64 {
	return float64(used) / float64(quota) * 100
}

// alertKey names the alert of one scan for one target in the send log.
func alertKey(scanFinished time.Time, conversationID string) string {
	return "alert/" + scanFinished.UTC().Format(time.RFC3339Nano) + "/" + conversationID
}
