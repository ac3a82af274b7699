package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/scanner"
)

// Limits of the top command. maxTopOffset is far above any tenant's
// Team count; cards.TopPage shows the last page for an offset past it.
const (
	defaultTopTeams = 10
	maxTopTeams     = 50
	maxTopOffset    = 10_000_000
)

// UserError is an error whose Title and Text are safe to show in chat as
// they are. Every other error becomes a generic reply and a log line.
type UserError struct {
	Title string
	Text  string
}

// Error returns the text shown to the user.
func (e *UserError) Error() string {
	return "user error: " + e.Text
}

// request is one parsed command, typed or sent by a card button.
type request struct {
	// verb is the lower-case command name.
	verb string
	// args are the words after the verb, as typed.
	args []string
	// teamID is the Graph group id from a card button, empty for typed
	// commands.
	teamID string
	// offset is how many ranked Teams a top page skips, from a paging
	// button.
	offset int
	// tenantID is the tenant of the activity.
	tenantID string
	// personal is true in a one-to-one chat with the bot.
	personal bool
	// asker is who sent the command.
	asker asker
	// activity is the authenticated message, for added commands that
	// store its conversation.
	activity schema.Activity
	// startSlow, when set, asks for the progress card at once, because
	// the command has started work that takes seconds.
	startSlow func()
}

// command is one row of the command table.
type command struct {
	verb        string
	usage       string
	description string
	access      access
	run         func(b *Bot, ctx context.Context, req request) (cards.AdaptiveCard, error)
}

// commandTable lists the chat commands. The help card and the Teams
// manifest's command list are built from it through Commands.
func commandTable() []command {
	return []command{
		{
			verb:        "top",
			usage:       "top [N] [teams]",
			description: fmt.Sprintf("List the N Teams that use the most SharePoint storage (%d when N is left out, at most %d).", defaultTopTeams, maxTopTeams),
			access:      forAdmins,
			run:         (*Bot).runTop,
		},
		{
			verb:        "summary",
			usage:       "summary",
			description: "Show the tenant's storage at a glance: total used, share of the tenant quota, change since last week, recycle bins, quota states and the largest Teams.",
			access:      forAdmins,
			run:         (*Bot).runSummary,
		},
		{
			verb:        "my",
			usage:       "my teams",
			description: "List the Teams you own with their SharePoint storage.",
			access:      forOwners,
			run:         (*Bot).runMyTeams,
		},
		{
			verb:        "usage",
			usage:       "usage <team name>",
			description: "Show the SharePoint storage of one Team. Part of the name is enough. Team owners see only their own Teams.",
			access:      forOwners,
			run:         (*Bot).runUsage,
		},
		{
			verb:        "refresh",
			usage:       "refresh",
			description: "Scan the tenant again now instead of using the last scan.",
			access:      forAdmins,
			run:         (*Bot).runRefresh,
		},
		{
			verb:        "export",
			usage:       "export",
			description: "Get a download link for the latest scan as a CSV file. The link works once and expires after a few minutes.",
			access:      forAdmins,
			run:         (*Bot).runExport,
		},
		{
			verb:        "help",
			usage:       "help",
			description: "List the commands you can use.",
			access:      forOwners,
			run:         (*Bot).runHelp,
		},
	}
}

// Commands returns every chat command with its usage and description.
func Commands() []cards.Command {
	return commandsFor(asker{admin: true})
}

// commandsFor returns the chat commands that a may run.
func commandsFor(a asker) []cards.Command {
	var out []cards.Command
	for _, c := range commandTable() {
		if a.may(c.access) {
			out = append(out, cards.Command{Usage: c.usage, Description: c.description})
		}
	}
	return out
}

// onMessage builds the one-card reply to a message activity.
func (b *Bot) onMessage(ctx context.Context, in incoming, turn *activity.TurnContext) (schema.Activity, error) {
	logger := b.logger.With("activity_id", in.activity.ID, "conversation_id", in.activity.Conversation.ID)

	if tenant := tenantID(in.activity); !b.servesTenant(tenant) {
		logger.Warn("rejected activity: tenant not served", "tenant_id", tenant)
		return cardReply(turn, cards.Message("Not available", "This bot does not serve your organization."))
	}

	req := parseSubmit(in.value)
	if req.verb == "" {
		req = parseText(commandText(in.activity.Text, in.mentions, in.activity.Recipient.ID))
	}
	req.tenantID = tenantID(in.activity)
	req.activity = in.activity
	req.personal = in.activity.Conversation.ConversationType == "personal"
	return b.answerInPlace(ctx, turn, in.activity.From.AadObjectID, req, logger)
}

// answer resolves the user's role and runs req for them.
func (b *Bot) answer(ctx context.Context, userID string, req request, logger *slog.Logger) cards.AdaptiveCard {
	a, err := b.resolveAsker(ctx, userID)
	if err != nil {
		logger.Error("check role failed", "user_id", userID, "err", err)
		return cards.Message("Try again later", "Checking your access failed. Try again in a few minutes.")
	}
	if !a.hasRole() {
		logger.Info("rejected command: user has no role", "user_id", userID, "command", req.verb)
		return noRoleCard
	}
	req.asker = a
	return b.run(ctx, req, logger)
}

// run executes req for req.asker and returns the card to send. Unknown
// commands get the help card, and commands above the asker's role a
// refusal.
func (b *Bot) run(ctx context.Context, req request, logger *slog.Logger) cards.AdaptiveCard {
	var cmd *command
	for _, c := range b.commands() {
		if c.verb == req.verb {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		return cards.Help(b.helpCommands(req.asker))
	}
	if !req.asker.may(cmd.access) {
		logger.Info("rejected command: admins only", "user_id", req.asker.userID, "command", req.verb)
		return adminsOnlyCard(cmd.verb)
	}

	card, err := cmd.run(b, ctx, req)
	if err == nil {
		return card
	}
	var userErr *UserError
	if errors.As(err, &userErr) {
		return cards.Message(userErr.Title, userErr.Text)
	}
	logger.Error("command failed", "command", req.verb, "err", err)
	return cards.Message("Scan failed", "The scan failed, try again later.")
}

// adminsOnlyCard refuses a Team owner a tenant-wide command.
func adminsOnlyCard(verb string) cards.AdaptiveCard {
	return cards.Message("Admins only", fmt.Sprintf("The %s command is for Microsoft 365 admins. Send my teams to see the Teams you own.", verb))
}

func (b *Bot) runHelp(_ context.Context, req request) (cards.AdaptiveCard, error) {
	return cards.Help(b.helpCommands(req.asker)), nil
}

// runTop accepts "top", "top N", "top teams" and "top N teams".
func (b *Bot) runTop(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	n, err := topCount(req.args)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}

	result, err := b.result(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}

	return b.topPage(ctx, result, n, req.offset), nil
}

// topPage builds the ranked card that top and refresh answer with: n Teams
// from offset, their owners, and paging buttons.
func (b *Bot) topPage(ctx context.Context, result *scanner.Result, n, offset int) cards.AdaptiveCard {
	opts := cards.TopOptions{N: n, Offset: offset, Paging: true}
	opts.Owners = b.ownerNames(ctx, rankedIDs(result, offset, n))
	return cards.TopPage(result, opts)
}

// topCount parses the arguments of the top command.
func topCount(args []string) (int, error) {
	invalid := &UserError{
		Title: "Top Teams",
		Text:  fmt.Sprintf("Choose a number of Teams from 1 to %d, for example: top %d", maxTopTeams, defaultTopTeams),
	}

	if len(args) > 0 && isTeamsWord(args[len(args)-1]) {
		args = args[:len(args)-1]
	}
	switch len(args) {
	case 0:
		return defaultTopTeams, nil
	case 1:
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > maxTopTeams {
			return 0, invalid
		}
		return n, nil
	}
	return 0, invalid
}

func isTeamsWord(s string) bool {
	s = strings.ToLower(s)
	return s == "teams" || s == "team"
}

// runUsage handles "usage <team name>" and the usage button of a card.
// An owner sees only the Teams they own: a button for another Team gets
// the same refusal whether or not that Team exists, so the reply does not
// reveal it.
func (b *Bot) runUsage(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	query := strings.Join(req.args, " ")
	if req.teamID == "" && query == "" {
		return cards.AdaptiveCard{}, &UserError{Title: "Team usage", Text: "Send usage followed by a Team name, for example: usage Marketing"}
	}

	if req.teamID != "" {
		allowed, err := b.canSeeTeam(ctx, req.asker, req.teamID)
		if err != nil {
			return cards.AdaptiveCard{}, err
		}
		if !allowed {
			return cards.AdaptiveCard{}, &UserError{Title: "Not your Team", Text: "You can see the storage of the Teams you own only. Send my teams to list them."}
		}
	}

	result, err := b.result(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}

	if req.teamID != "" {
		for _, t := range result.Teams {
			if t.Team.ID == req.teamID {
				return cards.UsageDetail(t, result, b.usageDetails(ctx, t.Team.ID)), nil
			}
		}
		return cards.AdaptiveCard{}, &UserError{Title: "Team not found", Text: "This Team is not in the latest scan. It may have been deleted. Send top to see the current list."}
	}

	matches := matchTeams(req.asker.visibleTeams(result.Teams), query)
	switch len(matches) {
	case 0:
		if !req.asker.admin {
			return cards.AdaptiveCard{}, &UserError{Title: "No match", Text: fmt.Sprintf("No Team that you own matches “%s”. Send my teams to list them.", query)}
		}
		return cards.AdaptiveCard{}, &UserError{Title: "No match", Text: fmt.Sprintf("No Team matches “%s”. Send top to see the largest Teams.", query)}
	case 1:
		return cards.UsageDetail(matches[0], result, b.usageDetails(ctx, matches[0].Team.ID)), nil
	}
	return cards.Choice(query, matches), nil
}

// runMyTeams handles "my teams": the Teams the asker owns, largest first.
func (b *Bot) runMyTeams(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	if len(req.args) > 1 || len(req.args) == 1 && !isTeamsWord(req.args[0]) {
		return cards.AdaptiveCard{}, &UserError{Title: "My Teams", Text: "Send my teams to list the Teams you own."}
	}

	owned := req.asker.owned
	if req.asker.admin {
		var err error
		if owned, err = b.ownedTeams(ctx, req.asker.userID); err != nil {
			return cards.AdaptiveCard{}, err
		}
	}

	result, err := b.result(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}
	mine := asker{owned: owned}.visibleTeams(result.Teams)
	if len(mine) == 0 {
		return cards.AdaptiveCard{}, &UserError{Title: "My Teams", Text: "You own no Team in the latest scan."}
	}

	// NOTE: the Top card computes each row's share against the Teams it is
	// given, so here a share is of the user's own Teams, not of the tenant.
	filtered := *result
	filtered.Teams = mine
	return cards.TopPage(&filtered, cards.TopOptions{N: min(len(mine), maxTopTeams), Title: "Your Teams by storage"}), nil
}

// runRefresh handles "refresh": a new scan now, at most once per user per
// refresh interval, because a scan costs thousands of Graph requests.
func (b *Bot) runRefresh(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	refresher, ok := b.source.(Refresher)
	if !ok {
		return cards.AdaptiveCard{}, &UserError{Title: "Refresh", Text: "This bot cannot start a scan on request. Send top to see the last scan."}
	}
	if allowed, wait := b.refreshLimit.allow(req.asker.userID); !allowed {
		b.logger.Info("rejected refresh: rate limited", "user_id", req.asker.userID, "wait", wait)
		return cards.AdaptiveCard{}, &UserError{Title: "Refresh", Text: fmt.Sprintf("You asked for a new scan recently. Try again in %s, or send top to see the last scan.", wait.Round(time.Second))}
	}
	if req.startSlow != nil {
		req.startSlow()
	}

	result, err := refresher.Refresh(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, fmt.Errorf("refresh scan: %w", err)
	}
	if result == nil {
		return cards.AdaptiveCard{}, errors.New("refresh scan: source returned no result")
	}
	return b.topPage(ctx, result, defaultTopTeams, 0), nil
}

// result returns the latest scan from the Source.
func (b *Bot) result(ctx context.Context) (*scanner.Result, error) {
	result, err := b.source.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("get scan result: %w", err)
	}
	if result == nil {
		return nil, errors.New("get scan result: source returned no result")
	}
	return result, nil
}

// parseText splits typed text into a lower-case verb and its arguments.
func parseText(text string) request {
	words := strings.Fields(text)
	if len(words) == 0 {
		return request{}
	}
	return request{verb: strings.ToLower(words[0]), args: words[1:]}
}

// parseSubmit reads a card button's data: {"cmd":"usage","teamId":…},
// {"cmd":"top","n":…,"offset":…} or {"cmd":"help"}. It returns an empty request when
// value carries no command.
func parseSubmit(value map[string]any) request {
	verb, _ := value["cmd"].(string)
	req := request{verb: strings.ToLower(strings.TrimSpace(verb))}
	if req.verb == "" {
		return request{}
	}

	if teamID, ok := value["teamId"].(string); ok {
		req.teamID = strings.TrimSpace(teamID)
	}
	switch n := value["n"].(type) {
	case float64:
		req.args = []string{strconv.FormatFloat(n, 'f', -1, 64)}
	case string:
		req.args = strings.Fields(n)
	}
	// An offset that is not a whole number from 0 to maxTopOffset is
	// ignored, so a forged button shows the first page.
	if offset, ok := value["offset"].(float64); ok && offset >= 0 && offset <= maxTopOffset && offset == float64(int(offset)) {
		req.offset = int(offset)
	}
	return req
}

// cardReply returns the reply to turn's activity that carries card alone.
// A reply with both text and attachments is split by Teams and returns no
// activity id, so cards go without text.
func cardReply(turn *activity.TurnContext, card cards.AdaptiveCard) (schema.Activity, error) {
	attachment := cards.Attachment(card)
	return turn.SendActivity(activity.MsgOptionAttachments([]schema.Attachment{{
		ContentType: attachment.ContentType,
		Content:     attachment.Content,
	}}))
}
