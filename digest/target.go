package digest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/store"
)

// Kinds under which targets are kept in the store's conversations table.
//
// NOTE: that table has no status column and is keyed by conversation id
// alone. So targets use their own kinds instead of the Teams
// conversationType, and a feature that saved the same channel's reference
// under another kind would replace the target.
const (
	// KindActive marks a channel that receives digests and alerts.
	KindActive = "digest"
	// KindInactive marks a channel where the Bot Connector returned 403 or
	// 404 because the bot was removed, blocked or disabled there. Nothing is sent
	// to it until it is installed again or someone sends "digest here".
	KindInactive = "digest-inactive"
)

// ErrNotChannel is returned for an activity that does not come from a Team
// channel, the only place a digest can start a thread.
var ErrNotChannel = errors.New("activity is not from a Team channel")

// Target is a channel that receives the digest.
type Target struct {
	store.ConversationReference
	// Name is the Team and channel name as the activity named them, or the
	// channel id when it named neither.
	Name string
}

// Active reports whether the target receives digests.
func (t Target) Active() bool {
	return t.Kind == KindActive
}

// TargetFromActivity returns the channel of an authenticated activity as a
// target. The caller must have authenticated the activity, because the
// bot's token goes to its serviceUrl with every digest.
func TargetFromActivity(a schema.Activity, now time.Time) (Target, error) {
	channelID := stringAt(a.ChannelData, "channel", "id")
	if channelID == "" && a.Conversation.ConversationType == "channel" {
		// installationUpdate may leave channelData.channel out; the
		// conversation id is then the channel's, maybe with a thread suffix.
		channelID, _, _ = strings.Cut(a.Conversation.ID, ";")
	}
	if channelID == "" {
		return Target{}, fmt.Errorf("register digest target from activity %s: %w", a.ID, ErrNotChannel)
	}
	tenantID := stringAt(a.ChannelData, "tenant", "id")
	if tenantID == "" {
		tenantID = a.Conversation.TenantID
	}
	if a.ServiceURL == "" || tenantID == "" {
		return Target{}, fmt.Errorf("register digest target from activity %s: serviceUrl and tenant id are required", a.ID)
	}

	name := joinNonEmpty(" › ", stringAt(a.ChannelData, "team", "name"), stringAt(a.ChannelData, "channel", "name"))
	if name == "" {
		name = channelID
	}
	reference, err := json.Marshal(schema.ConversationReference{
		Bot: a.Recipient,
		Conversation: schema.ConversationAccount{
			ID:               channelID,
			Name:             name,
			ConversationType: "channel",
			IsGroup:          true,
			TenantID:         tenantID,
		},
		ChannelID:  a.ChannelID,
		ServiceURL: a.ServiceURL,
	})
	if err != nil {
		return Target{}, fmt.Errorf("encode conversation reference of channel %s: %w", channelID, err)
	}

	return Target{
		ConversationReference: store.ConversationReference{
			ConversationID: channelID,
			Kind:           KindActive,
			ServiceURL:     a.ServiceURL,
			TenantID:       tenantID,
			BotID:          a.Recipient.ID,
			TeamID:         stringAt(a.ChannelData, "team", "id"),
			GroupID:        stringAt(a.ChannelData, "team", "aadGroupId"),
			TeamsChannelID: channelID,
			Reference:      reference,
			UpdatedAt:      now,
		},
		Name: name,
	}, nil
}

// targetFromReference reads a stored target.
func targetFromReference(ref store.ConversationReference) Target {
	t := Target{ConversationReference: ref, Name: ref.ConversationID}
	var stored schema.ConversationReference
	if json.Unmarshal(ref.Reference, &stored) == nil && stored.Conversation.Name != "" {
		t.Name = stored.Conversation.Name
	}
	return t
}

// AddTarget registers the channel of an authenticated activity, or makes
// an inactive one active again.
func (s *Service) AddTarget(ctx context.Context, a schema.Activity) (Target, error) {
	target, err := TargetFromActivity(a, s.now())
	if err != nil {
		return Target{}, err
	}
	if err := s.store.SaveConversation(ctx, target.ConversationReference); err != nil {
		return Target{}, fmt.Errorf("add digest target %s: %w", target.ConversationID, err)
	}
	s.logger.Info("digest target added", "conversation_id", target.ConversationID, "team_id", target.TeamID, "activity_id", a.ID)
	return target, nil
}

// RemoveTarget stops the digest in the channel of an authenticated
// activity. It reports whether the channel was a target.
func (s *Service) RemoveTarget(ctx context.Context, a schema.Activity) (bool, error) {
	target, err := TargetFromActivity(a, s.now())
	if err != nil {
		return false, err
	}
	targets, err := s.Targets(ctx)
	if err != nil {
		return false, err
	}
	found := false
	for _, t := range targets {
		if t.ConversationID == target.ConversationID {
			found = true
		}
	}
	if !found {
		return false, nil
	}

	if err := s.store.DeleteConversation(ctx, target.ConversationID); err != nil {
		return false, fmt.Errorf("remove digest target %s: %w", target.ConversationID, err)
	}
	s.logger.Info("digest target removed", "conversation_id", target.ConversationID, "activity_id", a.ID)
	return true, nil
}

// Targets returns every target, active ones first.
func (s *Service) Targets(ctx context.Context) ([]Target, error) {
	var targets []Target
	for _, kind := range []string{KindActive, KindInactive} {
		refs, err := s.store.Conversations(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("list digest targets: %w", err)
		}
		for _, ref := range refs {
			targets = append(targets, targetFromReference(ref))
		}
	}
	return targets, nil
}

// activeTargets returns the targets that receive digests and alerts.
func (s *Service) activeTargets(ctx context.Context) ([]Target, error) {
	refs, err := s.store.Conversations(ctx, KindActive)
	if err != nil {
		return nil, fmt.Errorf("list digest targets: %w", err)
	}
	targets := make([]Target, 0, len(refs))
	for _, ref := range refs {
		targets = append(targets, targetFromReference(ref))
	}
	return targets, nil
}

// deactivate marks t inactive after the Bot Connector returned 403 or 404
// for it, so that it is not tried again every period.
func (s *Service) deactivate(ctx context.Context, t Target, cause error) {
	ref := t.ConversationReference
	ref.Kind = KindInactive
	ref.UpdatedAt = s.now()
	if err := s.store.SaveConversation(ctx, ref); err != nil {
		s.logger.Error("mark digest target inactive failed", "conversation_id", t.ConversationID, "err", errors.Join(err, cause))
		return
	}
	s.logger.Warn("digest target marked inactive: the bot is no longer in the channel", "conversation_id", t.ConversationID, "team_id", t.TeamID, "err", cause)
}

// stringAt returns the string at a path of nested JSON objects, or "".
func stringAt(data map[string]any, path ...string) string {
	var value any = data
	for _, key := range path {
		object, ok := value.(map[string]any)
		if !ok {
			return ""
		}
		value = object[key]
	}
	s, _ := value.(string)
	return s
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}
