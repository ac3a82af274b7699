package simtenant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// maxActivityBytes is the largest activity body the connector accepts.
// NOTE: Teams documents "about 100 KB" for a bot message, not an exact limit.
const maxActivityBytes = 100 << 10

// Operation is the Bot Connector call that delivered a recorded activity.
type Operation string

// Bot Connector operations, by method and path under the serviceUrl.
const (
	// OperationSend is POST v3/conversations/{conversationId}/activities.
	OperationSend Operation = "send"
	// OperationReply is POST v3/conversations/{conversationId}/activities/{activityId}.
	OperationReply Operation = "reply"
	// OperationUpdate is PUT v3/conversations/{conversationId}/activities/{activityId}.
	OperationUpdate Operation = "update"
	// OperationCreateConversation is POST v3/conversations.
	OperationCreateConversation Operation = "create_conversation"
)

// RecordedActivity is one call the Bot Connector accepted.
type RecordedActivity struct {
	Operation Operation
	// ConversationID is the unescaped conversation id from the path, or the id
	// of the conversation that OperationCreateConversation created.
	ConversationID string
	// ReplyToID is the activity id in the path of a reply, or else the
	// activity's own replyToId field.
	ReplyToID string
	// ActivityID is the id the connector returned: a new id for a send, a
	// reply or a new channel thread, and the path's id for an update. It is
	// empty for a new 1:1 conversation.
	ActivityID string
	// Authorized reports whether the call carried a valid bearer token. A call
	// without an Authorization header is accepted with Authorized false.
	Authorized bool
	// Body is the request body exactly as received: the activity, or the
	// conversation parameters for OperationCreateConversation.
	Body json.RawMessage
	// Received is the sim clock's time when the call arrived.
	Received time.Time
}

// connectorState records activities and wakes the goroutines waiting in
// WaitActivities. changed is closed and replaced on every new activity.
type connectorState struct {
	activities []RecordedActivity
	changed    chan struct{}
}

type resourceResponse struct {
	ID string `json:"id"`
}

type conversationResourceResponse struct {
	ID         string `json:"id"`
	ActivityID string `json:"activityId,omitempty"`
}

type connectorError struct {
	Error connectorErrorBody `json:"error"`
}

type connectorErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// conversationParameters is the part of a create-conversation body that the
// sim reads.
type conversationParameters struct {
	ChannelData struct {
		Channel struct {
			ID string `json:"id"`
		} `json:"channel"`
	} `json:"channelData"`
}

// Activities returns every activity recorded so far, oldest first.
func (t *Tenant) Activities() []RecordedActivity {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.connector.activities)
}

// WaitActivities blocks until at least n activities are recorded and returns
// all of them, oldest first. It returns an error wrapping ctx.Err() when ctx
// ends first.
func (t *Tenant) WaitActivities(ctx context.Context, n int) ([]RecordedActivity, error) {
	for {
		t.mu.Lock()
		if len(t.connector.activities) >= n {
			out := slices.Clone(t.connector.activities)
			t.mu.Unlock()
			return out, nil
		}
		if t.connector.changed == nil {
			t.connector.changed = make(chan struct{})
		}
		changed, got := t.connector.changed, len(t.connector.activities)
		t.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d activities, %d recorded: %w", n, got, ctx.Err())
		}
	}
}

func (t *Tenant) handleSendActivity(w http.ResponseWriter, r *http.Request) {
	t.acceptActivity(w, r, OperationSend, http.StatusCreated)
}

func (t *Tenant) handleReplyActivity(w http.ResponseWriter, r *http.Request) {
	t.acceptActivity(w, r, OperationReply, http.StatusCreated)
}

func (t *Tenant) handleUpdateActivity(w http.ResponseWriter, r *http.Request) {
	t.acceptActivity(w, r, OperationUpdate, http.StatusOK)
}

// acceptActivity records a send, reply or update and responds with the
// activity id, as Teams does.
func (t *Tenant) acceptActivity(w http.ResponseWriter, r *http.Request, op Operation, status int) {
	authorized, ok := t.connectorAuth(w, r)
	if !ok {
		return
	}
	body, ok := t.readActivityBody(w, r)
	if !ok {
		return
	}
	var fields struct {
		ReplyToID string `json:"replyToId"`
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		t.writeConnectorError(w, http.StatusBadRequest, "BadArgument", "The activity is not a valid JSON object.")
		return
	}

	a := RecordedActivity{
		Operation:      op,
		ConversationID: r.PathValue("conversationId"),
		ReplyToID:      fields.ReplyToID,
		Authorized:     authorized,
		Body:           body,
	}
	switch op {
	case OperationReply:
		a.ReplyToID = r.PathValue("activityId")
	case OperationUpdate:
		a.ActivityID = r.PathValue("activityId")
	}
	a = t.record(a)

	writeJSON(w, t.log, status, resourceResponse{ID: a.ActivityID})
}

// handleCreateConversation starts a channel thread when channelData names a
// channel, and a 1:1 conversation otherwise. A thread's id is the channel id
// followed by ";messageid=" and the id of its first activity.
func (t *Tenant) handleCreateConversation(w http.ResponseWriter, r *http.Request) {
	authorized, ok := t.connectorAuth(w, r)
	if !ok {
		return
	}
	body, ok := t.readActivityBody(w, r)
	if !ok {
		return
	}
	var params conversationParameters
	if err := json.Unmarshal(body, &params); err != nil {
		t.writeConnectorError(w, http.StatusBadRequest, "BadArgument", "The conversation parameters are not a valid JSON object.")
		return
	}

	a := RecordedActivity{Operation: OperationCreateConversation, Authorized: authorized, Body: body}
	a = t.recordConversation(a, params.ChannelData.Channel.ID)

	writeJSON(w, t.log, http.StatusCreated, conversationResourceResponse{ID: a.ConversationID, ActivityID: a.ActivityID})
}

// connectorAuth accepts a request without an Authorization header, as the
// Agents Playground does for local development, and otherwise requires a
// token the sim issued for the Bot Connector. ok is false when it has
// already written a 401 response.
func (t *Tenant) connectorAuth(w http.ResponseWriter, r *http.Request) (authorized, ok bool) {
	if r.Header.Get("Authorization") == "" {
		return false, true
	}
	raw, err := bearerToken(r)
	if err == nil {
		_, err = t.signer.verify(raw, BotFrameworkResource, t.opts.TenantID, t.now())
	}
	if err != nil {
		t.log.Warn("reject Bot Connector token", "path", r.URL.Path, "err", err)
		writeJSON(w, t.log, http.StatusUnauthorized, map[string]string{"message": "Authorization has been denied for this request."})
		return false, false
	}
	return true, true
}

// readActivityBody reads a JSON object of at most maxActivityBytes. ok is
// false when it has already written a 400 or 413 response.
func (t *Tenant) readActivityBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActivityBytes+1))
	if err != nil {
		t.log.Info("read activity body", "path", r.URL.Path, "err", err)
		t.writeConnectorError(w, http.StatusBadRequest, "BadArgument", "The request body could not be read.")
		return nil, false
	}
	if len(body) > maxActivityBytes {
		t.writeConnectorError(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "The message is too large.")
		return nil, false
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		t.writeConnectorError(w, http.StatusBadRequest, "BadArgument", "The request body is not a valid JSON object.")
		return nil, false
	}
	return body, true
}

// record assigns a new activity id unless the activity has one, stores the
// activity and wakes the waiters.
func (t *Tenant) record(a RecordedActivity) RecordedActivity {
	t.mu.Lock()
	if a.ActivityID == "" {
		a.ActivityID = t.ids.nextActivityID()
	}
	a.Received = t.now()
	t.appendActivity(a)
	t.mu.Unlock()

	t.log.Debug("recorded activity", "operation", a.Operation, "conversation_id", a.ConversationID, "activity_id", a.ActivityID, "reply_to_id", a.ReplyToID)
	return a
}

func (t *Tenant) recordConversation(a RecordedActivity, channelID string) RecordedActivity {
	t.mu.Lock()
	if channelID != "" {
		a.ActivityID = t.ids.nextActivityID()
		a.ConversationID = channelID + ";messageid=" + a.ActivityID
	} else {
		a.ConversationID = "a:1sim" + t.ids.nextActivityID()
	}
	a.Received = t.now()
	t.appendActivity(a)
	t.mu.Unlock()

	t.log.Debug("recorded activity", "operation", a.Operation, "conversation_id", a.ConversationID, "activity_id", a.ActivityID)
	return a
}

// appendActivity must be called with t.mu held.
func (t *Tenant) appendActivity(a RecordedActivity) {
	t.connector.activities = append(t.connector.activities, a)
	if t.connector.changed != nil {
		close(t.connector.changed)
		t.connector.changed = nil
	}
}

func (t *Tenant) writeConnectorError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, t.log, status, connectorError{Error: connectorErrorBody{Code: code, Message: message}})
}
