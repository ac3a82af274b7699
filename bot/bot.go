// Package bot is the Teams webhook: it authenticates and decodes activities
// posted to /api/messages, routes chat commands and sends Adaptive Card
// replies through the Bot Connector.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/botauth"
	"github.com/storagebot/storagebot/connector"
	"github.com/storagebot/storagebot/scanner"
)

const (
	// messagesPath is the messaging endpoint registered for the bot.
	messagesPath = "/api/messages"

	// defaultMaxBodyBytes bounds an activity body. Teams messages are capped
	// at about 100 KB, so 256 KiB leaves room for channelData and entities.
	defaultMaxBodyBytes = 256 << 10

	// defaultReplyTimeout bounds one background reply, scan included. It is
	// an estimate for a tenant of a few thousand Teams under throttling.
	defaultReplyTimeout = 5 * time.Minute

	// Duplicate deliveries come when Teams retries a POST it thinks timed
	// out, within seconds to minutes, so ten minutes of ids is enough.
	dedupeTTL    = 10 * time.Minute
	dedupeMaxIDs = 10_000

	// defaultRefreshInterval is how often one user may force a new scan. A
	// scan of a few thousand Teams costs thousands of Graph requests of the
	// tenant's shared SharePoint budget.
	defaultRefreshInterval = 10 * time.Minute

	// invokeTimeout bounds the work for an invoke, which is answered in the
	// HTTP response: Teams gives up on a bot after about 15 seconds.
	invokeTimeout = 10 * time.Second

	// defaultProgressDelay is how long an answer may take before a progress
	// card stands in for it.
	defaultProgressDelay = 2 * time.Second
	// progressInterval is how often a progress card is updated. Teams
	// allows a bot 7 messages per second and 60 per 30 seconds in one
	// conversation, so one update a second leaves room for other replies.
	progressInterval = time.Second
)

// Source returns the latest scan, scanning when none is fresh. It must
// return when ctx ends. snapshot.Source implements it.
type Source interface {
	Get(ctx context.Context) (*scanner.Result, error)
}

// Refresher starts a new scan whatever the age of the last one.
// snapshot.Source implements it. A Source that also implements it enables the
// refresh command.
type Refresher interface {
	Refresh(ctx context.Context) (*scanner.Result, error)
}

// Config configures a Bot.
type Config struct {
	// AppID is the bot's Entra app id, the audience of inbound tokens.
	// Empty is allowed only with LocalDevelopment.
	AppID string
	// TenantIDs are the tenants whose users are served; everyone else gets
	// a refusal with no data.
	TenantIDs []string
	// LocalDevelopment turns inbound authentication off and allows loopback
	// serviceUrls such as the Agents Playground's. The caller sets it only
	// when AppID is empty and the webhook listens on a loopback address.
	LocalDevelopment bool
	// MaxBodyBytes bounds a request body (default 256 KiB).
	MaxBodyBytes int64
	// ReplyTimeout bounds the background work for one activity (default 5 min).
	ReplyTimeout time.Duration
	// Logger receives request, reply and error lines; nil discards them.
	Logger *slog.Logger
	// Source provides scan results.
	Source Source
	// Roles decides per request what the sender may see. Required.
	Roles Roles
	// RefreshInterval is how often one user may force a new scan with the
	// refresh command (default 10 min).
	RefreshInterval time.Duration
	// Connector sends the replies.
	Connector *connector.Client
	// Authenticator checks inbound requests when LocalDevelopment is off.
	// Nil selects a Bot Framework JWT validator for AppID with the public
	// OpenID metadata URL.
	Authenticator Authenticator
	// Now reads the clock for duplicate detection (default time.Now).
	Now func() time.Time
	// Seen, when set, records activity ids in a store that replicas share,
	// so that a retried delivery that reaches another replica is ignored
	// too. FirstSeen reports whether the id is new. Nil keeps the
	// in-memory set of this process.
	Seen interface {
		FirstSeen(ctx context.Context, activityID string) (bool, error)
	}
	// History, when set, supplies the change over time in the summary and
	// usage cards, and the scan that an export link names.
	History History
	// TenantQuota is the tenant's storage quota in bytes, which Graph does
	// not expose; zero leaves the share out of the summary.
	TenantQuota int64
	// Export configures the export command's download links; a zero
	// value disables the command.
	Export ExportConfig
	// ProgressDelay is how long an answer may take before a progress card
	// stands in for it (default 2 s).
	ProgressDelay time.Duration
	// After waits like time.After (the default); tests drive progress
	// updates with it.
	After func(d time.Duration) <-chan time.Time
	// Commands are chat commands of other packages, added after the
	// built-in ones in the command table and the help card.
	Commands []Command
	// Installs, when set, is told when the bot is installed in or removed
	// from a conversation.
	Installs InstallHandler
}

// ScanProgressReporter is a Source that reports how far the scan it runs
// has come. snapshot.Source implements it. Progress cards show the counts.
type ScanProgressReporter interface {
	// ScanProgress returns the Teams measured and listed so far, and
	// running false when this process runs no scan.
	ScanProgress() (done, discovered int, running bool)
}

// Bot serves the messaging endpoint. Create it with New.
type Bot struct {
	logger           *slog.Logger
	source           Source
	roles            Roles
	refreshLimit     *userLimiter
	connector        *connector.Client
	authenticator    Authenticator
	localDevelopment bool
	tenants          map[string]bool
	maxBodyBytes     int64
	replyTimeout     time.Duration
	seen             *idSet
	sharedSeen       interface {
		FirstSeen(ctx context.Context, activityID string) (bool, error)
	}
	history       History
	tenantQuota   int64
	export        ExportConfig
	exportUses    *idSet
	progressDelay time.Duration
	now           func() time.Time
	after         func(d time.Duration) <-chan time.Time
	addedCommands []Command
	installs      InstallHandler

	// baseCtx parents every background reply; Shutdown cancels it.
	baseCtx context.Context
	cancel  context.CancelFunc

	// mu guards closing, so that no reply starts after Shutdown began
	// waiting on replies.
	mu       sync.Mutex
	closing  bool
	inFlight sync.WaitGroup
}

// New checks cfg and returns a Bot ready to Register.
func New(cfg Config) (*Bot, error) {
	if cfg.Source == nil {
		return nil, errors.New("create bot: missing Source")
	}
	if cfg.Connector == nil {
		return nil, errors.New("create bot: missing Connector")
	}
	if cfg.Roles == nil {
		return nil, errors.New("create bot: missing Roles, which decide who may see what")
	}
	if cfg.LocalDevelopment && cfg.AppID != "" {
		return nil, errors.New("create bot: local development requires an empty app id, because inbound authentication is off there")
	}
	if !cfg.LocalDevelopment && cfg.AppID == "" {
		return nil, errors.New("create bot: missing app id, which is required unless in local development")
	}
	if len(cfg.TenantIDs) == 0 {
		return nil, errors.New("create bot: missing tenant ids, so no user could be served")
	}

	b := &Bot{
		logger:           cfg.Logger,
		source:           cfg.Source,
		roles:            cfg.Roles,
		connector:        cfg.Connector,
		authenticator:    cfg.Authenticator,
		localDevelopment: cfg.LocalDevelopment,
		tenants:          make(map[string]bool, len(cfg.TenantIDs)),
		maxBodyBytes:     cfg.MaxBodyBytes,
		replyTimeout:     cfg.ReplyTimeout,
		sharedSeen:       cfg.Seen,
		history:          cfg.History,
		tenantQuota:      cfg.TenantQuota,
		export:           cfg.Export,
		progressDelay:    cfg.ProgressDelay,
		after:            cfg.After,
		addedCommands:    cfg.Commands,
		installs:         cfg.Installs,
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if b.maxBodyBytes <= 0 {
		b.maxBodyBytes = defaultMaxBodyBytes
	}
	if b.replyTimeout <= 0 {
		b.replyTimeout = defaultReplyTimeout
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	b.now = now
	b.seen = newIDSet(dedupeTTL, dedupeMaxIDs, now)
	if b.progressDelay <= 0 {
		b.progressDelay = defaultProgressDelay
	}
	if b.after == nil {
		b.after = time.After
	}
	if err := checkCommands(b.addedCommands); err != nil {
		return nil, fmt.Errorf("create bot: %w", err)
	}
	if err := b.export.check(); err != nil {
		return nil, fmt.Errorf("create bot: %w", err)
	}
	if b.export.TTL <= 0 {
		b.export.TTL = DefaultExportTTL
	}
	b.exportUses = newIDSet(b.export.TTL+exportClockSkew, dedupeMaxIDs, now)
	refreshInterval := cfg.RefreshInterval
	if refreshInterval <= 0 {
		refreshInterval = defaultRefreshInterval
	}
	b.refreshLimit = newUserLimiter(refreshInterval, now)
	for _, id := range cfg.TenantIDs {
		b.tenants[strings.ToLower(strings.TrimSpace(id))] = true
	}

	if b.localDevelopment {
		b.authenticator = noAuthentication{}
		b.logger.Warn("local development: inbound authentication is off and loopback serviceUrls are allowed")
	} else if b.authenticator == nil {
		v, err := botauth.New(botauth.Config{AppID: cfg.AppID, Logger: b.logger.With("component", "botauth")})
		if err != nil {
			return nil, fmt.Errorf("create bot: %w", err)
		}
		b.authenticator = NewBotFrameworkAuthenticator(v)
	}

	b.baseCtx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Register mounts POST /api/messages on r, and GET /export/{link}.csv
// when export is configured.
func (b *Bot) Register(r gin.IRoutes) {
	r.POST(messagesPath, b.handleMessages)
	if b.export.enabled() {
		r.GET(exportPath+":file", b.handleExport)
	}
}

// Shutdown stops accepting activities and waits for background replies.
// When ctx ends first it cancels them, waits for them to return and
// returns ctx's error.
func (b *Bot) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.inFlight.Wait()
		close(done)
	}()

	select {
	case <-done:
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		<-done
		return fmt.Errorf("wait for background replies: %w", ctx.Err())
	}
}

// startReply registers one background reply, or returns false once
// Shutdown has begun.
func (b *Bot) startReply() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.inFlight.Add(1)
	return true
}

// servesTenant reports whether id is one of the configured tenants.
func (b *Bot) servesTenant(id string) bool {
	return b.tenants[strings.ToLower(strings.TrimSpace(id))]
}
