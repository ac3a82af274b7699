package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/gin-gonic/gin"
	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/connector"
)

// handleMessages responds to a Bot Connector POST at once and leaves the
// reply to a goroutine. Teams retries a POST that gets no response within
// about 15 seconds, and a scan can take longer than that.
func (b *Bot) handleMessages(c *gin.Context) {
	// activityID is set once the body is decoded, for the panic log line.
	var activityID string
	defer func() {
		if r := recover(); r != nil {
			b.logger.Error("webhook panicked", "activity_id", activityID, "err", fmt.Errorf("panic: %v", r), "stack", string(debug.Stack()))
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
		}
	}()

	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, b.maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			b.logger.Warn("rejected activity: body too large", "max_bytes", b.maxBodyBytes)
			c.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": fmt.Sprintf("request body exceeds %d bytes", b.maxBodyBytes)})
			return
		}
		b.logger.Warn("rejected activity: read body failed", "err", err)
		c.JSON(http.StatusBadRequest, gin.H{"error": "cannot read request body"})
		return
	}

	in, err := decodeActivity(body)
	if err != nil {
		b.logger.Warn("rejected activity: invalid JSON", "err", err)
		c.JSON(http.StatusBadRequest, gin.H{"error": "invalid activity JSON"})
		return
	}
	activityID = in.activity.ID
	logger := b.logger.With("activity_id", in.activity.ID, "activity_type", in.activity.Type)

	if err := b.authenticator.Authenticate(c.Request.Context(), c.GetHeader("Authorization"), &in.activity); err != nil {
		logger.Warn("rejected activity: authentication failed", "service_url", in.activity.ServiceURL, "err", err)
		c.JSON(http.StatusUnauthorized, gin.H{"error": "unauthorized"})
		return
	}

	// The bot's bearer token goes to serviceUrl with every reply, so an
	// unexpected host is rejected before anything is sent there. The status
	// is 401 like every other untrusted request.
	if err := checkServiceURL(in.activity.ServiceURL, b.localDevelopment); err != nil {
		logger.Warn("rejected activity: serviceUrl not allowed", "err", err)
		c.JSON(http.StatusUnauthorized, gin.H{"error": "unauthorized"})
		return
	}

	if in.activity.Type == schema.Invoke && in.activity.Name == cardActionInvoke {
		b.answerCardAction(c, in, logger)
		return
	}

	if change := installChange(in.activity); change != 0 && b.installs != nil {
		b.handleInstall(c, in, change, logger)
		return
	}

	if !isRouted(in.activity.Type) {
		logger.Debug("ignored activity type")
		c.Status(http.StatusOK)
		return
	}

	if !b.startReply() {
		logger.Info("rejected activity: shutting down")
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "shutting down"})
		return
	}
	if !b.firstSeen(c.Request.Context(), dedupeKey(in.activity), logger) {
		b.inFlight.Done()
		logger.Info("ignored duplicate activity")
		c.Status(http.StatusOK)
		return
	}

	go b.respond(in)
	c.Status(http.StatusOK)
}

// isRouted reports whether msbotbuilder-go's handler routing accepts t.
// activity.PrepareActivityContext returns an error for every other type
// (installationUpdate, messageReaction, typing, …), and Teams still
// expects 200 for those.
func isRouted(t schema.ActivityTypes) bool {
	switch t {
	case schema.Message, schema.Invoke, schema.ConversationUpdate:
		return true
	}
	return false
}

// dedupeKey scopes an activity id by channel and conversation, because
// Teams activity ids are unique only within a conversation.
func dedupeKey(a schema.Activity) string {
	return a.ChannelID + "\x00" + a.Conversation.ID + "\x00" + a.ID
}

// firstSeen reports whether key is new: in the shared store when Config.Seen
// is set, else in this process. When the store fails, the in-memory set
// decides, so a store outage does not stop replies.
func (b *Bot) firstSeen(ctx context.Context, key string, logger *slog.Logger) bool {
	if b.sharedSeen == nil {
		return b.seen.add(key)
	}
	first, err := b.sharedSeen.FirstSeen(ctx, key)
	if err != nil {
		logger.Warn("check shared activity ids failed; using this process's ids", "err", err)
		return b.seen.add(key)
	}
	return first
}

// respond builds the reply to in and sends it. It runs in its own goroutine
// under the Bot's base context.
func (b *Bot) respond(in incoming) {
	defer b.inFlight.Done()
	logger := b.logger.With("activity_id", in.activity.ID, "conversation_id", in.activity.Conversation.ID)
	defer func() {
		if r := recover(); r != nil {
			logger.Error("reply panicked", "err", fmt.Errorf("panic: %v", r))
		}
	}()

	ctx, cancel := context.WithTimeout(b.baseCtx, b.replyTimeout)
	defer cancel()

	handler := activity.HandlerFuncs{
		OnMessageFunc: func(turn *activity.TurnContext) (schema.Activity, error) {
			return b.onMessage(ctx, in, turn)
		},
		// NOTE: Action.Execute invokes expect their result in the HTTP
		// response, which was already sent. storagebot's cards use
		// Action.Submit, so an invoke gets no reply.
		OnInvokeFunc: func(*activity.TurnContext) (schema.Activity, error) {
			return schema.Activity{}, nil
		},
		OnConversationUpdateFunc: func(*activity.TurnContext) (schema.Activity, error) {
			return schema.Activity{}, nil
		},
	}
	reply, err := activity.PrepareActivityContext(handler, &activity.TurnContext{Activity: in.activity})
	if err != nil {
		logger.Error("build reply failed", "err", err)
		return
	}
	if reply.Type == "" {
		return
	}

	replyID, err := b.send(ctx, reply)
	if err != nil {
		if errors.Is(err, connector.ErrForbidden) || errors.Is(err, connector.ErrNotFound) {
			logger.Warn("send reply failed: the bot is no longer in the conversation", "err", err)
			return
		}
		logger.Error("send reply failed", "err", err)
		return
	}
	logger.Info("sent reply", "reply_id", replyID)
}

// send posts reply under the activity it replies to, or into the
// conversation when that activity had no id.
func (b *Bot) send(ctx context.Context, reply schema.Activity) (string, error) {
	if reply.ReplyToID == "" {
		return b.connector.SendToConversation(ctx, reply.ServiceURL, reply.Conversation.ID, reply)
	}
	return b.connector.ReplyToActivity(ctx, reply.ServiceURL, reply.Conversation.ID, reply.ReplyToID, reply)
}
