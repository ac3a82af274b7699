package botauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/storagebot/storagebot/botauth"
	"github.com/storagebot/storagebot/botauth/botauthtest"
)

// validateWith validates a fresh token signed by key at the clock's time.
func validateWith(t *testing.T, v *botauth.Validator, key *botauthtest.Key, clock *fakeClock) error {
	t.Helper()
	tok := botauthtest.NewToken(testAppID, testServiceURL, clock.Now())
	_, err := v.Validate(context.Background(), "Bearer "+sign(t, key, tok), testChannelID, testServiceURL)
	return err
}

func wantFetches(t *testing.T, server *botauthtest.Server, want int) {
	t.Helper()
	if got := server.MetadataFetches(); got != want {
		t.Errorf("metadata fetches = %d, want %d", got, want)
	}
	if got := server.KeysFetches(); got != want {
		t.Errorf("key fetches = %d, want %d", got, want)
	}
}

func TestValidateRefetchesAfterKeyRotation(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)

	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate before rotation: %v", err)
	}
	wantFetches(t, server, 1)

	clock.Advance(2 * time.Hour)
	server.AddKey(keys.rotated)
	server.RemoveKey(keys.endorsed.ID)

	if err := validateWith(t, v, keys.rotated, clock); err != nil {
		t.Fatalf("Validate with rotated key: %v", err)
	}
	wantFetches(t, server, 2)
}

func TestValidateRateLimitsUnknownKeyRefetch(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)

	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate known key: %v", err)
	}
	wantFetches(t, server, 1)

	steps := []struct {
		advance     time.Duration
		wantFetches int
	}{
		{advance: 0, wantFetches: 1},                // keys were just fetched
		{advance: 59 * time.Minute, wantFetches: 1}, // still within the hour
		{advance: time.Minute, wantFetches: 2},      // one hour after the first fetch
		{advance: 30 * time.Minute, wantFetches: 2},
		{advance: 30 * time.Minute, wantFetches: 3},
	}
	for i, step := range steps {
		clock.Advance(step.advance)
		for range 5 {
			err := validateWith(t, v, keys.stranger, clock)
			if !errors.Is(err, botauth.ErrUnknownKey) {
				t.Fatalf("step %d: Validate error = %v, want ErrUnknownKey", i, err)
			}
		}
		if got := server.MetadataFetches(); got != step.wantFetches {
			t.Errorf("step %d (%v later): metadata fetches = %d, want %d", i, step.advance, got, step.wantFetches)
		}
	}
}

func TestValidateRefreshesKeysAfterOneDay(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)

	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	clock.Advance(23 * time.Hour)
	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate after 23 h: %v", err)
	}
	wantFetches(t, server, 1)

	// A key withdrawn by the issuer stops working at the next daily refresh
	// even though its kid is still cached.
	server.RemoveKey(keys.endorsed.ID)
	server.AddKey(keys.rotated)
	clock.Advance(time.Hour)
	err := validateWith(t, v, keys.endorsed, clock)
	if !errors.Is(err, botauth.ErrUnknownKey) {
		t.Fatalf("Validate withdrawn key after 24 h: error = %v, want ErrUnknownKey", err)
	}
	wantFetches(t, server, 2)
}

func TestValidateKeepsCachedKeysWhenFetchFails(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)

	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	server.FailWith(http.StatusServiceUnavailable)
	clock.Advance(25 * time.Hour)
	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate with failing metadata endpoint: %v", err)
	}
	if got := server.MetadataFetches(); got != 2 {
		t.Errorf("metadata fetches = %d, want 2 (one failed refresh)", got)
	}

	// Failed refreshes are retried at most once a minute.
	for range 3 {
		if err := validateWith(t, v, keys.endorsed, clock); err != nil {
			t.Fatalf("Validate within the retry interval: %v", err)
		}
	}
	if got := server.MetadataFetches(); got != 2 {
		t.Errorf("metadata fetches within a minute = %d, want 2", got)
	}

	server.FailWith(0)
	clock.Advance(time.Minute)
	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate after the endpoint recovered: %v", err)
	}
	if got := server.MetadataFetches(); got != 3 {
		t.Errorf("metadata fetches after recovery = %d, want 3", got)
	}
}

func TestValidateWithoutKeys(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	server.FailWith(http.StatusInternalServerError)
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)

	for i := range 3 {
		err := validateWith(t, v, keys.endorsed, clock)
		if !errors.Is(err, botauth.ErrKeysUnavailable) {
			t.Fatalf("attempt %d: Validate error = %v, want ErrKeysUnavailable", i, err)
		}
		if !errors.Is(err, botauth.ErrUnauthorized) {
			t.Errorf("attempt %d: Validate error = %v, want it to wrap ErrUnauthorized", i, err)
		}
	}
	if got := server.MetadataFetches(); got != 1 {
		t.Errorf("metadata fetches = %d, want 1 within the retry interval", got)
	}

	server.FailWith(0)
	clock.Advance(time.Minute)
	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate after the endpoint recovered: %v", err)
	}
	if got := server.MetadataFetches(); got != 2 {
		t.Errorf("metadata fetches after recovery = %d, want 2", got)
	}
	if got := server.KeysFetches(); got != 1 {
		t.Errorf("key fetches after recovery = %d, want 1", got)
	}
}

func TestValidateClosesResponseBodies(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	transport := &countingTransport{base: server.Client().Transport}
	v, err := botauth.New(botauth.Config{
		AppID:       testAppID,
		MetadataURL: server.MetadataURL,
		HTTPClient:  &http.Client{Transport: transport},
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	server.FailWith(http.StatusBadGateway)
	clock.Advance(25 * time.Hour)
	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate with failing endpoint: %v", err)
	}

	requests, closed := transport.counts()
	if requests != 3 {
		t.Errorf("requests = %d, want 3 (metadata and keys, then failed metadata)", requests)
	}
	if closed != requests {
		t.Errorf("closed bodies = %d, want %d", closed, requests)
	}
}

// TestValidateRejectsBadKeyDocuments serves broken metadata or key documents
// from a handler; no key must come out of them.
func TestValidateRejectsBadKeyDocuments(t *testing.T) {
	keys := loadKeys(t)
	oversized := `{"keys":[],"padding":"` + strings.Repeat("a", 1<<20) + `"}`

	tests := []struct {
		name     string
		metadata func(base string) string
		jwks     string
	}{
		{
			name:     "oversized key document",
			metadata: func(base string) string { return `{"jwks_uri":"` + base + `/keys"}` },
			jwks:     oversized,
		},
		{
			name:     "metadata without jwks_uri",
			metadata: func(string) string { return `{"issuer":"https://api.botframework.com"}` },
		},
		{
			// The transport below fails any request that leaves 127.0.0.1,
			// so a regression cannot reach the named host.
			name:     "jwks_uri over http to a non-loopback host",
			metadata: func(string) string { return `{"jwks_uri":"http://login.botframework.com/v1/.well-known/keys"}` },
		},
		{
			name:     "no RSA keys",
			metadata: func(base string) string { return `{"jwks_uri":"` + base + `/keys"}` },
			jwks:     `{"keys":[{"kty":"EC","kid":"key-endorsed","crv":"P-256","x":"AA","y":"AA"}]}`,
		},
		{
			name:     "RSA key shorter than 2048 bits",
			metadata: func(base string) string { return `{"jwks_uri":"` + base + `/keys"}` },
			jwks:     `{"keys":[{"kty":"RSA","kid":"key-endorsed","n":"AQAB","e":"AQAB"}]}`,
		},
		{
			name:     "invalid JSON",
			metadata: func(string) string { return `{"jwks_uri":` },
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base string
			mux := http.NewServeMux()
			mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tc.metadata(base))
			})
			mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tc.jwks)
			})
			server := httptest.NewServer(mux)
			defer server.Close()
			base = server.URL

			transport := &loopbackOnlyTransport{base: server.Client().Transport}
			clock := &fakeClock{now: testStart}
			v, err := botauth.New(botauth.Config{
				AppID:       testAppID,
				MetadataURL: server.URL + "/metadata",
				HTTPClient:  &http.Client{Transport: transport},
				Now:         clock.Now,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}

			err = validateWith(t, v, keys.endorsed, clock)
			if !errors.Is(err, botauth.ErrKeysUnavailable) {
				t.Fatalf("Validate error = %v, want ErrKeysUnavailable", err)
			}
			if blocked := transport.blockedHosts(); len(blocked) > 0 {
				t.Errorf("Validate tried to reach %q", blocked)
			}
		})
	}
}

// loopbackOnlyTransport fails every request whose host is not 127.0.0.1.
type loopbackOnlyTransport struct {
	base http.RoundTripper

	mu      sync.Mutex
	blocked []string
}

func (l *loopbackOnlyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() != "127.0.0.1" {
		l.mu.Lock()
		l.blocked = append(l.blocked, req.URL.Host)
		l.mu.Unlock()
		return nil, fmt.Errorf("test transport: host %s is not 127.0.0.1", req.URL.Host)
	}
	return l.base.RoundTrip(req)
}

func (l *loopbackOnlyTransport) blockedHosts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.blocked...)
}

// gatedTransport serves requests from handler in memory, holding each one
// until gate is closed.
type gatedTransport struct {
	handler http.Handler
	gate    chan struct{}

	mu       sync.Mutex
	requests int
}

func (g *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	g.requests++
	g.mu.Unlock()

	select {
	case <-g.gate:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	recorder := httptest.NewRecorder()
	g.handler.ServeHTTP(recorder, req)
	return recorder.Result(), nil
}

func (g *gatedTransport) requestCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests
}

// TestValidateSharesOneFetch runs in a synctest bubble, so synctest.Wait
// returns only when every caller is blocked: either inside the one fetch or
// waiting for it.
func TestValidateSharesOneFetch(t *testing.T) {
	keys := loadKeys(t)

	synctest.Test(t, func(t *testing.T) {
		authority := botauthtest.NewAuthority(keys.endorsed)
		transport := &gatedTransport{handler: authority, gate: make(chan struct{})}
		clock := &fakeClock{now: testStart}
		v, err := botauth.New(botauth.Config{
			AppID:       testAppID,
			MetadataURL: "http://127.0.0.1" + botauthtest.MetadataPath,
			HTTPClient:  &http.Client{Transport: transport},
			Now:         clock.Now,
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		header := "Bearer " + sign(t, keys.endorsed, botauthtest.NewToken(testAppID, testServiceURL, testStart))

		const callers = 4
		errs := make(chan error, callers)
		for range callers {
			go func() {
				_, err := v.Validate(context.Background(), header, testChannelID, testServiceURL)
				errs <- err
			}()
		}

		synctest.Wait()
		if got := transport.requestCount(); got != 1 {
			t.Errorf("requests while %d callers wait = %d, want 1", callers, got)
		}

		close(transport.gate)
		for i := range callers {
			if err := <-errs; err != nil {
				t.Errorf("caller %d: Validate: %v", i, err)
			}
		}
		if got := authority.MetadataFetches(); got != 1 {
			t.Errorf("metadata fetches = %d, want 1", got)
		}
	})
}

// TestValidateCallerLeavesSharedFetch checks that a caller whose context ends
// stops waiting without failing the fetch the others wait for.
func TestValidateCallerLeavesSharedFetch(t *testing.T) {
	keys := loadKeys(t)

	synctest.Test(t, func(t *testing.T) {
		authority := botauthtest.NewAuthority(keys.endorsed)
		transport := &gatedTransport{handler: authority, gate: make(chan struct{})}
		clock := &fakeClock{now: testStart}
		v, err := botauth.New(botauth.Config{
			AppID:       testAppID,
			MetadataURL: "http://127.0.0.1" + botauthtest.MetadataPath,
			HTTPClient:  &http.Client{Transport: transport},
			Now:         clock.Now,
			Logger:      slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		header := "Bearer " + sign(t, keys.endorsed, botauthtest.NewToken(testAppID, testServiceURL, testStart))

		// The leaving caller starts the fetch; the staying caller joins it.
		leaving, leave := context.WithCancel(context.Background())
		leavingErr := make(chan error, 1)
		go func() {
			_, err := v.Validate(leaving, header, testChannelID, testServiceURL)
			leavingErr <- err
		}()
		synctest.Wait()
		stayingErr := make(chan error, 1)
		go func() {
			_, err := v.Validate(context.Background(), header, testChannelID, testServiceURL)
			stayingErr <- err
		}()

		synctest.Wait()
		leave()
		if err := <-leavingErr; !errors.Is(err, context.Canceled) || !errors.Is(err, botauth.ErrUnauthorized) {
			t.Errorf("leaving caller: Validate error = %v, want context.Canceled wrapped in ErrUnauthorized", err)
		}

		close(transport.gate)
		if err := <-stayingErr; err != nil {
			t.Errorf("staying caller: Validate: %v", err)
		}
		if got := transport.requestCount(); got != 2 {
			t.Errorf("requests = %d, want 2 (metadata and keys once)", got)
		}
	})
}

func TestValidateFetchTimesOut(t *testing.T) {
	keys := loadKeys(t)

	synctest.Test(t, func(t *testing.T) {
		authority := botauthtest.NewAuthority(keys.endorsed)
		// The gate is never opened: only the fetch timeout ends the request.
		transport := &gatedTransport{handler: authority, gate: make(chan struct{})}
		clock := &fakeClock{now: testStart}
		v, err := botauth.New(botauth.Config{
			AppID:       testAppID,
			MetadataURL: "http://127.0.0.1" + botauthtest.MetadataPath,
			HTTPClient:  &http.Client{Transport: transport},
			Now:         clock.Now,
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}

		err = validateWith(t, v, keys.endorsed, clock)
		if !errors.Is(err, botauth.ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Validate error = %v, want ErrKeysUnavailable after context.DeadlineExceeded", err)
		}
	})
}

func TestValidateForeignIssuerSpendsNoRefetch(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()
	clock := &fakeClock{now: testStart}
	v := newValidator(t, server, clock)

	if err := validateWith(t, v, keys.endorsed, clock); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	clock.Advance(2 * time.Hour)

	tok := botauthtest.NewToken(testAppID, testServiceURL, clock.Now())
	tok.Issuer = "https://issuer.invalid"
	_, err := v.Validate(context.Background(), "Bearer "+sign(t, keys.stranger, tok), testChannelID, testServiceURL)
	if !errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		t.Fatalf("Validate error = %v, want ErrTokenInvalidIssuer", err)
	}
	wantFetches(t, server, 1)
}

// endlessBody is a JSON document that never ends; it fails after 8 MiB so a
// missing read bound ends the test instead of hanging it.
type endlessBody struct {
	mu   sync.Mutex
	read int
}

func (b *endlessBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.read >= 8<<20 {
		return 0, errors.New("endless body: read 8 MiB")
	}
	for i := range p {
		p[i] = ' '
	}
	if b.read == 0 && len(p) > 0 {
		p[0] = '['
	}
	b.read += len(p)
	return len(p), nil
}

func (b *endlessBody) Close() error { return nil }

func (b *endlessBody) bytesRead() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

type endlessTransport struct{ body *endlessBody }

func (e endlessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       e.body,
		Request:    req,
	}, nil
}

func TestValidateBoundsResponseSize(t *testing.T) {
	keys := loadKeys(t)
	body := &endlessBody{}
	clock := &fakeClock{now: testStart}
	v, err := botauth.New(botauth.Config{
		AppID:       testAppID,
		MetadataURL: "http://127.0.0.1" + botauthtest.MetadataPath,
		HTTPClient:  &http.Client{Transport: endlessTransport{body: body}},
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	err = validateWith(t, v, keys.endorsed, clock)
	if !errors.Is(err, botauth.ErrKeysUnavailable) {
		t.Fatalf("Validate error = %v, want ErrKeysUnavailable", err)
	}
	if got := body.bytesRead(); got > 2<<20 {
		t.Errorf("read %d bytes of an endless metadata document, want at most 2 MiB", got)
	}
}

func TestValidateRejectsRedirectToHTTP(t *testing.T) {
	keys := loadKeys(t)
	server := botauthtest.NewServer(keys.endorsed)
	defer server.Close()

	// The redirect target is the same loopback server under a name that is
	// not loopback. The transport serves it from 127.0.0.1 all the same.
	redirect := httptest.NewServer(http.RedirectHandler(
		strings.Replace(server.MetadataURL, "127.0.0.1", "keys.example.test", 1), http.StatusFound))
	defer redirect.Close()
	transport := &rewriteHostTransport{base: server.Client().Transport, from: "keys.example.test", to: "127.0.0.1"}

	clock := &fakeClock{now: testStart}
	v, err := botauth.New(botauth.Config{
		AppID:       testAppID,
		MetadataURL: redirect.URL + "/metadata",
		HTTPClient:  &http.Client{Transport: transport},
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	err = validateWith(t, v, keys.endorsed, clock)
	if !errors.Is(err, botauth.ErrKeysUnavailable) {
		t.Fatalf("Validate error = %v, want ErrKeysUnavailable", err)
	}
}

// rewriteHostTransport sends requests for host from to host to instead, so a
// test can use a non-loopback name without any traffic leaving 127.0.0.1.
type rewriteHostTransport struct {
	base     http.RoundTripper
	from, to string
}

func (r *rewriteHostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() == r.from {
		rewritten := req.Clone(req.Context())
		rewritten.URL.Host = strings.Replace(req.URL.Host, r.from, r.to, 1)
		resp, err := r.base.RoundTrip(rewritten)
		if err != nil {
			return nil, err
		}
		resp.Request = req
		return resp, nil
	}
	if req.URL.Hostname() != "127.0.0.1" {
		return nil, fmt.Errorf("test transport: host %s is not 127.0.0.1", req.URL.Host)
	}
	return r.base.RoundTrip(req)
}
