// Package simtenant owns the simulated Microsoft tenant: one loopback TLS
// server that models the Entra token endpoint, the Microsoft Graph group and
// drive endpoints, and the Bot Connector, for the demo command and for tests.
package simtenant

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// PlaygroundTenantID is the tenant id that the Microsoft 365 Agents
	// Playground 0.2.28 sends in channelData.tenant.id. Its last group has 13
	// hex digits, so it is not a well-formed GUID, and the sim accepts it as is.
	PlaygroundTenantID = "00000000-0000-0000-0000-0000000000001"

	// DefaultClientID is the application (client) id of the sim's only app
	// registration, used both for Graph and as the bot's app id.
	DefaultClientID = "6c1f3b52-8e0d-4c7a-9b14-2f5e7d9a0c31"

	// DefaultClientSecret is the client secret of the default app registration.
	DefaultClientSecret = "sim-secret-wrenford-academy"

	// GraphResource is the audience of the access tokens that Graph accepts.
	GraphResource = "https://graph.microsoft.com"

	// BotFrameworkResource is the audience of the access tokens that the Bot
	// Connector accepts.
	BotFrameworkResource = "https://api.botframework.com"

	defaultTokenLifetime = time.Hour
	clientTimeout        = 30 * time.Second
	readHeaderTimeout    = 10 * time.Second
	shutdownTimeout      = 5 * time.Second
)

// ErrNotLoopback is returned by Start when Options.Addr is not a loopback IP
// address: the sim must never be reachable from another host.
var ErrNotLoopback = errors.New("address is not a loopback IP address")

// Options configures a simulated tenant. The zero value starts the school
// tenant on 127.0.0.1 with a random port.
type Options struct {
	// Addr is the listen address, a loopback IP and a port. Empty means
	// 127.0.0.1:0.
	Addr string
	// TenantID is the only tenant the authority accepts. Empty means
	// PlaygroundTenantID.
	TenantID string
	// ClientID and ClientSecret describe the only app registration. Empty
	// means DefaultClientID and DefaultClientSecret.
	ClientID     string
	ClientSecret string
	// ClientCertificate, when set, is the certificate registered for the app:
	// a client assertion must then carry its thumbprint and be signed with its
	// RSA key. When nil, an assertion is accepted without a signature check.
	ClientCertificate *x509.Certificate
	// Groups is the directory. Nil means School().
	Groups []Group
	// Latency delays every Graph request. SetLatency changes it later.
	Latency time.Duration
	// TokenLifetime is the lifetime of issued access tokens. Zero means 1h.
	TokenLifetime time.Duration
	// Now is the clock for token lifetimes and the throttle. Nil means
	// time.Now. TLS certificates always use the real clock.
	Now func() time.Time
	// Logger receives the sim's log lines. Nil discards them.
	Logger *slog.Logger
}

// Tenant is a running simulated tenant. Its methods are safe for concurrent
// use.
type Tenant struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	url    string
	cert   *x509.Certificate
	server *http.Server
	client *http.Client
	done   chan struct{}

	signer *tokenSigner
	dir    directory

	// items routes the requests inside a JSON batch.
	items http.Handler

	mu          sync.Mutex
	latency     time.Duration
	bucket      tokenBucket
	budget      resourceBudget
	concurrency concurrencyCap
	faults      faultInjector
	// liveTokens are the unique token ids (uti) of the Graph tokens issued
	// since the last ExpireTokens, and expired those it revoked.
	liveTokens []string
	expired    map[string]bool
	stats      Stats
	ids        idSource
	connector  connectorState
}

// Start builds the tenant from opts and starts serving HTTPS on a loopback
// address. Call Close to stop it.
func Start(opts Options) (*Tenant, error) {
	opts = withDefaults(opts)

	ln, err := listenLoopback(opts.Addr)
	if err != nil {
		return nil, err
	}

	t, err := newTenant(opts, ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, err
	}

	go t.serve(ln)
	t.log.Info("simulated tenant started", "url", t.url, "tenant_id", opts.TenantID, "groups", len(opts.Groups), "teams", len(t.dir.teams))
	return t, nil
}

// Close stops the server, waiting a few seconds for requests in flight.
func (t *Tenant) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()

	// Closing the sim's own client first spares Shutdown the HTTP/2 server's
	// wait for idle connections to go away after GOAWAY.
	t.client.CloseIdleConnections()
	if err := t.server.Shutdown(ctx); err != nil {
		t.log.Warn("shut down simulated tenant", "err", err)
		t.server.Close()
	}
	<-t.done
	t.log.Info("simulated tenant stopped", "url", t.url)
}

// URL returns the server's base URL, https://127.0.0.1:port.
func (t *Tenant) URL() string { return t.url }

// AuthorityHost returns the Entra authority host, without a trailing slash.
// The authority for MSAL is AuthorityHost() + "/" + tenant id.
func (t *Tenant) AuthorityHost() string { return t.url }

// GraphURL returns the Graph v1.0 base URL, without a trailing slash.
func (t *Tenant) GraphURL() string { return t.url + "/v1.0" }

// ConnectorURL returns the Bot Connector's serviceUrl, with a trailing slash
// as Teams sends it.
func (t *Tenant) ConnectorURL() string { return t.url + "/connector/" }

// TenantID returns the id of the only tenant the authority accepts.
func (t *Tenant) TenantID() string { return t.opts.TenantID }

// HTTPClient returns a client that trusts only the server's certificate,
// ignores proxy settings and times out after 30 seconds.
func (t *Tenant) HTTPClient() *http.Client { return t.client }

// CertPEM returns the server's self-signed certificate in PEM form, so that
// another process can trust it.
func (t *Tenant) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: t.cert.Raw})
}

// SetLatency delays every later Graph request by d.
func (t *Tenant) SetLatency(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latency = d
}

// SetThrottle limits Graph to rps requests per second with bursts of burst
// requests, responding 429 when the bucket is empty. retryAfter is the
// Retry-After value sent; zero sends the time until the next token, which is
// often fractional. rps 0 turns the throttle off.
func (t *Tenant) SetThrottle(rps float64, burst int, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bucket.configure(rps, burst, retryAfter, t.now())
}

// SetConcurrencyCap rejects a Graph request with 429 and a Retry-After of
// retryAfter when limit Graph requests are already in flight. A JSON batch
// counts as one request. limit 0 turns the cap off.
func (t *Tenant) SetConcurrencyCap(limit int, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.concurrency.configure(limit, retryAfter)
}

// SetResourceBudget models SharePoint's budget of resource units per app
// and tenant: perMinute units in each one-minute window, where a
// single-item GET costs 1 and a list 2. Requests beyond it get 429 with a
// Retry-After until the window ends, and every response carries the
// RateLimit headers once 80% of the window's budget is used. perMinute 0
// turns the budget off.
func (t *Tenant) SetResourceBudget(perMinute int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.budget.configure(perMinute, t.now())
}

// ExpireTokens makes every Graph access token issued so far fail with 401
// "expired" before its exp claim, as a revoked or early-expired token does.
func (t *Tenant) ExpireTokens() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, uti := range t.liveTokens {
		t.expired[uti] = true
	}
	t.liveTokens = nil
}

// SetFaults makes the given fraction (0..1) of drive requests fail with
// status: 500, or 503 for any other value. A fraction of 0 turns faults off.
func (t *Tenant) SetFaults(fraction float64, status int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults.configure(fraction, status)
}

// Stats returns a snapshot of the request counters.
func (t *Tenant) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats.clone()
}

func withDefaults(opts Options) Options {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TenantID == "" {
		opts.TenantID = PlaygroundTenantID
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.Groups == nil {
		opts.Groups = School()
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = defaultTokenLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts
}

func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("parse listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen on %q: %w", addr, ErrNotLoopback)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	return ln, nil
}

func newTenant(opts Options, hostPort string) (*Tenant, error) {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("parse listener address %q: %w", hostPort, err)
	}
	certificate, leaf, err := newServerCertificate(host)
	if err != nil {
		return nil, err
	}
	signer, err := newTokenSigner()
	if err != nil {
		return nil, err
	}

	t := &Tenant{
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		url:     "https://" + hostPort,
		cert:    leaf,
		client:  newTrustingClient(leaf),
		done:    make(chan struct{}),
		signer:  signer,
		dir:     newDirectory(opts.Groups),
		latency: opts.Latency,
		faults:  newFaultInjector(),
		stats:   newStats(),
		expired: map[string]bool{},
	}
	t.items = t.batchItemRoutes()
	t.server = &http.Server{
		Handler:           t.routes(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return t, nil
}

func (t *Tenant) serve(ln net.Listener) {
	defer close(t.done)
	if err := t.server.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.log.Error("serve simulated tenant", "url", t.url, "err", err)
	}
}

// routes registers every endpoint. Each route is wrapped so that Stats can
// count it by name; anything unmatched counts as RouteOther.
func (t *Tenant) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, route Route, h http.HandlerFunc) {
		mux.Handle(pattern, labelRoute(route, h))
	}

	handle("GET /{tenant}/v2.0/.well-known/openid-configuration", RouteOpenIDConfiguration, t.handleOpenIDConfiguration)
	handle("GET /{tenant}/discovery/v2.0/keys", RouteKeys, t.handleKeys)
	handle("POST /{tenant}/oauth2/v2.0/token", RouteToken, t.handleToken)

	handle("GET /v1.0/groups", RouteGroups, t.graphList(t.handleGroups))
	handle("GET /v1.0/groups/{id}/drive", RouteDrive, t.graph(t.handleDrive))
	handle("GET /v1.0/teams/{id}/channels", RouteChannels, t.graphList(t.handleChannels))
	handle("GET /v1.0/teams/{id}/channels/{channelId}/filesFolder", RouteFilesFolder, t.graph(t.handleFilesFolder))
	handle("GET /v1.0/drives/{driveId}", RouteDriveByID, t.graph(t.handleDriveByID))
	handle("POST /v1.0/$batch", RouteBatch, t.graphRequest(t.handleBatch))

	handle("POST /connector/v3/conversations", RouteCreateConversation, t.handleCreateConversation)
	handle("POST /connector/v3/conversations/{conversationId}/activities", RouteSendActivity, t.handleSendActivity)
	handle("POST /connector/v3/conversations/{conversationId}/activities/{activityId}", RouteReplyActivity, t.handleReplyActivity)
	handle("PUT /connector/v3/conversations/{conversationId}/activities/{activityId}", RouteUpdateActivity, t.handleUpdateActivity)

	t.directoryRoutes(handle)
	handle("/", RouteOther, t.handleUnknown)

	return t.instrument(mux)
}
