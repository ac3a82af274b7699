package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/bot"
	"github.com/storagebot/storagebot/botauth"
	"github.com/storagebot/storagebot/connector"
	"github.com/storagebot/storagebot/entra"
	"github.com/storagebot/storagebot/metrics"
	"github.com/storagebot/storagebot/roles"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/schedule"
	"github.com/storagebot/storagebot/snapshot"
	"github.com/storagebot/storagebot/store"
)

const (
	graphScope     = "https://graph.microsoft.com/.default"
	connectorScope = "https://api.botframework.com/.default"

	// multiTenantAuthority is the Bot Framework's own tenant, which issues
	// connector tokens to multi-tenant bots.
	multiTenantAuthority = "botframework.com"

	// shutdownGrace bounds how long a stopping server waits for webhooks and
	// replies in flight.
	shutdownGrace = 20 * time.Second
)

// app is a running webhook: the store, the scanner behind snapshots in the
// store, the scheduler of periodic jobs, the bot and its HTTP server.
type app struct {
	logger    *slog.Logger
	store     store.Store
	snapshots *snapshot.Source
	// scans ends the scans that run when the server stops.
	scans *scanGuard
	// stopScheduler ends the scheduler, and schedulerDone closes when it
	// has returned.
	stopScheduler context.CancelFunc
	schedulerDone chan struct{}
	bot           *bot.Bot
	server        *http.Server
	listener      net.Listener
	served        chan error
}

// graphTokens returns the token source for Graph: a static token when one is
// configured, otherwise an MSAL confidential client.
func graphTokens(c Config, httpClient *http.Client) (entra.TokenSource, error) {
	if c.GraphToken != "" {
		return entra.Static(c.GraphToken), nil
	}
	if c.TenantID == "" || c.ClientID == "" {
		return nil, errors.New("missing Graph credentials: set GRAPH_TOKEN, or AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (the Microsoft* bot settings are used when these are empty)")
	}

	cfg := entra.Config{
		AuthorityHost: c.AuthorityHost,
		TenantID:      c.TenantID,
		ClientID:      c.ClientID,
		ClientSecret:  c.ClientSecret,
		Scope:         graphScope,
		HTTPClient:    httpClient,
	}
	if c.CertificatePath != "" {
		pem, err := os.ReadFile(c.CertificatePath)
		if err != nil {
			return nil, fmt.Errorf("read AZURE_CLIENT_CERTIFICATE_PATH: %w", err)
		}
		cfg.ClientSecret = ""
		cfg.CertificatePEM = pem
		cfg.CertificatePassword = c.CertificatePass
	}
	return entra.New(cfg)
}

// connectorTokens returns the token source for the Bot Connector, or nil when
// the bot runs without an app id (local development, where the Agents
// Playground accepts replies without a token).
//
// The authority follows MicrosoftAppType as the Bot Framework SDKs read it
// (botbuilder-js ConfigurationServiceClientCredentialFactory):
// MultiTenant asks the Bot Framework's tenant, SingleTenant the bot's own
// tenant, and UserAssignedMSI asks the host's managed identity endpoint.
func connectorTokens(c Config, httpClient *http.Client) (entra.TokenSource, error) {
	if c.AppID == "" {
		return nil, nil
	}
	if c.AppType == appTypeUserAssignedMSI {
		return entra.NewManagedIdentity(entra.ManagedIdentityConfig{
			ClientID:   c.AppID,
			Scope:      connectorScope,
			HTTPClient: httpClient,
		})
	}

	cfg := entra.Config{
		AuthorityHost: c.AuthorityHost,
		TenantID:      multiTenantAuthority,
		ClientID:      c.AppID,
		ClientSecret:  c.AppPassword,
		Scope:         connectorScope,
		HTTPClient:    httpClient,
	}
	if c.AppType == appTypeSingleTenant {
		cfg.TenantID = c.AppTenantID
	}
	if c.AppCertificatePath != "" {
		pem, err := os.ReadFile(c.AppCertificatePath)
		if err != nil {
			return nil, fmt.Errorf("read STORAGEBOT_APP_CERTIFICATE_PATH: %w", err)
		}
		cfg.ClientSecret = ""
		cfg.CertificatePEM = pem
		cfg.CertificatePassword = c.AppCertificatePass
	}
	if cfg.ClientSecret == "" && cfg.CertificatePEM == nil {
		return nil, errors.New("missing MicrosoftAppPassword: the bot needs it, or STORAGEBOT_APP_CERTIFICATE_PATH, to send replies when MicrosoftAppId is set")
	}

	tokens, err := entra.New(cfg)
	if err != nil && c.AppCertificatePath != "" {
		return nil, fmt.Errorf("load STORAGEBOT_APP_CERTIFICATE_PATH %q: %w", c.AppCertificatePath, err)
	}
	return tokens, err
}

// newRoles builds the role checks on a Graph client that shares the
// scanner's pacer, so that throttling seen by either slows both.
func newRoles(c Config, graphCfg scanner.Config, logger *slog.Logger) (*roles.Resolver, error) {
	graphCfg.Logger = logger.With("component", "roles")
	graph, err := scanner.NewGraphClient(graphCfg)
	if err != nil {
		return nil, err
	}
	r, err := roles.New(roles.Config{Graph: graph, AdminIDs: c.AdminIDs, AdminGroupID: c.AdminGroupID})
	if err != nil {
		return nil, fmt.Errorf("configure admins from STORAGEBOT_ADMIN_IDS and STORAGEBOT_ADMIN_GROUP_ID: %w", err)
	}
	return r, nil
}

// newScanner builds the scanner for the configured Graph endpoint.
func newScanner(c Config, tokens entra.TokenSource, httpClient *http.Client, logger *slog.Logger) (*scanner.Scanner, error) {
	return scanner.New(graphConfig(c, tokens, httpClient, logger))
}

// graphConfig returns the scanner and Graph client settings of c.
func graphConfig(c Config, tokens entra.TokenSource, httpClient *http.Client, logger *slog.Logger) scanner.Config {
	return scanner.Config{
		BaseURL:      c.GraphURL,
		Version:      version,
		TenantID:     c.TenantID,
		Tokens:       tokens,
		HTTPClient:   httpClient,
		Concurrency:  c.ScanConcurrency,
		ChannelSites: c.ScanChannelSites,
		MaxAttempts:  c.ScanMaxAttempts,
		Logger:       logger.With("component", "scanner"),
	}
}

// startApp wires the bot as production runs it and starts serving on
// c.Addr. httpClient carries every outbound call (Entra, Graph, Bot
// Connector); nil means http.DefaultClient's transport with a timeout.
func startApp(c Config, httpClient *http.Client, logger *slog.Logger) (*app, error) {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}

	localDevelopment := c.AppID == "" && isLoopback(c.Addr)
	if problems := serveProblems(c); len(problems) > 1 {
		return nil, &configError{problems: problems}
	} else if len(problems) == 1 {
		return nil, errors.New(problems[0])
	}

	gtokens, err := graphTokens(c, httpClient)
	if err != nil {
		return nil, err
	}
	meters := metrics.New()
	graphCfg := graphConfig(c, gtokens, withTransport(httpClient, meters.GraphTransport), logger)
	graphCfg.Pacer = scanner.NewPacer()
	graphCfg.Hooks = meters.GraphHooks()
	// The scan reports progress to the snapshot source, which is made
	// below and assigned before any scan can start.
	var snapshots *snapshot.Source
	scanCfg := graphCfg
	scanCfg.Progress = func(done, discovered int) { snapshots.ReportProgress(done, discovered) }
	scan, err := scanner.New(scanCfg)
	if err != nil {
		return nil, err
	}
	directory, err := newRoles(c, graphCfg, logger)
	if err != nil {
		return nil, err
	}

	ctokens, err := connectorTokens(c, httpClient)
	if err != nil {
		return nil, err
	}
	conn := connector.New(connector.Config{
		HTTPClient: withTransport(httpClient, meters.ConnectorTransport),
		Tokens:     ctokens,
		Logger:     logger.With("component", "connector"),
	})

	var authenticator bot.Authenticator
	if !localDevelopment {
		v, err := botauth.New(botauth.Config{
			AppID:       c.AppID,
			MetadataURL: c.OpenIDMetadata,
			HTTPClient:  httpClient,
			Logger:      logger.With("component", "botauth"),
		})
		if err != nil {
			return nil, err
		}
		authenticator = bot.NewBotFrameworkAuthenticator(v)
	}

	st, err := openStore(c, logger)
	if err != nil {
		return nil, err
	}
	holder := snapshot.NewHolder()
	scans := newScanGuard()
	snapshots, err = snapshot.New(snapshot.Config{
		Store:    st,
		Scan:     meters.Scan(scans.wrap(scan.Scan)),
		TenantID: c.TenantID,
		Holder:   holder,
		TTL:      c.ScanTTL,
		Logger:   logger.With("component", "snapshot"),
		Hooks:    meters.CacheHooks(),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	digests, err := newDigest(c, st, snapshots, conn, logger, meters.DigestSent)
	if err != nil {
		st.Close()
		return nil, err
	}
	scheduler, err := schedule.New(schedule.Config{
		Leases: st,
		Holder: holder,
		Logger: logger.With("component", "schedule"),
	}, pruneJob(st, c, time.Now), digests.Job())
	if err != nil {
		st.Close()
		return nil, err
	}

	b, err := bot.New(bot.Config{
		Authenticator:    authenticator,
		AppID:            c.AppID,
		TenantIDs:        c.TenantIDs,
		LocalDevelopment: localDevelopment,
		Logger:           logger.With("component", "bot"),
		Source:           snapshots,
		Seen:             seenActivities{store: st, now: time.Now},
		Roles:            directory,
		Connector:        conn,
		History:          history{store: st},
		TenantQuota:      c.TenantQuota,
		Export:           exportConfig(c, st, logger),
		Commands:         []bot.Command{digestCommand(digests)},
		Installs:         digestInstalls{service: digests},
	})
	if err != nil {
		st.Close()
		return nil, err
	}

	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.Use(gin.Recovery())
	engine.GET("/healthz", func(ctx *gin.Context) { ctx.String(http.StatusOK, "ok\n") })
	ready := &readiness{store: st, tokens: gtokens, logger: logger.With("component", "readiness")}
	engine.GET("/readyz", ready.handle)
	engine.GET("/metrics", gin.WrapH(meters.Handler()))
	b.Register(engine.Group("", meters.Webhook()))

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	a := &app{
		logger:        logger,
		store:         st,
		snapshots:     snapshots,
		scans:         scans,
		schedulerDone: make(chan struct{}),
		bot:           b,
		listener:      ln,
		served:        make(chan error, 1),
		server: &http.Server{
			Handler:           engine,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
	}
	go func() { a.served <- a.server.Serve(ln) }()
	var schedulerCtx context.Context
	schedulerCtx, a.stopScheduler = context.WithCancel(context.Background())
	go func() {
		defer close(a.schedulerDone)
		scheduler.Run(schedulerCtx)
	}()

	if !directory.HasAdmins() {
		logger.Warn("no admin configured: set STORAGEBOT_ADMIN_IDS or STORAGEBOT_ADMIN_GROUP_ID, until then only Team owners can use the bot")
	}
	logger.Info("webhook listening", "addr", ln.Addr().String(), "local_development", localDevelopment, "tenants", c.TenantIDs)
	return a, nil
}

// URL returns the base URL of the webhook, for example http://127.0.0.1:3978.
func (a *app) URL() string {
	return "http://" + a.listener.Addr().String()
}

// wait serves until ctx ends or the server fails, then shuts down.
func (a *app) wait(ctx context.Context) error {
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-a.served:
	}
	shutdownErr := a.shutdown()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve webhook: %w", serveErr)
	}
	return shutdownErr
}

// shutdown stops accepting webhooks, lets requests in flight finish, cancels
// running scans, then waits for background replies, within shutdownGrace in
// all. Replies that waited for a canceled scan get the scan's error.
func (a *app) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()

	a.logger.Info("shutting down")
	httpErr := a.server.Shutdown(ctx)
	scanErr := a.scans.cancel(ctx)
	if scanErr != nil {
		scanErr = fmt.Errorf("wait for canceled scans: %w", scanErr)
	}
	botErr := a.bot.Shutdown(ctx)
	a.stopScheduler()
	<-a.schedulerDone
	storeErr := a.store.Close()
	if err := errors.Join(httpErr, scanErr, botErr, storeErr); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	a.logger.Info("stopped")
	return nil
}
