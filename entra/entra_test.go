package entra

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testTenant = "contoso.onmicrosoft.com"
	testClient = "00000000-0000-0000-0000-0000000000c1"
	testSecret = "s3cr3t-value-that-must-not-leak"
	testScope  = "https://graph.microsoft.com/.default"
)

// fakeAuthority is an Entra-shaped token authority: openid-configuration and
// a token endpoint for testTenant. It accepts testSecret or any client
// assertion, and issues tokens named tok-1, tok-2, ...
type fakeAuthority struct {
	server   *httptest.Server
	requests atomic.Int32
	// hold, when set, blocks the token endpoint until it is closed.
	hold chan struct{}
	// lastForm is the form of the most recent token request.
	mu       sync.Mutex
	lastForm map[string][]string
}

func newFakeAuthority(t *testing.T) *fakeAuthority {
	t.Helper()
	fa := &fakeAuthority{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", fa.openIDConfiguration)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", fa.token)
	fa.server = httptest.NewTLSServer(mux)
	t.Cleanup(fa.server.Close)
	return fa
}

func (fa *fakeAuthority) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	base := fa.server.URL + "/" + r.PathValue("tenant")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"issuer":                 base + "/v2.0",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"token_endpoint":         base + "/oauth2/v2.0/token",
	})
}

func (fa *fakeAuthority) token(w http.ResponseWriter, r *http.Request) {
	if fa.hold != nil {
		<-fa.hold
	}
	n := fa.requests.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fa.mu.Lock()
	fa.lastForm = r.PostForm
	fa.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	secret, assertion := r.PostForm.Get("client_secret"), r.PostForm.Get("client_assertion")
	if r.PathValue("tenant") != testTenant || r.PostForm.Get("grant_type") != "client_credentials" ||
		(secret != testSecret && assertion == "") {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"error": "invalid_client",
			"error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\n" +
				"Trace ID: 11111111-1111-1111-1111-111111111111\r\nCorrelation ID: 22222222-2222-2222-2222-222222222222",
			"error_codes": []int{7000215},
		})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type":     "Bearer",
		"expires_in":     3600,
		"ext_expires_in": 3600,
		"access_token":   fmt.Sprintf("tok-%d", n),
	})
}

func (fa *fakeAuthority) config() Config {
	return Config{
		AuthorityHost: fa.server.URL,
		TenantID:      testTenant,
		ClientID:      testClient,
		ClientSecret:  testSecret,
		Scope:         testScope,
		HTTPClient:    fa.server.Client(),
	}
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestTokenFromFakeAuthority(t *testing.T) {
	fa := newFakeAuthority(t)
	c := newTestClient(t, fa.config())

	for i := range 3 {
		tok, err := c.Token(context.Background())
		if err != nil {
			t.Fatalf("Token call %d: %v", i, err)
		}
		if tok != "tok-1" {
			t.Errorf("Token call %d = %q, want tok-1 (the cached token)", i, tok)
		}
	}
	if got := fa.requests.Load(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}

	fa.mu.Lock()
	scope := fa.lastForm["scope"]
	fa.mu.Unlock()
	if len(scope) != 1 || !strings.Contains(scope[0], testScope) {
		t.Errorf("scope sent = %q, want it to contain %q", scope, testScope)
	}
}

func TestTokenBadSecret(t *testing.T) {
	fa := newFakeAuthority(t)
	cfg := fa.config()
	cfg.ClientSecret = "wrong-" + testSecret
	c := newTestClient(t, cfg)

	_, err := c.Token(context.Background())
	if err == nil {
		t.Fatal("Token with a wrong secret returned no error")
	}

	var entraErr *Error
	if !errors.As(err, &entraErr) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if entraErr.StatusCode != http.StatusUnauthorized {
		t.Errorf("StatusCode = %d, want 401", entraErr.StatusCode)
	}
	if entraErr.Code != "invalid_client" {
		t.Errorf("Code = %q, want invalid_client", entraErr.Code)
	}
	if entraErr.AADSTS != "AADSTS7000215" {
		t.Errorf("AADSTS = %q, want AADSTS7000215", entraErr.AADSTS)
	}
	if strings.Contains(err.Error(), "Trace ID") {
		t.Errorf("error %q contains the trace id line", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error %q contains the client secret", err)
	}
}

func TestErrorsNeverContainSecret(t *testing.T) {
	fa := newFakeAuthority(t)
	unreachable := httptest.NewTLSServer(http.NotFoundHandler())
	unreachableURL := unreachable.URL
	unreachable.Close()

	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"wrong secret", func(c *Config) { c.ClientSecret = testSecret + "-wrong" }},
		{"wrong tenant", func(c *Config) { c.TenantID = "fabrikam.onmicrosoft.com" }},
		{"authority down", func(c *Config) { c.AuthorityHost = unreachableURL }},
		{"untrusted certificate", func(c *Config) { c.HTTPClient = &http.Client{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fa.config()
			tt.mutate(&cfg)
			c := newTestClient(t, cfg)

			_, err := c.Token(context.Background())
			if err == nil {
				t.Fatal("Token returned no error")
			}
			secret := cfg.ClientSecret
			if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
				t.Errorf("error %q contains the client secret", err)
			}
			var entraErr *Error
			if !errors.As(err, &entraErr) {
				t.Errorf("error %v is not an *Error", err)
			}
		})
	}
}

func TestTokenConcurrentCallersShareFetch(t *testing.T) {
	const callers = 16
	fa := newFakeAuthority(t)
	fa.hold = make(chan struct{})
	c := newTestClient(t, fa.config())

	var joined sync.WaitGroup
	joined.Add(callers - 1)
	c.onJoin = joined.Done

	tokens := make([]string, callers)
	errs := make([]error, callers)
	var done sync.WaitGroup
	for i := range callers {
		done.Go(func() { tokens[i], errs[i] = c.Token(context.Background()) })
	}
	joined.Wait()
	close(fa.hold)
	done.Wait()

	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
		} else if tokens[i] != "tok-1" {
			t.Errorf("caller %d token = %q, want tok-1", i, tokens[i])
		}
	}
	if got := fa.requests.Load(); got != 1 {
		t.Errorf("token requests = %d, want 1 for %d concurrent callers", got, callers)
	}
}

func TestTokenCallerContextEnds(t *testing.T) {
	fa := newFakeAuthority(t)
	fa.hold = make(chan struct{})
	c := newTestClient(t, fa.config())

	joined := make(chan struct{})
	c.onJoin = func() { close(joined) }

	first := make(chan error, 1)
	go func() {
		_, err := c.Token(context.Background())
		first <- err
	}()

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx)
		second <- err
	}()
	<-joined
	cancel()

	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller error = %v, want context.Canceled", err)
	}
	close(fa.hold)
	if err := <-first; err != nil {
		t.Errorf("other caller error = %v, want the shared token", err)
	}
}

func TestInvalidate(t *testing.T) {
	tests := []struct {
		name         string
		invalidate   func(c *Client, current string)
		wantToken    string
		wantRequests int32
	}{
		{
			name:         "current token",
			invalidate:   func(c *Client, current string) { c.Invalidate(current) },
			wantToken:    "tok-2",
			wantRequests: 2,
		},
		{
			name:         "other token",
			invalidate:   func(c *Client, _ string) { c.Invalidate("tok-0") },
			wantToken:    "tok-1",
			wantRequests: 1,
		},
		{
			name:         "empty token",
			invalidate:   func(c *Client, _ string) { c.Invalidate("") },
			wantToken:    "tok-1",
			wantRequests: 1,
		},
		{
			name: "many workers same token",
			invalidate: func(c *Client, current string) {
				var wg sync.WaitGroup
				for range 32 {
					wg.Go(func() { c.Invalidate(current) })
				}
				wg.Wait()
			},
			wantToken:    "tok-2",
			wantRequests: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := newFakeAuthority(t)
			c := newTestClient(t, fa.config())
			first, err := c.Token(context.Background())
			if err != nil {
				t.Fatalf("first Token: %v", err)
			}

			tt.invalidate(c, first)

			for i := range 3 {
				tok, err := c.Token(context.Background())
				if err != nil {
					t.Fatalf("Token %d after Invalidate: %v", i, err)
				}
				if tok != tt.wantToken {
					t.Errorf("Token %d after Invalidate = %q, want %q", i, tok, tt.wantToken)
				}
			}
			if got := fa.requests.Load(); got != tt.wantRequests {
				t.Errorf("token requests = %d, want %d", got, tt.wantRequests)
			}
		})
	}
}

func TestInvalidateManyWorkersAfter401(t *testing.T) {
	const workers = 16
	fa := newFakeAuthority(t)
	c := newTestClient(t, fa.config())
	stale, err := c.Token(context.Background())
	if err != nil {
		t.Fatalf("first Token: %v", err)
	}

	// Each worker got a 401 for the stale token: it invalidates it, then
	// requests a new one, as the Graph client does.
	tokens := make([]string, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			c.Invalidate(stale)
			tokens[i], _ = c.Token(context.Background())
		})
	}
	wg.Wait()

	for i, tok := range tokens {
		if tok == stale || tok == "" {
			t.Errorf("worker %d token = %q, want a token other than %q", i, tok, stale)
		}
	}
	if got := fa.requests.Load(); got != 2 {
		t.Errorf("token requests = %d, want 2 (the first token and one refresh)", got)
	}
}

func TestTokenWithCertificate(t *testing.T) {
	fa := newFakeAuthority(t)
	cfg := fa.config()
	cfg.ClientSecret = ""
	cfg.CertificatePEM = selfSignedPEM(t)
	c := newTestClient(t, cfg)

	tok, err := c.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if tok != "tok-1" {
		t.Errorf("Token = %q, want tok-1", tok)
	}

	fa.mu.Lock()
	form := fa.lastForm
	fa.mu.Unlock()
	if got := form["client_assertion_type"]; len(got) != 1 || got[0] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("client_assertion_type = %q, want the JWT bearer type", got)
	}
	if got := form["client_secret"]; len(got) != 0 {
		t.Errorf("client_secret sent with a certificate credential: %q", got)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	valid := Config{
		AuthorityHost: "https://login.example.test",
		TenantID:      testTenant,
		ClientID:      testClient,
		ClientSecret:  testSecret,
		Scope:         testScope,
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"http authority", func(c *Config) { c.AuthorityHost = "http://login.example.test" }},
		{"authority without host", func(c *Config) { c.AuthorityHost = "https://" }},
		{"authority with query", func(c *Config) { c.AuthorityHost = "https://login.example.test/?x=1" }},
		{"missing tenant", func(c *Config) { c.TenantID = "" }},
		{"tenant with slash", func(c *Config) { c.TenantID = "a/b" }},
		{"missing client id", func(c *Config) { c.ClientID = "" }},
		{"missing scope", func(c *Config) { c.Scope = "" }},
		{"no credential", func(c *Config) { c.ClientSecret = "" }},
		{"secret and certificate", func(c *Config) { c.CertificatePEM = []byte("x") }},
		{"bad certificate", func(c *Config) { c.ClientSecret = ""; c.CertificatePEM = []byte("not pem") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error = %v, want ErrInvalidConfig", err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q contains the client secret", err)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		if _, err := New(valid); err != nil {
			t.Errorf("New(valid) = %v", err)
		}
	})
	t.Run("default authority host", func(t *testing.T) {
		cfg := valid
		cfg.AuthorityHost = ""
		if _, err := New(cfg); err != nil {
			t.Errorf("New with empty authority host = %v", err)
		}
	})
}

func TestStatic(t *testing.T) {
	tests := []struct {
		name    string
		token   Static
		wantErr bool
	}{
		{"token", Static("abc"), false},
		{"empty", Static(""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src TokenSource = tt.token
			got, err := src.Token(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Token error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != string(tt.token) {
				t.Errorf("Token = %q, want %q", got, tt.token)
			}
		})
	}
}

// selfSignedPEM returns a throwaway certificate and its key, PEM-encoded.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "storagebot test"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(0, 0).AddDate(100, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
}
