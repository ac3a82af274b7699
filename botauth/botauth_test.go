package botauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/storagebot/storagebot/botauth"
	"github.com/storagebot/storagebot/botauth/botauthtest"
)

const (
	testAppID      = "5f3c0a8e-3b7a-4c1e-9d43-0e2b7c1f6a10"
	testServiceURL = "https://smba.trafficmanager.net/emea/"
	testChannelID  = "msteams"
)

var testStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testKeySet contains the keys every test shares. They are generated once,
// because RSA key generation is the slowest step of these tests.
type testKeySet struct {
	endorsed   *botauthtest.Key // endorsed for msteams and webchat
	unendorsed *botauthtest.Key // without endorsements
	rotated    *botauthtest.Key // not served until a rotation test adds it
	stranger   *botauthtest.Key // never served
}

var testKeys = sync.OnceValues(func() (testKeySet, error) {
	var set testKeySet
	var err error
	if set.endorsed, err = botauthtest.NewKey("key-endorsed", "msteams", "webchat"); err != nil {
		return set, err
	}
	if set.unendorsed, err = botauthtest.NewKey("key-unendorsed"); err != nil {
		return set, err
	}
	if set.rotated, err = botauthtest.NewKey("key-rotated", "msteams"); err != nil {
		return set, err
	}
	if set.stranger, err = botauthtest.NewKey("key-stranger"); err != nil {
		return set, err
	}
	return set, nil
})

func loadKeys(t *testing.T) testKeySet {
	t.Helper()
	keys, err := testKeys()
	if err != nil {
		t.Fatalf("generate test keys: %v", err)
	}
	return keys
}

// fakeClock is a settable clock shared by the validator and the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newValidator returns a validator that trusts server and reads clock.
func newValidator(t *testing.T, server *botauthtest.Server, clock *fakeClock) *botauth.Validator {
	t.Helper()
	v, err := botauth.New(botauth.Config{
		AppID:       testAppID,
		MetadataURL: server.MetadataURL,
		HTTPClient:  server.Client(),
		Now:         clock.Now,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func sign(t *testing.T, key *botauthtest.Key, tok botauthtest.Token) string {
	t.Helper()
	signed, err := key.Sign(tok)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return signed
}

func TestValidate(t *testing.T) {
	keys := loadKeys(t)
	valid := botauthtest.NewToken(testAppID, testServiceURL, testStart)

	type testCase struct {
		name       string
		key        *botauthtest.Key
		token      func(tok *botauthtest.Token)
		header     func(signed string) string // nil means "Bearer " + signed
		channelID  string
		serviceURL string
		wantErr    error // nil means the token is accepted
	}
	tests := []testCase{
		{
			name: "valid token",
		},
		{
			name:  "RS384",
			token: func(tok *botauthtest.Token) { tok.Alg = "RS384" },
		},
		{
			name:  "RS512",
			token: func(tok *botauthtest.Token) { tok.Alg = "RS512" },
		},
		{
			name:    "wrong aud",
			token:   func(tok *botauthtest.Token) { tok.Audience = "another-bot" },
			wantErr: jwt.ErrTokenInvalidAudience,
		},
		{
			name:    "missing aud",
			token:   func(tok *botauthtest.Token) { tok.Audience = "" },
			wantErr: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "wrong iss",
			token: func(tok *botauthtest.Token) {
				tok.Issuer = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
			},
			wantErr: jwt.ErrTokenInvalidIssuer,
		},
		{
			name: "expired beyond skew",
			token: func(tok *botauthtest.Token) {
				tok.IssuedAt = testStart.Add(-2 * time.Hour)
				tok.NotBefore = tok.IssuedAt
				tok.ExpiresAt = testStart.Add(-6 * time.Minute)
			},
			wantErr: jwt.ErrTokenExpired,
		},
		{
			name: "expired within skew",
			token: func(tok *botauthtest.Token) {
				tok.IssuedAt = testStart.Add(-2 * time.Hour)
				tok.NotBefore = tok.IssuedAt
				tok.ExpiresAt = testStart.Add(-4 * time.Minute)
			},
		},
		{
			name:    "missing exp",
			token:   func(tok *botauthtest.Token) { tok.ExpiresAt = time.Time{} },
			wantErr: jwt.ErrTokenRequiredClaimMissing,
		},
		{
			name: "nbf in future",
			token: func(tok *botauthtest.Token) {
				tok.IssuedAt = testStart.Add(6 * time.Minute)
				tok.NotBefore = tok.IssuedAt
				tok.ExpiresAt = testStart.Add(time.Hour)
			},
			wantErr: jwt.ErrTokenNotValidYet,
		},
		{
			name: "nbf within skew",
			token: func(tok *botauthtest.Token) {
				tok.IssuedAt = testStart.Add(4 * time.Minute)
				tok.NotBefore = tok.IssuedAt
			},
		},
		{
			name:    "HS256 with public key as secret",
			token:   func(tok *botauthtest.Token) { tok.Alg = "HS256" },
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "alg none",
			token:   func(tok *botauthtest.Token) { tok.Alg = "none" },
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "signed by another key with a served kid",
			key:     keys.stranger,
			token:   func(tok *botauthtest.Token) { tok.KeyID = keys.endorsed.ID },
			wantErr: jwt.ErrTokenSignatureInvalid,
		},
		{
			name:    "unknown kid",
			key:     keys.stranger,
			wantErr: botauth.ErrUnknownKey,
		},
		{
			name:    "missing kid",
			token:   func(tok *botauthtest.Token) { tok.OmitKeyID = true },
			wantErr: botauth.ErrUnknownKey,
		},
		{
			name:      "endorsement mismatch",
			channelID: "slack",
			wantErr:   botauth.ErrNotEndorsed,
		},
		{
			name:      "endorsement differs in case",
			channelID: "MSTeams",
			wantErr:   botauth.ErrNotEndorsed,
		},
		{
			name:      "empty channelId skips endorsements",
			channelID: " ",
		},
		{
			name:      "key without endorsements",
			key:       keys.unendorsed,
			channelID: "slack",
		},
		{
			name:       "serviceurl mismatch",
			serviceURL: "https://smba.trafficmanager.net/amer/",
			wantErr:    botauth.ErrServiceURLMismatch,
		},
		{
			name:       "serviceurl differs in case",
			serviceURL: strings.ToUpper(testServiceURL),
			wantErr:    botauth.ErrServiceURLMismatch,
		},
		{
			name:       "serviceurl claim missing",
			token:      func(tok *botauthtest.Token) { tok.ServiceURL = "" },
			serviceURL: testServiceURL,
			wantErr:    botauth.ErrServiceURLMismatch,
		},
		{
			name:    "missing header",
			header:  func(string) string { return "" },
			wantErr: botauth.ErrNoBearerToken,
		},
		{
			name:    "Basic scheme",
			header:  func(string) string { return "Basic Ym90OnNlY3JldA==" },
			wantErr: botauth.ErrNoBearerToken,
		},
		{
			name:    "bare token without scheme",
			header:  func(signed string) string { return signed },
			wantErr: botauth.ErrNoBearerToken,
		},
		{
			name:    "Bearer without token",
			header:  func(string) string { return "Bearer " },
			wantErr: botauth.ErrNoBearerToken,
		},
		{
			name:   "lower-case bearer scheme",
			header: func(signed string) string { return "bearer " + signed },
		},
		{
			name:    "malformed token",
			header:  func(string) string { return "Bearer not.a.jwt" },
			wantErr: jwt.ErrTokenMalformed,
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := botauthtest.NewServer(keys.endorsed, keys.unendorsed)
			defer server.Close()
			clock := &fakeClock{now: testStart}
			v := newValidator(t, server, clock)

			key := keys.endorsed
			if tc.key != nil {
				key = tc.key
			}
			tok := valid
			if tc.token != nil {
				tc.token(&tok)
			}
			signed := sign(t, key, tok)
			header := "Bearer " + signed
			if tc.header != nil {
				header = tc.header(signed)
			}
			channelID := testChannelID
			if tc.channelID != "" {
				channelID = tc.channelID
			}
			serviceURL := testServiceURL
			if tc.serviceURL != "" {
				serviceURL = tc.serviceURL
			}

			claims, err := v.Validate(context.Background(), header, channelID, serviceURL)

			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if claims.ServiceURL != tok.ServiceURL {
					t.Errorf("claims.ServiceURL = %q, want %q", claims.ServiceURL, tok.ServiceURL)
				}
				if !slices.Equal(claims.Audience, []string{testAppID}) {
					t.Errorf("claims.Audience = %q, want [%q]", claims.Audience, testAppID)
				}
				if claims.KeyID != key.ID {
					t.Errorf("claims.KeyID = %q, want %q", claims.KeyID, key.ID)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate error = %v, want %v", err, tc.wantErr)
			}
			if !errors.Is(err, botauth.ErrUnauthorized) {
				t.Errorf("Validate error = %v, want it to wrap ErrUnauthorized", err)
			}
			signature := signed[strings.LastIndex(signed, ".")+1:]
			if strings.Contains(err.Error(), signed) || (signature != "" && strings.Contains(err.Error(), signature)) {
				t.Errorf("Validate error contains the token: %v", err)
			}
		})
	}
}

func TestValidateReturnsClaims(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)
	tok := botauthtest.NewToken(testAppID, testServiceURL, testStart)

	claims, err := v.Validate(context.Background(), "Bearer "+sign(t, keys.endorsed, tok), testChannelID, testServiceURL)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}

	if claims.Issuer != botauth.BotFrameworkIssuer {
		t.Errorf("claims.Issuer = %q, want %q", claims.Issuer, botauth.BotFrameworkIssuer)
	}
	if !slices.Equal(claims.Audience, []string{testAppID}) {
		t.Errorf("claims.Audience = %q, want [%q]", claims.Audience, testAppID)
	}
	if claims.ServiceURL != testServiceURL {
		t.Errorf("claims.ServiceURL = %q, want %q", claims.ServiceURL, testServiceURL)
	}
	if !claims.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("claims.ExpiresAt = %v, want %v", claims.ExpiresAt, tok.ExpiresAt)
	}
	if claims.KeyID != keys.endorsed.ID {
		t.Errorf("claims.KeyID = %q, want %q", claims.KeyID, keys.endorsed.ID)
	}
}

func TestValidateEmptyServiceURLSkipsCheck(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	v := newValidator(t, server, &fakeClock{now: testStart})
	tok := botauthtest.NewToken(testAppID, testServiceURL, testStart)

	// botbuilder-js checks the serviceurl claim only when the activity has a
	// serviceUrl; Validate documents the same rule.
	if _, err := v.Validate(context.Background(), "Bearer "+sign(t, keys.endorsed, tok), testChannelID, ""); err != nil {
		t.Fatalf("Validate with empty serviceURL: %v", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name        string
		appID       string
		metadataURL string
		wantErr     bool
	}{
		{name: "default metadata URL", appID: testAppID},
		{name: "https metadata URL", appID: testAppID, metadataURL: "https://login.botframework.com/v1/.well-known/openidconfiguration"},
		{name: "http on 127.0.0.1", appID: testAppID, metadataURL: "http://127.0.0.1:8080" + botauthtest.MetadataPath},
		{name: "http on localhost", appID: testAppID, metadataURL: "http://localhost:8080" + botauthtest.MetadataPath},
		{name: "http on ::1", appID: testAppID, metadataURL: "http://[::1]:8080" + botauthtest.MetadataPath},
		{name: "http on non-loopback host", appID: testAppID, metadataURL: "http://login.botframework.com/v1/.well-known/openidconfiguration", wantErr: true},
		{name: "http on private address", appID: testAppID, metadataURL: "http://10.0.0.5/metadata", wantErr: true},
		{name: "ftp scheme", appID: testAppID, metadataURL: "ftp://127.0.0.1/metadata", wantErr: true},
		{name: "relative URL", appID: testAppID, metadataURL: "/v1/.well-known/openidconfiguration", wantErr: true},
		{name: "empty AppID", appID: "", wantErr: true},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := botauth.New(botauth.Config{AppID: tc.appID, MetadataURL: tc.metadataURL})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("New accepted AppID %q, metadata URL %q", tc.appID, tc.metadataURL)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if v == nil {
				t.Fatal("New returned a nil Validator")
			}
		})
	}
}

func TestValidateConcurrentCallers(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	v := newValidator(t, server, &fakeClock{now: testStart})
	header := "Bearer " + sign(t, keys.endorsed, botauthtest.NewToken(testAppID, testServiceURL, testStart))

	const callers = 8
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for range 5 {
				if _, err := v.Validate(context.Background(), header, testChannelID, testServiceURL); err != nil {
					errs <- fmt.Errorf("caller %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)

	for err := range errs {
		t.Error(err)
	}
	if got := server.MetadataFetches(); got != 1 {
		t.Errorf("metadata fetches = %d, want 1", got)
	}
}

// countingTransport counts requests and closed response bodies.
type countingTransport struct {
	base http.RoundTripper

	mu       sync.Mutex
	requests int
	closed   int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	resp.Body = &closeCounter{ReadCloser: resp.Body, transport: c}
	return resp, nil
}

func (c *countingTransport) counts() (requests, closed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.closed
}

type closeCounter struct {
	io.ReadCloser
	transport *countingTransport
	once      sync.Once
}

func (b *closeCounter) Close() error {
	b.once.Do(func() {
		b.transport.mu.Lock()
		b.transport.closed++
		b.transport.mu.Unlock()
	})
	return b.ReadCloser.Close()
}
