// Package roles decides per request what a Teams user may see: admins see
// tenant-wide storage, Team owners see the Teams they own, and everyone else
// sees nothing. It reads group membership and ownership from Microsoft Graph
// and caches each answer briefly.
package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultTTL is how long a membership or ownership answer is reused. A
	// user removed from the admin group or as a Team owner keeps access for
	// at most this long.
	DefaultTTL = 5 * time.Minute

	// ownerLookups bounds the owner lookups OwnedTeams runs at once, so one
	// user's first request does not crowd out the scan's Graph budget.
	ownerLookups = 8

	// maxCachedEntries bounds each cache. Past it, expired entries are
	// dropped, and when none are, the whole cache is.
	maxCachedEntries = 10_000
)

var (
	// ErrInvalidConfig marks a Config that New rejects.
	ErrInvalidConfig = errors.New("invalid roles config")

	// ErrInvalidID marks a user or Team id that is not a directory object id,
	// so it is never put into a Graph path.
	ErrInvalidID = errors.New("invalid directory object id")

	// errFound stops a listing early once the answer is known.
	errFound = errors.New("found")
)

// Graph reads Microsoft Graph. Paths are relative to the Graph version root,
// for example "/users/{id}/transitiveMemberOf". scanner.GraphClient
// implements it through the scan's retry gate and pacer.
type Graph interface {
	// GetJSON decodes the response to a GET of path into v.
	GetJSON(ctx context.Context, path string, v any) error
	// ListAll calls each with every item of a collection, following
	// @odata.nextLink. An error from each stops the listing and is returned.
	ListAll(ctx context.Context, path string, each func(json.RawMessage) error) error
}

// Config configures a Resolver.
type Config struct {
	// Graph answers the membership and ownership queries. Required.
	Graph Graph
	// AdminIDs are the Entra object ids of users who are admins without a
	// Graph lookup.
	AdminIDs []string
	// AdminGroupID is the object id of an Entra group whose members,
	// direct or through nested groups, are admins. Empty means none.
	AdminGroupID string
	// TTL is how long answers are cached (default DefaultTTL).
	TTL time.Duration
	// Now reads the clock for the cache (default time.Now).
	Now func() time.Time
}

// Resolver answers role questions for the bot. It is safe for concurrent
// use. Errors are not cached, so the next request asks Graph again.
type Resolver struct {
	graph        Graph
	adminIDs     map[string]bool
	adminGroupID string

	admins *cache[bool]
	owners *cache[[]Owner]
}

// Owner is an owner of a group, as Graph lists it.
type Owner struct {
	// ID is the user's Entra object id, in lower case.
	ID          string
	DisplayName string
}

// directoryObject is the part of a Graph directoryObject the resolver reads.
type directoryObject struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

// New checks cfg and returns a Resolver. It makes no Graph call.
func New(cfg Config) (*Resolver, error) {
	if cfg.Graph == nil {
		return nil, fmt.Errorf("%w: Graph is missing", ErrInvalidConfig)
	}
	r := &Resolver{
		graph:        cfg.Graph,
		adminIDs:     make(map[string]bool, len(cfg.AdminIDs)),
		adminGroupID: normalizeID(cfg.AdminGroupID),
	}
	for _, id := range cfg.AdminIDs {
		id = normalizeID(id)
		if id == "" {
			continue
		}
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("%w: admin id: %w", ErrInvalidConfig, err)
		}
		r.adminIDs[id] = true
	}
	if r.adminGroupID != "" {
		if err := checkID(r.adminGroupID); err != nil {
			return nil, fmt.Errorf("%w: admin group id: %w", ErrInvalidConfig, err)
		}
	}

	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	r.admins = newCache[bool](ttl, now)
	r.owners = newCache[[]Owner](ttl, now)
	return r, nil
}

// HasAdmins reports whether any admin is configured, by id or by group.
func (r *Resolver) HasAdmins() bool {
	return len(r.adminIDs) > 0 || r.adminGroupID != ""
}

// IsAdmin reports whether userID is a configured admin id or a transitive
// member of the admin group. An empty userID, which an activity without
// from.aadObjectId gives, is no admin.
func (r *Resolver) IsAdmin(ctx context.Context, userID string) (bool, error) {
	userID = normalizeID(userID)
	if userID == "" {
		return false, nil
	}
	if err := checkID(userID); err != nil {
		return false, err
	}
	if r.adminIDs[userID] {
		return true, nil
	}
	if r.adminGroupID == "" {
		return false, nil
	}
	if admin, ok := r.admins.get(userID); ok {
		return admin, nil
	}

	// transitiveMemberOf covers nested groups, which memberOf does not
	// (https://learn.microsoft.com/graph/api/user-list-transitivememberof).
	path := "/users/" + url.PathEscape(userID) + "/transitiveMemberOf/microsoft.graph.group?$select=id"
	admin := false
	err := r.graph.ListAll(ctx, path, func(raw json.RawMessage) error {
		var group directoryObject
		if err := json.Unmarshal(raw, &group); err != nil {
			return fmt.Errorf("decode group: %w", err)
		}
		if normalizeID(group.ID) == r.adminGroupID {
			admin = true
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return false, fmt.Errorf("list groups of user %s: %w", userID, err)
	}

	r.admins.put(userID, admin)
	return admin, nil
}

// OwnedTeams returns the ids, in lower case, of the Teams among teamIDs
// that userID owns. Graph offers no app-only way to list the groups a user
// owns (List ownedObjects supports no application permission), so it reads
// each Team's owners, at most ownerLookups at a time, through the cache
// that OwnsTeam shares.
func (r *Resolver) OwnedTeams(ctx context.Context, userID string, teamIDs []string) (map[string]bool, error) {
	owned := make(map[string]bool)
	userID = normalizeID(userID)
	if userID == "" {
		return owned, nil
	}
	if err := checkID(userID); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, ownerLookups)
	)
	for _, teamID := range teamIDs {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			owns, err := r.OwnsTeam(ctx, userID, teamID)

			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == nil:
				firstErr = err
				cancel()
			case owns:
				owned[normalizeID(teamID)] = true
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("list Teams owned by user %s: %w", userID, firstErr)
	}
	return owned, nil
}

// OwnsTeam reports whether userID is among the owners of the group teamID,
// read from the group's owners relationship.
func (r *Resolver) OwnsTeam(ctx context.Context, userID, teamID string) (bool, error) {
	userID, teamID = normalizeID(userID), normalizeID(teamID)
	if userID == "" || teamID == "" {
		return false, nil
	}
	if err := checkID(userID); err != nil {
		return false, err
	}

	owners, err := r.Owners(ctx, teamID)
	if err != nil {
		return false, err
	}
	for _, o := range owners {
		if o.ID == userID {
			return true, nil
		}
	}
	return false, nil
}

// Owners returns the users who own the group teamID, with their display
// names, in the order Graph lists them. A group with no owner returns an
// empty list. Answers are cached for the TTL and shared with OwnsTeam.
func (r *Resolver) Owners(ctx context.Context, teamID string) ([]Owner, error) {
	teamID = normalizeID(teamID)
	if err := checkID(teamID); err != nil {
		return nil, err
	}
	if owners, ok := r.owners.get(teamID); ok {
		return owners, nil
	}

	owners := []Owner{}
	path := "/groups/" + url.PathEscape(teamID) + "/owners/microsoft.graph.user?$select=id,displayName"
	err := r.graph.ListAll(ctx, path, func(raw json.RawMessage) error {
		var object directoryObject
		if err := json.Unmarshal(raw, &object); err != nil {
			return fmt.Errorf("decode directory object: %w", err)
		}
		if id := normalizeID(object.ID); id != "" {
			owners = append(owners, Owner{ID: id, DisplayName: object.DisplayName})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list owners of group %s: %w", teamID, err)
	}
	r.owners.put(teamID, owners)
	return owners, nil
}

// normalizeID lowers and trims an object id, because Entra compares GUIDs
// without regard to case.
func normalizeID(id string) string {
	return strings.ToLower(strings.TrimSpace(id))
}

// checkID accepts hex digits and dashes only, so that no id can change a
// Graph path. It is looser than a GUID because the Agents Playground's ids
// have 13 digits in their last group.
func checkID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '-') {
			return fmt.Errorf("%w: %q", ErrInvalidID, id)
		}
	}
	return nil
}

// cache is a map of answers that expire after a time to live.
type cache[V any] struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	value   V
	expires time.Time
}

func newCache[V any](ttl time.Duration, now func() time.Time) *cache[V] {
	return &cache[V]{ttl: ttl, now: now, entries: make(map[string]cacheEntry[V])}
}

func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	entry, ok := c.entries[key]
	if !ok || !c.now().Before(entry.expires) {
		var zero V
		return zero, false
	}
	return entry.value, true
}

func (c *cache[V]) put(key string, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()

	now := c.now()
	if len(c.entries) >= maxCachedEntries {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedEntries {
			clear(c.entries)
		}
	}
	c.entries[key] = cacheEntry[V]{value: value, expires: now.Add(c.ttl)}
}
