// Package digest posts the weekly storage digest and quota alerts to the
// Team channels registered as targets, once per period and target across
// restarts and replicas.
package digest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/connector"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/schedule"
	"github.com/storagebot/storagebot/store"
)

const (
	// DefaultCatchUp is how late a missed digest may still be posted, for
	// example after the bot was down at the scheduled time.
	DefaultCatchUp = 24 * time.Hour

	// JobEvery is how often the leader checks for a due digest and for
	// alerts. The schedule's runs are found by cron, not by this period.
	JobEvery = time.Minute

	// minCatchUp is the smallest catch-up window that still lets the
	// leader, which checks every JobEvery, post on time.
	minCatchUp = 2 * JobEvery

	// pendingTimeout is how old a pending send record must be before
	// another attempt takes it over. It exceeds the longest connector call:
	// five attempts with up to 60 s between them and a 60 s HTTP timeout.
	pendingTimeout = 15 * time.Minute

	// week is how far back the digest compares usage.
	week = 7 * 24 * time.Hour
)

// Store is the part of store.Store that the digest uses.
type Store interface {
	SaveConversation(ctx context.Context, ref store.ConversationReference) error
	Conversations(ctx context.Context, kind string) ([]store.ConversationReference, error)
	DeleteConversation(ctx context.Context, conversationID string) error
	RecordSend(ctx context.Context, key, conversationID string, now time.Time, retryAfter time.Duration) (store.Send, bool, error)
	CompleteSend(ctx context.Context, key, activityID string, now time.Time) error
	LatestScan(ctx context.Context) (*scanner.Result, error)
	ScanAt(ctx context.Context, t time.Time) (*scanner.Result, error)
	Growth(ctx context.Context, since time.Time) (*store.Growth, error)
}

// Source returns a fresh scan, or the latest one when it is fresh enough.
// snapshot.Source implements it.
type Source interface {
	Get(ctx context.Context) (*scanner.Result, error)
}

// Connector starts channel threads. connector.Client implements it and
// retries throttled and failed calls with backoff.
type Connector interface {
	CreateConversation(ctx context.Context, serviceURL string, params schema.ConversationParameters) (schema.ConversationResourceResponse, error)
}

// Config configures a Service.
type Config struct {
	// Store keeps the targets, the send log and the scan history. Required.
	Store Store
	// Source provides the scan a digest describes. Required.
	Source Source
	// Connector posts digests and alerts. Required.
	Connector Connector
	// Schedule sets when digests are due. Required.
	Schedule *Schedule
	// CatchUp is how long after a scheduled run its digest may still be
	// posted (default DefaultCatchUp, at least two minutes).
	CatchUp time.Duration
	// Thresholds are percentages of TenantQuota, for example 80 and 95.
	// Crossing one upwards posts an alert. They need TenantQuota.
	Thresholds []float64
	// TenantQuota is the tenant's SharePoint storage in bytes, zero when
	// unknown.
	TenantQuota int64
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives sends, skips and failures. Nil discards them.
	Logger *slog.Logger
	// OnSent, when set, is called once for every digest this service posts,
	// for example to count it in a metric.
	OnSent func()
}

// Service posts digests and alerts. Its methods are safe for concurrent
// use.
type Service struct {
	onSent      func()
	store       Store
	source      Source
	connector   Connector
	schedule    *Schedule
	catchUp     time.Duration
	thresholds  []float64
	tenantQuota int64
	now         func() time.Time
	logger      *slog.Logger

	// mu guards the fields below, which only save store round trips: the
	// send log decides what is sent.
	mu sync.Mutex
	// done holds the keys of sends known to be complete.
	done map[string]bool
	// skipped is the last period logged as missed beyond the catch-up.
	skipped time.Time
	// alertChecked is when the last scan checked for alerts finished.
	alertChecked time.Time
}

// Outcome is the result of posting one target's message.
type Outcome string

// Outcomes of a send.
const (
	// Sent means this call posted the message.
	Sent Outcome = "sent"
	// AlreadySent means the send log shows the message as posted.
	AlreadySent Outcome = "already sent"
	// InProgress means another process recorded the send less than
	// pendingTimeout ago and may still be posting it.
	InProgress Outcome = "in progress elsewhere"
	// Deactivated means the Bot Connector returned 403 or 404, so the
	// target was marked inactive.
	Deactivated Outcome = "target marked inactive"
	// Failed means the post failed. The send is tried again once its
	// record is older than pendingTimeout, within the catch-up window.
	Failed Outcome = "failed"
)

// SendResult is the outcome of one target's message.
type SendResult struct {
	Target  Target
	Outcome Outcome
	// ActivityID is the posted message's id, when the outcome is Sent.
	ActivityID string
	// Err is set when the outcome is Failed or Deactivated.
	Err error
}

// Report is the outcome of one period's digest.
type Report struct {
	// Period is the scheduled run that the digest belongs to.
	Period  time.Time
	Results []SendResult
}

// Count returns how many results had the outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, result := range r.Results {
		if result.Outcome == o {
			n++
		}
	}
	return n
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("create digest service: missing Store")
	case cfg.Source == nil:
		return nil, errors.New("create digest service: missing Source")
	case cfg.Connector == nil:
		return nil, errors.New("create digest service: missing Connector")
	case cfg.Schedule == nil:
		return nil, errors.New("create digest service: missing Schedule")
	}
	catchUp := cfg.CatchUp
	if catchUp == 0 {
		catchUp = DefaultCatchUp
	}
	if catchUp < minCatchUp {
		return nil, fmt.Errorf("create digest service: catch-up window %v is shorter than %v", catchUp, minCatchUp)
	}
	thresholds, err := checkThresholds(cfg.Thresholds, cfg.TenantQuota)
	if err != nil {
		return nil, fmt.Errorf("create digest service: %w", err)
	}

	s := &Service{
		onSent:      cfg.OnSent,
		store:       cfg.Store,
		source:      cfg.Source,
		connector:   cfg.Connector,
		schedule:    cfg.Schedule,
		catchUp:     catchUp,
		thresholds:  thresholds,
		tenantQuota: cfg.TenantQuota,
		now:         cfg.Now,
		logger:      cfg.Logger,
		done:        map[string]bool{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// checkThresholds returns the thresholds sorted, or an error for one
// outside (0, 100] or for thresholds without a tenant quota.
func checkThresholds(thresholds []float64, quota int64) ([]float64, error) {
	sorted := append([]float64(nil), thresholds...)
	sort.Float64s(sorted)
	for _, t := range sorted {
		if t <= 0 || t > 100 {
			return nil, fmt.Errorf("alert threshold %v%% is not in (0, 100]", t)
		}
	}
	if len(sorted) > 0 && quota <= 0 {
		return nil, fmt.Errorf("alert thresholds %v need the tenant quota, which is not set", sorted)
	}
	return sorted, nil
}

// Job returns the scheduler job that runs Tick on the leader every
// JobEvery.
func (s *Service) Job() schedule.Job {
	return schedule.Job{
		Name:  "digest",
		Every: JobEvery,
		Run: func(ctx context.Context, _ time.Time) error {
			return s.Tick(ctx)
		},
	}
}

// Tick posts the current period's digest to every target that has not got
// it, when the period began no longer ago than the catch-up window, and
// posts alerts for the latest scan. A panic is returned as an error, so
// that one bad run does not stop the scheduler.
func (s *Service) Tick(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("digest run panicked", "err", fmt.Errorf("panic: %v", r), "stack", string(debug.Stack()))
			err = fmt.Errorf("run digest: panic: %v", r)
		}
	}()

	digestErr := s.postDue(ctx)
	alertErr := s.checkAlerts(ctx)
	return errors.Join(digestErr, alertErr)
}

// postDue posts the digest of the period that contains now, within the
// catch-up window.
func (s *Service) postDue(ctx context.Context) error {
	now := s.now()
	period, err := s.schedule.Previous(now)
	if err != nil {
		return err
	}
	if late := now.Sub(period); late > s.catchUp {
		s.logSkipped(period, late)
		return nil
	}

	targets, err := s.activeTargets(ctx)
	if err != nil {
		return err
	}
	targets = s.notDone(period, targets)
	if len(targets) == 0 {
		return nil
	}

	if late := now.Sub(period); late > minCatchUp {
		s.logger.Info("posting a missed digest (catch-up)", "period", period, "late", late.Round(time.Second))
	}
	report, err := s.send(ctx, period, targets)
	if err != nil {
		return err
	}
	return report.err()
}

// SendNow posts the digest of the period that contains now to every active
// target that has not got it yet, whatever the catch-up window. A target
// that already got it counts as AlreadySent.
func (s *Service) SendNow(ctx context.Context) (Report, error) {
	period, err := s.schedule.Previous(s.now())
	if err != nil {
		return Report{}, err
	}
	targets, err := s.activeTargets(ctx)
	if err != nil {
		return Report{}, err
	}
	return s.send(ctx, period, targets)
}

// Preview returns the digest card for the current scan without posting it.
func (s *Service) Preview(ctx context.Context) (cards.AdaptiveCard, error) {
	period, err := s.schedule.Previous(s.now())
	if err != nil {
		return cards.AdaptiveCard{}, err
	}
	return s.card(ctx, period)
}

// Period returns the scheduled run that the digest posted now belongs to.
func (s *Service) Period() (time.Time, error) {
	return s.schedule.Previous(s.now())
}

// Next returns the next scheduled run after now.
func (s *Service) Next() time.Time {
	return s.schedule.Next(s.now())
}

// send builds the card once and posts it to each target.
func (s *Service) send(ctx context.Context, period time.Time, targets []Target) (Report, error) {
	report := Report{Period: period}
	if len(targets) == 0 {
		return report, nil
	}

	card, err := s.card(ctx, period)
	if err != nil {
		return report, err
	}
	for _, t := range targets {
		result := s.post(ctx, t, digestKey(period, t.ConversationID), card)
		report.Results = append(report.Results, result)
		if result.Outcome == Sent && s.onSent != nil {
			s.onSent()
		}
	}
	return report, nil
}

// card builds the digest card from a fresh scan and the growth since a
// week before it.
func (s *Service) card(ctx context.Context, period time.Time) (cards.AdaptiveCard, error) {
	scan, err := s.source.Get(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, fmt.Errorf("build digest for %s: %w", period, err)
	}
	summary := cards.DigestSummary{Period: period, Scan: scan, TenantQuota: s.tenantQuota}

	growth, err := s.store.Growth(ctx, scan.FinishedAt.Add(-week))
	switch {
	case err == nil:
		summary.Growth = growth.Teams
		summary.GrowthFrom = growth.From
	case !errors.Is(err, store.ErrNotFound):
		return cards.AdaptiveCard{}, fmt.Errorf("build digest for %s: %w", period, err)
	}
	return cards.Digest(summary), nil
}

// post sends card as a new thread in t's channel unless the send log
// shows key as sent or being sent. The record is written before the post
// and completed after it, so a crash between the two leaves a pending
// record that another attempt takes over after pendingTimeout.
//
// NOTE: a crash after the Bot Connector accepted the post but before the
// record was completed posts the message twice once the record is taken
// over. The connector offers no way to ask whether a thread was created.
func (s *Service) post(ctx context.Context, t Target, key string, card cards.AdaptiveCard) SendResult {
	logger := s.logger.With("conversation_id", t.ConversationID, "send_key", key)
	result := SendResult{Target: t}

	record, claimed, err := s.store.RecordSend(ctx, key, t.ConversationID, s.now(), pendingTimeout)
	if err != nil {
		result.Outcome, result.Err = Failed, err
		logger.Error("record digest send failed", "err", err)
		return result
	}
	if !claimed {
		if record.Completed() {
			s.markDone(key)
			result.Outcome, result.ActivityID = AlreadySent, record.ActivityID
			return result
		}
		result.Outcome = InProgress
		logger.Info("digest send recorded by another attempt, not sending", "recorded_at", record.RecordedAt)
		return result
	}

	attachment := cards.Attachment(card)
	resp, err := s.connector.CreateConversation(ctx, t.ServiceURL, schema.ConversationParameters{
		IsGroup:  true,
		Bot:      schema.ChannelAccount{ID: t.BotID},
		TenantID: t.TenantID,
		ChannelData: map[string]any{
			"channel": map[string]any{"id": t.TeamsChannelID},
			"tenant":  map[string]any{"id": t.TenantID},
		},
		Activity: schema.Activity{
			Type:        schema.Message,
			Attachments: []schema.Attachment{{ContentType: attachment.ContentType, Content: attachment.Content}},
		},
	})
	if errors.Is(err, connector.ErrForbidden) || errors.Is(err, connector.ErrNotFound) {
		s.deactivate(ctx, t, err)
		result.Outcome, result.Err = Deactivated, err
		return result
	}
	if err != nil {
		result.Outcome, result.Err = Failed, err
		logger.Error("post digest failed", "err", err)
		return result
	}

	if err := s.store.CompleteSend(ctx, key, resp.ActivityID, s.now()); err != nil {
		// The message is out: report it as sent, because a retry would
		// post it again once the record is taken over.
		logger.Error("complete digest send record failed", "activity_id", resp.ActivityID, "err", err)
	}
	s.markDone(key)
	logger.Info("posted to digest target", "thread_id", resp.ID, "activity_id", resp.ActivityID)
	result.Outcome, result.ActivityID = Sent, resp.ActivityID
	return result
}

// err joins the errors of failed sends.
func (r Report) err() error {
	var errs []error
	for _, result := range r.Results {
		if result.Outcome == Failed {
			errs = append(errs, fmt.Errorf("post digest to %s: %w", result.Target.ConversationID, result.Err))
		}
	}
	return errors.Join(errs...)
}

// notDone returns the targets whose digest for period is not known to be
// sent.
func (s *Service) notDone(period time.Time, targets []Target) []Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []Target
	for _, t := range targets {
		if !s.done[digestKey(period, t.ConversationID)] {
			due = append(due, t)
		}
	}
	return due
}

// markDone remembers a completed send. Keys of older periods are dropped
// when the map grows, since the send log still has them.
func (s *Service) markDone(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.done) >= 10_000 {
		clear(s.done)
	}
	s.done[key] = true
}

// logSkipped logs once per period that its digest was missed for good.
func (s *Service) logSkipped(period time.Time, late time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skipped.Equal(period) {
		return
	}
	s.skipped = period
	s.logger.Info("digest period passed beyond the catch-up window, not posting", "period", period, "late", late.Round(time.Second), "catch_up", s.catchUp)
}

// digestKey names a period's digest for one target in the send log.
func digestKey(period time.Time, conversationID string) string {
	return "digest/" + period.UTC().Format(time.RFC3339) + "/" + conversationID
}
