package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
)

// progressTitles are the progress card titles per command; other commands
// get defaultProgressTitle.
var progressTitles = map[string]string{
	"refresh": "Scanning the tenant again",
	"export":  "Preparing the export",
}

const defaultProgressTitle = "Reading the latest scan"

// answerInPlace runs req and returns the reply that carries its card. An
// answer that takes longer than the progress delay, or whose command
// starts slow work at once (refresh), is preceded by a progress card. That
// card is updated in place at most every progressInterval and finally
// replaced with the answer, so that no answer waits on the webhook's
// 15 seconds. The returned activity is empty when the answer went out as
// an update.
func (b *Bot) answerInPlace(ctx context.Context, turn *activity.TurnContext, userID string, req request, logger *slog.Logger) (schema.Activity, error) {
	started := b.now()
	slowNow := make(chan struct{})
	var once sync.Once
	req.startSlow = func() { once.Do(func() { close(slowNow) }) }

	answers := make(chan cards.AdaptiveCard, 1)
	go func() { answers <- b.answer(ctx, userID, req, logger) }()

	select {
	case card := <-answers:
		return cardReply(turn, card)
	case <-slowNow:
	case <-b.after(b.progressDelay):
	}

	title := defaultProgressTitle
	if t, ok := progressTitles[req.verb]; ok {
		title = t
	}
	shown := cards.Progress(title, b.scanProgress(started))
	progressReply, err := cardReply(turn, shown)
	if err != nil {
		return schema.Activity{}, err
	}
	progressID, err := b.send(ctx, progressReply)
	if err != nil || progressID == "" {
		// Without an id the card cannot be updated, so the answer goes
		// out as a message of its own.
		logger.Warn("send progress card failed; the answer follows as a new message", "err", err)
		return cardReply(turn, <-answers)
	}
	logger.Info("sent progress card", "reply_id", progressID, "command", req.verb)

	for {
		select {
		case card := <-answers:
			return b.replaceCard(ctx, turn, progressID, card, logger)
		case <-b.after(progressInterval):
		}

		next := cards.Progress(title, b.scanProgress(started))
		if sameCard(next, shown) {
			continue
		}
		if err := b.updateCard(ctx, turn, progressID, next); err != nil {
			logger.Warn("update progress card failed", "reply_id", progressID, "err", err)
			continue
		}
		shown = next
	}
}

// replaceCard puts the answer in place of the progress card, or sends it
// as a new message when the update fails.
func (b *Bot) replaceCard(ctx context.Context, turn *activity.TurnContext, progressID string, card cards.AdaptiveCard, logger *slog.Logger) (schema.Activity, error) {
	err := b.updateCard(ctx, turn, progressID, card)
	if err == nil {
		logger.Info("replaced progress card with the answer", "reply_id", progressID)
		return schema.Activity{}, nil
	}
	logger.Warn("replace progress card failed; sending the answer as a new message", "reply_id", progressID, "err", err)
	return cardReply(turn, card)
}

// updateCard replaces the bot's activity activityID with one that carries
// card.
func (b *Bot) updateCard(ctx context.Context, turn *activity.TurnContext, activityID string, card cards.AdaptiveCard) error {
	update, err := cardReply(turn, card)
	if err != nil {
		return err
	}
	update.ID = activityID
	_, err = b.connector.UpdateActivity(ctx, update.ServiceURL, update.Conversation.ID, activityID, update)
	return err
}

// scanProgress returns what a progress card shows: the counts of the scan
// that this process runs, when the Source reports them, and an estimate of
// the time left from the rate so far.
//
// NOTE: the rate is measured from the request's arrival, so for a request
// that joins a scan already running the estimate is too long.
func (b *Bot) scanProgress(started time.Time) cards.ScanProgress {
	p := cards.ScanProgress{Elapsed: b.now().Sub(started)}
	reporter, ok := b.source.(ScanProgressReporter)
	if !ok {
		return p
	}

	p.Done, p.Discovered, p.Running = reporter.ScanProgress()
	if p.Running && p.Done > 0 && p.Discovered > p.Done {
		perTeam := p.Elapsed / time.Duration(p.Done)
		p.Remaining = perTeam * time.Duration(p.Discovered-p.Done)
	}
	return p
}

// sameCard reports whether two cards have the same JSON.
func sameCard(a, b cards.AdaptiveCard) bool {
	rawA, errA := json.Marshal(a)
	rawB, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(rawA) == string(rawB)
}
