package roles

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	adminGroup = "aaaaaaaa-0000-0000-0000-000000000001"
	alex       = "00000000-0000-0000-0000-0000000000020"
	megan      = "00000000-0000-0000-0000-0000000000021"
	teamA      = "bbbbbbbb-0000-0000-0000-00000000000a"
	teamB      = "bbbbbbbb-0000-0000-0000-00000000000b"
)

// fakeGraph serves collections from a map of path to ids and counts calls.
type fakeGraph struct {
	collections map[string][]string
	err         error

	mu    sync.Mutex
	calls map[string]int
}

func (g *fakeGraph) GetJSON(context.Context, string, any) error {
	return errors.New("GetJSON is not used by roles")
}

func (g *fakeGraph) ListAll(_ context.Context, path string, each func(json.RawMessage) error) error {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]int{}
	}
	g.calls[path]++
	g.mu.Unlock()

	if g.err != nil {
		return g.err
	}
	for _, id := range g.collections[path] {
		raw, _ := json.Marshal(map[string]string{"@odata.type": "#microsoft.graph.group", "id": id, "displayName": "Name of " + id})
		if err := each(raw); err != nil {
			return err
		}
	}
	return nil
}

func (g *fakeGraph) callCount(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[path]
}

func memberOfPath(user string) string {
	return "/users/" + user + "/transitiveMemberOf/microsoft.graph.group?$select=id"
}

func newTestResolver(t *testing.T, g *fakeGraph, edit func(*Config)) (*Resolver, *time.Time) {
	t.Helper()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	cfg := Config{Graph: g, AdminGroupID: adminGroup, Now: func() time.Time { return now }}
	if edit != nil {
		edit(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r, &now
}

func TestIsAdmin(t *testing.T) {
	graph := &fakeGraph{collections: map[string][]string{
		memberOfPath(alex):  {"cccccccc-0000-0000-0000-000000000001", adminGroup},
		memberOfPath(megan): {"cccccccc-0000-0000-0000-000000000001"},
	}}
	tests := []struct {
		name      string
		user      string
		adminIDs  []string
		group     string
		want      bool
		wantCalls int
	}{
		{name: "transitive member of the admin group", user: alex, group: adminGroup, want: true, wantCalls: 1},
		{name: "upper-case user id", user: strings.ToUpper(alex), group: adminGroup, want: true, wantCalls: 1},
		{name: "not a member", user: megan, group: adminGroup, want: false, wantCalls: 1},
		{name: "configured id needs no Graph", user: megan, adminIDs: []string{strings.ToUpper(megan)}, group: adminGroup, want: true, wantCalls: 0},
		{name: "no group configured", user: alex, group: "", want: false, wantCalls: 0},
		{name: "missing aadObjectId", user: "", group: adminGroup, want: false, wantCalls: 0},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGraph{collections: graph.collections}
			r, _ := newTestResolver(t, g, func(c *Config) {
				c.AdminIDs = tt.adminIDs
				c.AdminGroupID = tt.group
			})

			got, err := r.IsAdmin(context.Background(), tt.user)
			if err != nil {
				t.Fatalf("IsAdmin: %v", err)
			}
			if got != tt.want {
				t.Errorf("IsAdmin(%q) = %v, want %v", tt.user, got, tt.want)
			}
			if n := g.callCount(memberOfPath(strings.ToLower(tt.user))); n != tt.wantCalls {
				t.Errorf("Graph called %d times, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestIsAdminCachedUntilTTL(t *testing.T) {
	g := &fakeGraph{collections: map[string][]string{memberOfPath(alex): {adminGroup}}}
	r, now := newTestResolver(t, g, func(c *Config) { c.TTL = time.Minute })
	ctx := context.Background()

	for range 3 {
		if admin, err := r.IsAdmin(ctx, alex); err != nil || !admin {
			t.Fatalf("IsAdmin = %v, %v; want true", admin, err)
		}
	}
	if n := g.callCount(memberOfPath(alex)); n != 1 {
		t.Errorf("Graph called %d times within the TTL, want 1", n)
	}

	// Alex leaves the group: the cached answer lasts until the TTL ends.
	g.collections = map[string][]string{}
	*now = now.Add(59 * time.Second)
	if admin, _ := r.IsAdmin(ctx, alex); !admin {
		t.Error("IsAdmin = false before the TTL ended, want the cached true")
	}
	*now = now.Add(time.Second)
	if admin, _ := r.IsAdmin(ctx, alex); admin {
		t.Error("IsAdmin = true after the TTL, want false from Graph")
	}
}

func TestGraphErrorsNotCached(t *testing.T) {
	graphErr := errors.New("graph returned HTTP 503")
	g := &fakeGraph{err: graphErr, collections: map[string][]string{memberOfPath(alex): {adminGroup}}}
	r, _ := newTestResolver(t, g, nil)
	ctx := context.Background()

	if _, err := r.IsAdmin(ctx, alex); !errors.Is(err, graphErr) {
		t.Fatalf("IsAdmin error = %v, want the Graph error", err)
	}
	g.err = nil
	if admin, err := r.IsAdmin(ctx, alex); err != nil || !admin {
		t.Errorf("IsAdmin after recovery = %v, %v; want true", admin, err)
	}
}

func TestOwners(t *testing.T) {
	path := "/groups/" + teamA + "/owners/microsoft.graph.user?$select=id,displayName"
	g := &fakeGraph{collections: map[string][]string{path: {strings.ToUpper(megan), alex}}}
	r, now := newTestResolver(t, g, nil)
	ctx := context.Background()

	want := []Owner{{ID: megan, DisplayName: "Name of " + strings.ToUpper(megan)}, {ID: alex, DisplayName: "Name of " + alex}}
	for range 2 {
		got, err := r.Owners(ctx, strings.ToUpper(teamA))
		if err != nil {
			t.Fatalf("Owners: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Owners = %+v, want %+v", got, want)
		}
	}
	if owns, err := r.OwnsTeam(ctx, megan, teamA); err != nil || !owns {
		t.Errorf("OwnsTeam after Owners = %v, %v; want true from the shared cache", owns, err)
	}
	if calls := g.callCount(path); calls != 1 {
		t.Errorf("Graph was asked %d times for the owners, want 1 while the answer is cached", calls)
	}

	*now = now.Add(DefaultTTL)
	if _, err := r.Owners(ctx, teamA); err != nil {
		t.Fatalf("Owners after the TTL: %v", err)
	}
	if calls := g.callCount(path); calls != 2 {
		t.Errorf("Graph was asked %d times for the owners, want 2 after the TTL", calls)
	}

	none, err := r.Owners(ctx, teamB)
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("Owners of a group without owners = %#v, %v; want an empty list", none, err)
	}
	if _, err := r.Owners(ctx, "../users"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Owners of an invalid id error = %v, want ErrInvalidID", err)
	}
}

func TestOwnership(t *testing.T) {
	g := &fakeGraph{collections: map[string][]string{
		"/groups/" + teamA + "/owners/microsoft.graph.user?$select=id,displayName": {strings.ToUpper(megan)},
		"/groups/" + teamB + "/owners/microsoft.graph.user?$select=id,displayName": {alex},
	}}
	r, _ := newTestResolver(t, g, nil)
	ctx := context.Background()

	owned, err := r.OwnedTeams(ctx, megan, []string{strings.ToUpper(teamA), teamB})
	if err != nil {
		t.Fatalf("OwnedTeams: %v", err)
	}
	if !owned[teamA] {
		t.Errorf("OwnedTeams = %v, want it to contain %s", owned, teamA)
	}
	if len(owned) != 1 {
		t.Errorf("OwnedTeams = %v, want only %s", owned, teamA)
	}

	tests := []struct {
		user, team string
		want       bool
	}{
		{user: megan, team: teamA, want: true},
		{user: megan, team: teamB, want: false},
		{user: alex, team: teamB, want: true},
		{user: "", team: teamA, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.user+" owns "+tt.team, func(t *testing.T) {
			got, err := r.OwnsTeam(ctx, tt.user, tt.team)
			if err != nil {
				t.Fatalf("OwnsTeam: %v", err)
			}
			if got != tt.want {
				t.Errorf("OwnsTeam(%q, %q) = %v, want %v", tt.user, tt.team, got, tt.want)
			}
		})
	}
}

func TestInvalidIDsNeverReachGraph(t *testing.T) {
	g := &fakeGraph{}
	r, _ := newTestResolver(t, g, nil)
	ctx := context.Background()

	for _, id := range []string{"../groups", "abc?x=1", "29:1abc", "a/b", "ÿ"} {
		t.Run(id, func(t *testing.T) {
			if _, err := r.IsAdmin(ctx, id); !errors.Is(err, ErrInvalidID) {
				t.Errorf("IsAdmin(%q) error = %v, want ErrInvalidID", id, err)
			}
			if _, err := r.OwnedTeams(ctx, id, []string{teamA}); !errors.Is(err, ErrInvalidID) {
				t.Errorf("OwnedTeams(%q) error = %v, want ErrInvalidID", id, err)
			}
			if _, err := r.OwnsTeam(ctx, megan, id); !errors.Is(err, ErrInvalidID) {
				t.Errorf("OwnsTeam(team %q) error = %v, want ErrInvalidID", id, err)
			}
		})
	}
	if len(g.calls) != 0 {
		t.Errorf("Graph received %v, want no call", g.calls)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "missing Graph", cfg: Config{}},
		{name: "admin id with a slash", cfg: Config{Graph: &fakeGraph{}, AdminIDs: []string{"a/b"}}},
		{name: "admin group that is no id", cfg: Config{Graph: &fakeGraph{}, AdminGroupID: "IT Admins"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestOwnedTeamsGraphError(t *testing.T) {
	graphErr := errors.New("graph unavailable")
	g := &fakeGraph{err: graphErr}
	r, _ := newTestResolver(t, g, nil)

	owned, err := r.OwnedTeams(context.Background(), megan, []string{teamA, teamB})
	if !errors.Is(err, graphErr) {
		t.Errorf("OwnedTeams error = %v, want the Graph error", err)
	}
	if owned != nil {
		t.Errorf("OwnedTeams = %v, want nil on error", owned)
	}
}
