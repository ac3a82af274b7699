package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/scanner"
)

// Limits of the top command.
const (
	defaultTopTeams = 10
	maxTopTeams     = 50
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
}

// command is one row of the command table.
type command struct {
	verb        string
	usage       string
	description string
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
			run:         (*Bot).runTop,
		},
		{
			verb:        "usage",
			usage:       "usage <team name>",
			description: "Show the SharePoint storage of one Team. Part of the name is enough.",
			run:         (*Bot).runUsage,
		},
		{
			verb:        "help",
			usage:       "help",
			description: "List these commands.",
			run:         (*Bot).runHelp,
		},
	}
}

// Commands returns the chat commands with their usage and description.
func Commands() []cards.Command {
	table := commandTable()
	out := make([]cards.Command, 0, len(table))
	for _, c := range table {
		out = append(out, cards.Command{Usage: c.usage, Description: c.description})
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
	return cardReply(turn, b.run(ctx, req, logger))
}

// run executes req and returns the card to send. Unknown commands get the
// help card.
func (b *Bot) run(ctx context.Context, req request, logger *slog.Logger) cards.AdaptiveCard {
	var cmd *command
	for _, c := range commandTable() {
		if c.verb == req.verb {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		return cards.Help(Commands())
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

func (b *Bot) runHelp(context.Context, request) (cards.AdaptiveCard, error) {
	return cards.Help(Commands()), nil
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
	return cards.Top(result, n), nil
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
func (b *Bot) runUsage(ctx context.Context, req request) (cards.AdaptiveCard, error) {
	query := strings.Join(req.args, " ")
	if req.teamID == "" && query == "" {
		return cards.AdaptiveCard{}, &UserError{Title: "Team usage", Text: "Send usage followed by a Team name, for example: usage Marketing"}
	}

	result, err := b.result(ctx)
	if err != nil {
		return cards.AdaptiveCard{}, err
	}

	if req.teamID != "" {
		for _, t := range result.Teams {
			if t.Team.ID == req.teamID {
				return cards.Usage(t, result), nil
			}
		}
		return cards.AdaptiveCard{}, &UserError{Title: "Team not found", Text: "This Team is not in the latest scan. It may have been deleted. Send top to see the current list."}
	}

	matches := matchTeams(result.Teams, query)
	switch len(matches) {
	case 0:
		return cards.AdaptiveCard{}, &UserError{Title: "No match", Text: fmt.Sprintf("No Team matches “%s”. Send top to see the largest Teams.", query)}
	case 1:
		return cards.Usage(matches[0], result), nil
	}
	return cards.Choice(query, matches), nil
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
// {"cmd":"top","n":…} or {"cmd":"help"}. It returns an empty request when
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
