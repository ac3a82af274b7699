package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// DefaultBaseURL is Microsoft Graph v1.0 in Microsoft's global cloud.
	DefaultBaseURL = "https://graph.microsoft.com/v1.0"

	// DefaultMaxAttempts is how many requests one Graph call may make,
	// including the first.
	DefaultMaxAttempts = 6
	// maxMaxAttempts bounds MaxAttempts so that a typo cannot make a scan
	// retry for hours.
	maxMaxAttempts = 50

	// DefaultBaseDelay and DefaultMaxDelay bound the exponential backoff
	// that applies when Graph sends no Retry-After.
	DefaultBaseDelay = 500 * time.Millisecond
	DefaultMaxDelay  = 30 * time.Second

	// DefaultAttemptTimeout bounds one request, body included, so that a
	// hung connection becomes a retried network error.
	DefaultAttemptTimeout = 60 * time.Second

	// teamsQuery lists Microsoft 365 groups that have a Team. $top=999 is
	// the maximum page size of GET /groups (Graph "List groups", v1.0).
	teamsQuery = "$filter=resourceProvisioningOptions/Any(x:x%20eq%20'Team')&$select=id,displayName&$top=999"

	// maxPages bounds ListTeams even if Graph kept sending new nextLinks:
	// at 999 groups a page it allows about 100 million groups.
	maxPages = 100_000

	// maxBody bounds a response body. A page of 999 groups with id and
	// displayName is about 150 KB.
	maxBody = 32 << 20
)

// ErrInvalidConfig marks a Config that New or NewGraphClient rejects.
var ErrInvalidConfig = errors.New("invalid scanner config")

// TokenSource returns a bearer token for Microsoft Graph. entra.Client and
// entra.Static implement it.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// tokenInvalidator is implemented by a TokenSource that can drop a token
// that Graph rejected with 401, so that the next Token call fetches a new
// one. entra.Client implements it.
type tokenInvalidator interface {
	Invalidate(token string)
}

// Config configures the Graph client and the scan. NewGraphClient reads the
// Graph and retry fields. New reads all of them.
type Config struct {
	// BaseURL is the Graph root with version. Empty means DefaultBaseURL.
	// Plain http is accepted only for a loopback host, because every
	// request carries a bearer token.
	BaseURL    string
	Tokens     TokenSource
	HTTPClient *http.Client
	// Version is storagebot's version for the User-Agent. Empty means "dev".
	Version string
	// TenantID is copied into each Result.
	TenantID string

	// Concurrency is how many JSON batches of lookups a scan has in flight
	// at once: 1 to 64, and 0 means DefaultConcurrency.
	Concurrency int
	// ChannelSites makes a scan also measure the SharePoint sites of private
	// and shared channels and add them to their Team's total. It costs one
	// more lookup per Team and two per such channel, in two more round trips
	// after the drives.
	ChannelSites bool
	// MaxAttempts bounds the requests of one Graph call: 1 to 50, and 0
	// means DefaultMaxAttempts.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the backoff. Zero means the defaults.
	BaseDelay, MaxDelay time.Duration
	// AttemptTimeout bounds one request. Zero means DefaultAttemptTimeout.
	AttemptTimeout time.Duration

	// Pacer spaces requests while Graph throttles. Share one between every
	// client of the same tenant. Nil means a Pacer of this client's own.
	Pacer *Pacer
	// Hooks, when set, is told of throttled answers and retries, which an
	// http.RoundTripper cannot see inside a JSON batch. Nil means none.
	Hooks Hooks

	// Logger receives retries and per-Team failures. Nil discards them.
	Logger *slog.Logger
	// Now is the clock for Result times and Retry-After dates. Nil means
	// time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx ends and then returns ctx's error. Nil
	// means a timer. Tests inject one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random number in [0, 1) for the backoff. Nil means
	// math/rand/v2's Float64.
	Jitter func() float64

	// Progress, when set, is called after each page of Teams is listed and
	// after each Team is measured, with the counts so far. Calls come from
	// several goroutines but never overlap, and a slow callback slows the
	// scan.
	Progress func(done, discovered int)
}

// GraphClient reads Teams and drives from Microsoft Graph. Every request
// goes through one retry gate (see retry.go). It is safe for concurrent use.
type GraphClient struct {
	base       *url.URL
	tokens     TokenSource
	httpClient *http.Client
	userAgent  string
	logger     *slog.Logger
	gate       retryGate
}

// NewGraphClient validates the Graph and retry fields of cfg and applies
// their defaults.
func NewGraphClient(cfg Config) (*GraphClient, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Tokens == nil {
		return nil, fmt.Errorf("%w: token source is missing", ErrInvalidConfig)
	}
	if cfg.MaxAttempts < 0 || cfg.MaxAttempts > maxMaxAttempts {
		return nil, fmt.Errorf("%w: max attempts %d is out of range: want 1 to %d, or 0 for %d", ErrInvalidConfig, cfg.MaxAttempts, maxMaxAttempts, DefaultMaxAttempts)
	}
	if cfg.BaseDelay < 0 || cfg.MaxDelay < 0 || cfg.AttemptTimeout < 0 {
		return nil, fmt.Errorf("%w: base delay %s, max delay %s and attempt timeout %s must not be negative", ErrInvalidConfig, cfg.BaseDelay, cfg.MaxDelay, cfg.AttemptTimeout)
	}

	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	sleep := cfg.Sleep
	if sleep == nil {
		sleep = sleepContext
	}
	jitter := cfg.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}

	return &GraphClient{
		base:       base,
		tokens:     cfg.Tokens,
		httpClient: httpClient,
		// Graph's throttling guidance requests NONISV|<company>|<app>/<version>
		// ("Avoid getting throttled or blocked in SharePoint Online").
		userAgent: "NONISV|storagebot|storagebot/" + version,
		logger:    logger,
		gate: retryGate{
			maxAttempts:    orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
			attemptTimeout: orDefault(cfg.AttemptTimeout, DefaultAttemptTimeout),
			backoff: backoff{
				base:   orDefault(cfg.BaseDelay, DefaultBaseDelay),
				max:    orDefault(cfg.MaxDelay, DefaultMaxDelay),
				jitter: jitter,
			},
			pacer: orNew(cfg.Pacer),
			hooks: hooksOrNone(cfg.Hooks),
			now:   now,
			sleep: sleep,
		},
	}, nil
}

// ListTeams calls fn with each page of Teams as Graph returns it, following
// @odata.nextLink verbatim until Graph sends none. fn gets each Team id
// once, even when Graph repeats it on a later page, and is not called for a
// page with no new Team. An error from fn stops the listing and is returned.
// A nextLink seen before, or on another host than the base URL, stops the
// listing with an error. Errors name the page, counted from 1.
func (g *GraphClient) ListTeams(ctx context.Context, fn func(page []Team) error) error {
	next := g.base.String() + "/groups?" + teamsQuery
	seenLinks := make(map[string]bool)
	seenIDs := make(map[string]bool)

	for page := 1; next != ""; page++ {
		if page > maxPages {
			return fmt.Errorf("list teams page %d: stop after %d pages", page, maxPages)
		}
		if page > 1 {
			if err := g.checkNextLink(next, seenLinks); err != nil {
				return fmt.Errorf("list teams page %d: %w", page, err)
			}
		}
		seenLinks[next] = true

		logger := g.logger.With("page", page)
		body, _, err := g.gate.get(ctx, g, logger, next)
		if err != nil {
			return fmt.Errorf("list teams page %d: %w", page, err)
		}
		var p groupsPage
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("list teams page %d: decode groups: %w", page, err)
		}

		fresh := make([]Team, 0, len(p.Value))
		for _, team := range p.Value {
			if team.ID == "" {
				logger.Warn("skip group without id", "display_name", team.DisplayName)
				continue
			}
			if seenIDs[team.ID] {
				logger.Debug("skip repeated team", "team_id", team.ID)
				continue
			}
			seenIDs[team.ID] = true
			fresh = append(fresh, team)
		}
		if len(fresh) > 0 {
			if err := fn(fresh); err != nil {
				return fmt.Errorf("list teams page %d: %w", page, err)
			}
		}
		next = p.NextLink
	}
	return nil
}

// GetDrive returns the default drive of the group groupID, with its quota.
// Graph errors are *GraphError, wrapped in *AttemptsError when the last
// allowed attempt still failed.
func (g *GraphClient) GetDrive(ctx context.Context, groupID string) (Drive, error) {
	drive, _, err := g.getDrive(ctx, groupID)
	if err != nil {
		return Drive{}, fmt.Errorf("get drive of group %s: %w", groupID, err)
	}
	return drive, nil
}

// GetJSON sends GET path through the retry gate and the Pacer and decodes
// the JSON response into v. path is relative to the Graph base URL, as in
// "/groups/{id}/owners", or an absolute URL on the base URL's host, such as
// an @odata.nextLink. Graph errors are *GraphError, wrapped in
// *AttemptsError when the last allowed attempt still failed.
func (g *GraphClient) GetJSON(ctx context.Context, path string, v any) error {
	rawURL, err := g.resolve(path)
	if err != nil {
		return fmt.Errorf("get %s: %w", redactQuery(path), err)
	}
	body, _, err := g.gate.get(ctx, g, g.logger.With("path", redactQuery(path)), rawURL)
	if err != nil {
		return fmt.Errorf("get %s: %w", redactQuery(path), err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("get %s: decode response: %w", redactQuery(path), err)
	}
	return nil
}

// ListAll calls each with every element of the "value" array of the
// collection at path, page after page, following @odata.nextLink verbatim
// until Graph sends none. The same nextLink twice, or one on another host,
// stops the listing with an error, and so does an error from each. path is
// as for GetJSON.
func (g *GraphClient) ListAll(ctx context.Context, path string, each func(json.RawMessage) error) error {
	next, err := g.resolve(path)
	if err != nil {
		return fmt.Errorf("list %s: %w", redactQuery(path), err)
	}
	seen := make(map[string]bool)

	for page := 1; next != ""; page++ {
		if page > maxPages {
			return fmt.Errorf("list %s page %d: stop after %d pages", redactQuery(path), page, maxPages)
		}
		if page > 1 {
			if err := g.checkNextLink(next, seen); err != nil {
				return fmt.Errorf("list %s page %d: %w", redactQuery(path), page, err)
			}
		}
		seen[next] = true

		var p collectionPage
		if err := g.GetJSON(ctx, next, &p); err != nil {
			return fmt.Errorf("list page %d: %w", page, err)
		}
		for _, item := range p.Value {
			if err := each(item); err != nil {
				return fmt.Errorf("list %s page %d: %w", redactQuery(path), page, err)
			}
		}
		next = p.NextLink
	}
	return nil
}

// resolve turns a path relative to the base URL, or an absolute URL on the
// base URL's scheme and host, into an absolute URL. Any other host is
// rejected, because the request carries the bearer token.
func (g *GraphClient) resolve(path string) (string, error) {
	if strings.HasPrefix(path, "https://") || strings.HasPrefix(path, "http://") {
		u, err := url.Parse(path)
		if err != nil {
			return "", fmt.Errorf("parse URL: %w", err)
		}
		if u.Scheme != g.base.Scheme || !strings.EqualFold(u.Host, g.base.Host) {
			return "", fmt.Errorf("URL points to %s://%s, not to the Graph base URL's host %s", u.Scheme, u.Host, g.base.Host)
		}
		return path, nil
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return g.base.String() + path, nil
}

// relative returns rawURL relative to the Graph base URL, the form that
// JSON batch requests take, and false when rawURL is not under it.
func (g *GraphClient) relative(rawURL string) (string, bool) {
	rest, ok := strings.CutPrefix(rawURL, g.base.String())
	if !ok || !strings.HasPrefix(rest, "/") {
		return "", false
	}
	return rest, true
}

// redactQuery drops the query of a path for errors and logs: a nextLink's
// $skiptoken is opaque and long.
func redactQuery(path string) string {
	before, _, _ := strings.Cut(path, "?")
	return before
}

// getDrive is GetDrive that also returns how many requests it made, and
// does not wrap its error, which becomes a TeamUsage's Reason.
func (g *GraphClient) getDrive(ctx context.Context, groupID string) (Drive, int, error) {
	if groupID == "" {
		return Drive{}, 0, errors.New("group id is empty")
	}
	u := g.base.JoinPath("groups", groupID, "drive")

	body, attempts, err := g.gate.get(ctx, g, g.logger.With("team_id", groupID), u.String())
	if err != nil {
		return Drive{}, attempts, err
	}
	var drive Drive
	if err := json.Unmarshal(body, &drive); err != nil {
		return Drive{}, attempts, fmt.Errorf("decode drive: %w", err)
	}
	return drive, attempts, nil
}

// checkNextLink rejects a nextLink that was followed before, which would
// loop forever, or that leaves the base URL's scheme and host, which would
// send the bearer token elsewhere.
func (g *GraphClient) checkNextLink(link string, seen map[string]bool) error {
	if seen[link] {
		return errors.New("repeated @odata.nextLink")
	}
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("parse @odata.nextLink: %w", err)
	}
	if u.Scheme != g.base.Scheme || !strings.EqualFold(u.Host, g.base.Host) {
		return fmt.Errorf("@odata.nextLink points to %s://%s, not to the Graph base URL's host %s", u.Scheme, u.Host, g.base.Host)
	}
	return nil
}

// parseBaseURL validates raw, or returns DefaultBaseURL when it is empty.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: Graph base URL %q: %w", ErrInvalidConfig, raw, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: Graph base URL %q must be an absolute URL without query, fragment or user info", ErrInvalidConfig, raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("%w: Graph base URL %q must use https (plain http only on a loopback host)", ErrInvalidConfig, raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func orNew(p *Pacer) *Pacer {
	if p == nil {
		return NewPacer()
	}
	return p
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// oneLine folds every run of white space in s, line breaks included, into
// one space, so that a server's message fits a log line or a CSV cell.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
