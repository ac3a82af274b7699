package bot

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
)

// Command is a chat command that the caller adds to the built-in ones
// through Config.Commands, for a feature that lives in another package.
type Command struct {
	// Verb is the first word of the command, lower case.
	Verb        string
	Usage       string
	Description string
	// AdminsOnly limits the command to admins; otherwise Team owners may
	// run it too.
	AdminsOnly bool
	// Run returns the reply card. An error becomes a generic reply and a
	// log line, unless it is a *UserError.
	Run func(ctx context.Context, req CommandRequest) (cards.AdaptiveCard, error)
}

// CommandRequest is one run of an added Command.
type CommandRequest struct {
	// Args are the words after the verb, as typed.
	Args []string
	// UserID is the sender's Entra object id.
	UserID string
	// Activity is the message, already authenticated, so its conversation
	// may be stored for proactive messages.
	Activity schema.Activity
}

// InstallHandler receives the events that add the bot to a conversation
// or remove it. It receives authenticated activities only.
type InstallHandler interface {
	// Installed handles installationUpdate "add" and conversationUpdate
	// with the bot in membersAdded.
	Installed(ctx context.Context, a schema.Activity) error
	// Uninstalled handles installationUpdate "remove" and
	// conversationUpdate with the bot in membersRemoved.
	Uninstalled(ctx context.Context, a schema.Activity) error
}

// checkCommands rejects an added command without a verb or a Run function,
// or whose verb is taken.
func checkCommands(added []Command) error {
	taken := map[string]bool{}
	for _, c := range commandTable() {
		taken[c.verb] = true
	}
	for _, c := range added {
		if c.Verb == "" || c.Verb != strings.ToLower(c.Verb) || strings.ContainsAny(c.Verb, " \t") || c.Run == nil {
			return fmt.Errorf("added command %q needs a lower-case one-word verb and a Run function", c.Verb)
		}
		if taken[c.Verb] {
			return fmt.Errorf("added command %q is already a command", c.Verb)
		}
		taken[c.Verb] = true
	}
	return nil
}

// commands returns the built-in commands followed by the added ones.
func (b *Bot) commands() []command {
	table := commandTable()
	for _, added := range b.addedCommands {
		access := forOwners
		if added.AdminsOnly {
			access = forAdmins
		}
		table = append(table, command{
			verb:        added.Verb,
			usage:       added.Usage,
			description: added.Description,
			access:      access,
			run: func(_ *Bot, ctx context.Context, req request) (cards.AdaptiveCard, error) {
				return added.Run(ctx, CommandRequest{Args: req.args, UserID: req.asker.userID, Activity: req.activity})
			},
		})
	}
	return table
}

// helpCommands returns the commands, added ones included, that a may run.
func (b *Bot) helpCommands(a asker) []cards.Command {
	out := commandsFor(a)
	for _, c := range b.addedCommands {
		access := forOwners
		if c.AdminsOnly {
			access = forAdmins
		}
		if a.may(access) {
			out = append(out, cards.Command{Usage: c.Usage, Description: c.Description})
		}
	}
	return out
}

// Install events, as Teams sends them (learn.microsoft.com, "Conversation
// events in your bot" and "installationUpdate").
const (
	installAdd         = "add"
	installAddUpgrade  = "add-upgrade"
	installRemove      = "remove"
	installationUpdate = "installationUpdate"
)

// installChange returns +1 for an activity that installs the bot, -1 for
// one that removes it, and 0 otherwise.
func installChange(a schema.Activity) int {
	switch {
	case string(a.Type) == installationUpdate && (a.Action == installAdd || a.Action == installAddUpgrade):
		return 1
	case string(a.Type) == installationUpdate && a.Action == installRemove:
		return -1
	case a.Type == schema.ConversationUpdate && hasMember(a.MembersAdded, a.Recipient.ID):
		return 1
	case a.Type == schema.ConversationUpdate && hasMember(a.MembersRemoved, a.Recipient.ID):
		return -1
	}
	return 0
}

func hasMember(members []schema.ChannelAccount, id string) bool {
	for _, m := range members {
		if id != "" && m.ID == id {
			return true
		}
	}
	return false
}

// handleInstall passes an authenticated install or removal to the
// InstallHandler in the background and responds 200 at once.
func (b *Bot) handleInstall(c *gin.Context, in incoming, change int, logger *slog.Logger) {
	if tenant := tenantID(in.activity); !b.servesTenant(tenant) {
		logger.Warn("ignored install event: tenant not served", "tenant_id", tenant)
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

	go func() {
		defer b.inFlight.Done()
		defer func() {
			if r := recover(); r != nil {
				logger.Error("install handler panicked", "err", fmt.Errorf("panic: %v", r))
			}
		}()
		ctx, cancel := context.WithTimeout(b.baseCtx, b.replyTimeout)
		defer cancel()

		handle, event := b.installs.Installed, "installed"
		if change < 0 {
			handle, event = b.installs.Uninstalled, "uninstalled"
		}
		if err := handle(ctx, in.activity); err != nil {
			logger.Error("handle install event failed", "event", event, "conversation_id", in.activity.Conversation.ID, "err", err)
			return
		}
		logger.Info("handled install event", "event", event, "conversation_id", in.activity.Conversation.ID)
	}()
	c.Status(http.StatusOK)
}
