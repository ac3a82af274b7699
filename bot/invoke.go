package bot

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/cards"
)

// cardActionInvoke is the invoke name of an Adaptive Card Action.Execute
// (Universal Actions for Adaptive Cards).
const cardActionInvoke = "adaptiveCard/action"

// cardActionResponse is the body of the HTTP response to an
// adaptiveCard/action invoke: the card that replaces the clicked one.
// Source: "Universal Actions for Adaptive Cards", the adaptiveCard/action
// invoke response (learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/universal-actions-for-adaptive-cards/overview).
type cardActionResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type"`
	Value      any    `json:"value"`
}

// answerCardAction runs the command of an Action.Execute and answers in the
// HTTP response, which is the only place Teams reads it from. The card's
// data carries the command as for Action.Submit ({"cmd":…}); the action's
// verb is the command when the data has none.
func (b *Bot) answerCardAction(c *gin.Context, in incoming, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), invokeTimeout)
	defer cancel()

	var card cards.AdaptiveCard
	if tenant := tenantID(in.activity); !b.servesTenant(tenant) {
		logger.Warn("rejected activity: tenant not served", "tenant_id", tenant)
		card = cards.Message("Not available", "This bot does not serve your organization.")
	} else {
		req := parseSubmit(cardActionData(in.value))
		card = b.answer(ctx, in.activity.From.AadObjectID, req, logger)
	}

	logger.Info("sent card action response")
	c.JSON(http.StatusOK, cardActionResponse{
		StatusCode: http.StatusOK,
		Type:       cards.ContentType,
		Value:      cards.Attachment(card).Content,
	})
}

// cardActionData returns the action's data with "cmd" set from the verb
// when the data has no command. value is the invoke's
// {"action":{"type":"Action.Execute","verb":…,"data":{…}},"trigger":…}.
func cardActionData(value map[string]any) map[string]any {
	action, _ := value["action"].(map[string]any)
	data := map[string]any{}
	if given, ok := action["data"].(map[string]any); ok {
		for k, v := range given {
			data[k] = v
		}
	}
	if cmd, _ := data["cmd"].(string); cmd == "" {
		if verb, ok := action["verb"].(string); ok {
			data["cmd"] = verb
		}
	}
	return data
}
