package digest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
)

// CommandUsage and CommandDescription describe the chat command for the
// bot's help card.
const (
	CommandUsage       = "digest here | off | status"
	CommandDescription = "Post the weekly storage digest and quota alerts in this channel (here), stop them (off), or list the channels and the next run (status)."
)

// HandleCommand runs "digest here", "digest off" or "digest status" sent in
// the authenticated activity a, and returns the reply card. The caller
// checks that the sender is an admin. Errors are internal; mistakes of the
// user get a card.
func (s *Service) HandleCommand(ctx context.Context, args []string, a schema.Activity) (cards.AdaptiveCard, error) {
	sub := ""
	if len(args) > 0 {
		sub = strings.ToLower(args[0])
	}

	switch sub {
	case "here":
		return s.commandHere(ctx, a)
	case "off":
		return s.commandOff(ctx, a)
	case "status":
		return s.StatusCard(ctx)
	}
	return cards.Message("Digest", "Send digest here in a Team channel to get the weekly storage digest there, digest off to stop it, or digest status to list the channels."), nil
}

func (s *Service) commandHere(ctx context.Context, a schema.Activity) (cards.AdaptiveCard, error) {
	target, err := s.AddTarget(ctx, a)
	if errors.Is(err, ErrNotChannel) {
		return notInChannelCard, nil
	}
	if err != nil {
		return cards.AdaptiveCard{}, err
	}
	return cards.Message("Digest on", fmt.Sprintf("This channel (%s) gets the weekly storage digest and quota alerts. Next digest: %s.",
		cards.Escape(target.Name), s.Next().Format("Mon 2006-01-02 15:04 MST"))), nil
}

func (s *Service) commandOff(ctx context.Context, a schema.Activity) (cards.AdaptiveCard, error) {
	removed, err := s.RemoveTarget(ctx, a)
	if errors.Is(err, ErrNotChannel) {
		return notInChannelCard, nil
	}
	if err != nil {
		return cards.AdaptiveCard{}, err
	}
	if !removed {
		return cards.Message("Digest off", "This channel did not get the digest."), nil
	}
	return cards.Message("Digest off", "This channel no longer gets the digest or quota alerts."), nil
}

// StatusCard lists the targets and the next scheduled run.
func (s *Service) StatusCard(ctx context.Context) (cards.AdaptiveCard, error) {
	targets, err := s.Targets(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}
	status := cards.DigestStatus{Next: s.Next(), Schedule: s.schedule.String() + " (" + s.schedule.Location().String() + ")"}
	for _, t := range targets {
		status.Targets = append(status.Targets, cards.DigestTarget{
			Name:   t.Name,
			Active: t.Active(),
			Reason: "the bot was removed or blocked there; send digest here to resume",
		})
	}
	return cards.DigestStatusCard(status), nil
}

// notInChannelCard is the reply to digest here or off outside a channel.
var notInChannelCard = cards.Message("Digest", "Send this in a Team channel: the digest starts a new thread in the channel where it is turned on.")
