// Package entra obtains app-only access tokens from Microsoft Entra ID with
// MSAL Go's confidential client, for Microsoft Graph and the Bot Connector.
package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// DefaultAuthorityHost is the Entra ID authority of Microsoft's global cloud.
const DefaultAuthorityHost = "https://login.microsoftonline.com"

// fetchTimeout bounds one shared token request, including MSAL's
// openid-configuration lookup. Callers stop waiting earlier when their own
// context ends, but the request goes on for the other waiters.
const fetchTimeout = 30 * time.Second

// knownAuthorityHosts are the Entra hosts of Microsoft's clouds, for which
// MSAL's instance discovery works. Any other host (a test or simulated
// authority) gets WithInstanceDiscovery(false), because discovery would ask
// login.microsoftonline.com about it. The list follows aadTrustedHostList in
// MSAL Go v1.10.1 (apps/internal/oauth/ops/authority/authority.go).
var knownAuthorityHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.microsoftonline.us":         true,
	"login-us.microsoftonline.com":     true,
	"login.usgovcloudapi.net":          true,
	"login.partner.microsoftonline.cn": true,
	"login.chinacloudapi.cn":           true,
	"login.microsoftonline.de":         true,
	"login.sovcloud-identity.fr":       true,
	"login.sovcloud-identity.de":       true,
	"login.sovcloud-identity.sg":       true,
}

// ErrInvalidConfig marks a Config that New rejects.
var ErrInvalidConfig = errors.New("invalid entra config")

// TokenSource returns a bearer token for one resource.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Static is a bearer token given by the user, for example from
// `az account get-access-token`. It is never refreshed.
type Static string

// Token returns the static token, or an error when it is empty.
func (s Static) Token(context.Context) (string, error) {
	if s == "" {
		return "", errors.New("get static token: token is empty")
	}
	return string(s), nil
}

// Config selects the authority, the app registration and its credential.
// Exactly one of ClientSecret and CertificatePEM must be set.
type Config struct {
	// AuthorityHost is an https URL without the tenant, for example
	// https://login.microsoftonline.us. Empty means DefaultAuthorityHost.
	AuthorityHost string
	TenantID      string
	ClientID      string
	ClientSecret  string
	// CertificatePEM contains the certificate and its private key, PEM-encoded.
	CertificatePEM []byte
	// CertificatePassword decrypts a legacy encrypted PEM key; empty when the
	// key is not encrypted.
	CertificatePassword string
	// Scope is the resource's .default scope, for example
	// https://graph.microsoft.com/.default.
	Scope string
	// HTTPClient carries the calls to the authority. Nil means MSAL's default
	// client.
	HTTPClient *http.Client
}

// Client is a TokenSource backed by one MSAL confidential client. It is safe
// for concurrent use: callers that arrive while a token request is running
// share that request.
type Client struct {
	app      confidential.Client
	scopes   []string
	clientID string
	secret   string
	cache    *tokenCache

	mu sync.Mutex
	// current is the token most recently handed out.
	current string
	// rejected is the token most recently passed to Invalidate and found to
	// be current. A fetch that still returns it drops the cache and requests
	// a token once more.
	rejected string
	inflight *fetch

	// onJoin, when set by tests, runs each time a caller joins a fetch that
	// another caller started.
	onJoin func()
}

// fetch is one token request shared by every caller that waits for it.
type fetch struct {
	done  chan struct{}
	token string
	err   error
}

// New validates cfg and creates the confidential client. It makes no network
// call: MSAL reads the authority's openid-configuration on the first Token.
func New(cfg Config) (*Client, error) {
	authority, err := authorityURL(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("%w: client id is missing", ErrInvalidConfig)
	}
	if cfg.Scope == "" {
		return nil, fmt.Errorf("%w: scope is missing", ErrInvalidConfig)
	}

	cred, err := credential(cfg)
	if err != nil {
		return nil, err
	}

	cache := &tokenCache{}
	opts := []confidential.Option{confidential.WithCache(cache)}
	if cfg.HTTPClient != nil {
		opts = append(opts, confidential.WithHTTPClient(cfg.HTTPClient))
	}
	if !knownAuthorityHosts[authority.Hostname()] {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	app, err := confidential.New(authority.String(), cfg.ClientID, cred, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: create confidential client for %s: %s", ErrInvalidConfig, cfg.ClientID, redact(err.Error(), cfg.ClientSecret))
	}

	return &Client{
		app:      app,
		scopes:   []string{cfg.Scope},
		clientID: cfg.ClientID,
		secret:   cfg.ClientSecret,
		cache:    cache,
	}, nil
}

// Token returns a valid access token. MSAL returns its cached token until 5
// minutes before expiry and requests a new one after that.
// When ctx ends first, Token returns ctx's error and the shared request goes
// on for the other callers.
func (c *Client) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	f := c.inflight
	if f == nil {
		f = &fetch{done: make(chan struct{})}
		c.inflight = f
		go c.run(f)
	} else if c.onJoin != nil {
		c.onJoin()
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("acquire token for client %s: %w", c.clientID, ctx.Err())
	}
}

// Invalidate drops token from the cache when it is still the current token,
// so that the next Token call requests a new one. Call it after a resource
// rejects token with 401. Many callers that pass the same rejected
// token cause one new token request, because only the first finds it current.
func (c *Client) Invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if token == "" || token != c.current {
		return
	}
	c.current = ""
	c.rejected = token
	c.cache.clear()
}

// run performs the token request of f, then publishes its result.
func (c *Client) run(f *fetch) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()

	token, err := c.acquire(ctx)

	c.mu.Lock()
	if err == nil && token == c.rejected {
		// The request read the cache before Invalidate cleared it, so it
		// returned the rejected token. Ask once more, now past the cache.
		c.cache.clear()
		c.mu.Unlock()
		token, err = c.acquire(ctx)
		c.mu.Lock()
	}
	if err == nil {
		c.current = token
	}
	f.token, f.err = token, err
	c.inflight = nil
	c.mu.Unlock()

	close(f.done)
}

// acquire requests a token from MSAL, which reads its cache first.
func (c *Client) acquire(ctx context.Context) (string, error) {
	res, err := c.app.AcquireTokenByCredential(ctx, c.scopes)
	if err != nil {
		return "", c.tokenError(ctx, err)
	}
	return res.AccessToken, nil
}

// authorityURL builds https://host/tenant from cfg.
func authorityURL(cfg Config) (*url.URL, error) {
	host := cfg.AuthorityHost
	if host == "" {
		host = DefaultAuthorityHost
	}
	u, err := url.Parse(strings.TrimRight(host, "/"))
	if err != nil {
		return nil, fmt.Errorf("%w: authority host %q: %w", ErrInvalidConfig, host, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: authority host %q must be an https URL without query, fragment or user info", ErrInvalidConfig, host)
	}

	if cfg.TenantID == "" {
		return nil, fmt.Errorf("%w: tenant id is missing", ErrInvalidConfig)
	}
	if strings.ContainsAny(cfg.TenantID, "/?#%\\ \t\r\n") {
		return nil, fmt.Errorf("%w: tenant id %q must be a GUID or a domain name", ErrInvalidConfig, cfg.TenantID)
	}
	return u.JoinPath(cfg.TenantID), nil
}

// credential builds the MSAL credential from the one secret or certificate
// that cfg sets.
func credential(cfg Config) (confidential.Credential, error) {
	hasSecret, hasCert := cfg.ClientSecret != "", len(cfg.CertificatePEM) > 0
	switch {
	case hasSecret && hasCert:
		return confidential.Credential{}, fmt.Errorf("%w: both a client secret and a certificate are set: set one", ErrInvalidConfig)
	case !hasSecret && !hasCert:
		return confidential.Credential{}, fmt.Errorf("%w: credential is missing: set a client secret or a certificate", ErrInvalidConfig)
	case hasSecret:
		cred, err := confidential.NewCredFromSecret(cfg.ClientSecret)
		if err != nil {
			return confidential.Credential{}, fmt.Errorf("%w: client secret: %s", ErrInvalidConfig, redact(err.Error(), cfg.ClientSecret))
		}
		return cred, nil
	}

	certs, key, err := confidential.CertFromPEM(cfg.CertificatePEM, cfg.CertificatePassword)
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("%w: read certificate PEM: %w", ErrInvalidConfig, err)
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("%w: use certificate: %w", ErrInvalidConfig, err)
	}
	return cred, nil
}
