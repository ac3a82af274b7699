package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/scanner"
)

// Roles decides who may see what, per request. roles.Resolver implements
// it, and every id is an Entra object id.
type Roles interface {
	// IsAdmin reports whether userID may see tenant-wide storage.
	IsAdmin(ctx context.Context, userID string) (bool, error)
	// OwnedTeams returns the lower-case ids of the Teams among teamIDs that
	// userID owns.
	OwnedTeams(ctx context.Context, userID string, teamIDs []string) (map[string]bool, error)
	// OwnsTeam reports whether userID is an owner of the group teamID.
	OwnsTeam(ctx context.Context, userID, teamID string) (bool, error)
}

// access is who may run a command.
type access int

const (
	// forOwners allows Team owners and admins.
	forOwners access = iota
	// forAdmins allows admins only.
	forAdmins
)

// asker is the user behind one request and what they may see.
type asker struct {
	// userID is from.aadObjectId, empty when the activity has none.
	userID string
	admin  bool
	// owned are the ids of the groups the user owns, lower case; nil for
	// admins, whose ownership is read only by "my teams".
	owned map[string]bool
}

// noRoleCard is the refusal for a user who is neither admin nor owner.
var noRoleCard = cards.Message("Not available",
	"storagebot is for Microsoft 365 admins, who see every Team, and for Team owners, who see the Teams they own. Ask your IT admin if you need access.")

// resolveAsker looks up the role of the user with Entra object id userID.
// An empty id has no role, without a Graph call.
func (b *Bot) resolveAsker(ctx context.Context, userID string) (asker, error) {
	a := asker{userID: strings.TrimSpace(userID)}
	if a.userID == "" {
		return a, nil
	}

	admin, err := b.roles.IsAdmin(ctx, a.userID)
	if err != nil {
		return asker{}, fmt.Errorf("check admin role of user %s: %w", a.userID, err)
	}
	if admin {
		a.admin = true
		return a, nil
	}

	owned, err := b.ownedTeams(ctx, a.userID)
	if err != nil {
		return asker{}, err
	}
	a.owned = owned
	return a, nil
}

// ownedTeams returns the ids of the scanned Teams that userID owns. Graph
// has no app-only list of a user's groups, so the owners of each Team of
// the latest scan are checked.
func (b *Bot) ownedTeams(ctx context.Context, userID string) (map[string]bool, error) {
	result, err := b.result(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(result.Teams))
	for _, t := range result.Teams {
		ids = append(ids, t.Team.ID)
	}

	owned, err := b.roles.OwnedTeams(ctx, userID, ids)
	if err != nil {
		return nil, fmt.Errorf("list Teams owned by user %s: %w", userID, err)
	}
	return owned, nil
}

// hasRole reports whether the user may use the bot at all.
func (a asker) hasRole() bool {
	return a.admin || len(a.owned) > 0
}

// may reports whether the user may run a command of the given access.
func (a asker) may(level access) bool {
	switch level {
	case forAdmins:
		return a.admin
	case forOwners:
		return a.hasRole()
	}
	return false
}

// visibleTeams returns the Teams of the result the user may see: all of
// them for an admin, the owned ones for an owner.
func (a asker) visibleTeams(teams []scanner.TeamUsage) []scanner.TeamUsage {
	if a.admin {
		return teams
	}
	var visible []scanner.TeamUsage
	for _, t := range teams {
		if a.owned[strings.ToLower(t.Team.ID)] {
			visible = append(visible, t)
		}
	}
	return visible
}

// canSeeTeam reports whether the user may see the Team teamID, asking
// Graph for the group's owners when the user is no admin.
func (b *Bot) canSeeTeam(ctx context.Context, a asker, teamID string) (bool, error) {
	if a.admin {
		return true, nil
	}
	owns, err := b.roles.OwnsTeam(ctx, a.userID, teamID)
	if err != nil {
		return false, fmt.Errorf("check owners of team %s: %w", teamID, err)
	}
	return owns, nil
}
