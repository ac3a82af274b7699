package simtenant_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/storagebot/storagebot/simtenant"
)

// fakeClock is a settable clock for token lifetimes and the throttle.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

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

func startTenant(t *testing.T, opts simtenant.Options) *simtenant.Tenant {
	t.Helper()
	sim, err := simtenant.Start(opts)
	if err != nil {
		t.Fatalf("start simulated tenant: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// smallDirectory is a tenant of three Teams (both named The Library, and one
// without a drive) and one group that is not a Team.
func smallDirectory() []simtenant.Group {
	var groups []simtenant.Group
	for _, g := range simtenant.School() {
		if g.DisplayName == "The Library" || g.DisplayName == "Sports Day Planning" || g.DisplayName == "Finance Office" {
			groups = append(groups, g)
		}
	}
	return groups
}

// libraryID returns the id of the largest Team, which has a drive.
func libraryID() string {
	var id string
	var used int64
	for _, g := range smallDirectory() {
		if g.IsTeam && g.Drive != nil && g.Drive.Quota.Used > used {
			id, used = g.ID, g.Drive.Quota.Used
		}
	}
	return id
}

func newMSALClient(t *testing.T, sim *simtenant.Tenant, tenantID, clientID string, cred confidential.Credential) confidential.Client {
	t.Helper()
	client, err := confidential.New(sim.AuthorityHost()+"/"+tenantID, clientID, cred,
		confidential.WithHTTPClient(sim.HTTPClient()),
		confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatalf("create MSAL client: %v", err)
	}
	return client
}

// requestToken posts a client credentials request with a secret to the sim's
// token endpoint, without MSAL, and returns the access token.
func requestToken(t *testing.T, sim *simtenant.Tenant, resource string) string {
	t.Helper()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {simtenant.DefaultClientID},
		"client_secret": {simtenant.DefaultClientSecret},
		"scope":         {resource + "/.default"},
	}
	resp, err := sim.HTTPClient().PostForm(sim.AuthorityHost()+"/"+sim.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatalf("request token: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint returned status %d, decode error %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// send sends a request with an optional bearer token and returns the status,
// the headers and the body.
func send(t *testing.T, sim *simtenant.Tenant, method, rawURL, token string, body io.Reader, contentType ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatalf("build request %s %s: %v", method, rawURL, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, ct := range contentType {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := sim.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", method, rawURL, err)
	}
	return resp.StatusCode, resp.Header, data
}

func TestMSALClientSecret(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})

	tests := []struct {
		name       string
		clientID   string
		secret     string
		scope      string
		wantStatus int
		wantCode   string
	}{
		{"graph", simtenant.DefaultClientID, simtenant.DefaultClientSecret, simtenant.GraphResource + "/.default", 0, ""},
		{"bot connector", simtenant.DefaultClientID, simtenant.DefaultClientSecret, simtenant.BotFrameworkResource + "/.default", 0, ""},
		{"wrong secret", simtenant.DefaultClientID, "not-the-secret", simtenant.GraphResource + "/.default", http.StatusUnauthorized, "AADSTS7000215"},
		{"unknown client", "0b5d2c9e-1111-4222-8333-444455556666", simtenant.DefaultClientSecret, simtenant.GraphResource + "/.default", http.StatusBadRequest, "AADSTS700016"},
		{"scope without default", simtenant.DefaultClientID, simtenant.DefaultClientSecret, simtenant.GraphResource + "/Sites.Read.All", http.StatusBadRequest, "AADSTS1002012"},
		{"unknown resource", simtenant.DefaultClientID, simtenant.DefaultClientSecret, "https://vault.azure.net/.default", http.StatusBadRequest, "AADSTS500011"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := confidential.NewCredFromSecret(tt.secret)
			if err != nil {
				t.Fatalf("create credential: %v", err)
			}
			client := newMSALClient(t, sim, sim.TenantID(), tt.clientID, cred)

			result, err := client.AcquireTokenByCredential(t.Context(), []string{tt.scope})

			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("acquire token: %v", err)
				}
				if result.AccessToken == "" {
					t.Fatal("acquired an empty access token")
				}
				return
			}
			var callErr msalerrors.CallErr
			if !errors.As(err, &callErr) {
				t.Fatalf("acquire token: got %v, want an MSAL CallErr", err)
			}
			if callErr.Resp.StatusCode != tt.wantStatus {
				t.Errorf("token endpoint returned status %d, want %d", callErr.Resp.StatusCode, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantCode) {
				t.Errorf("error %q does not name %s", err, tt.wantCode)
			}
		})
	}
}

func TestMSALTokenWorksWithGraph(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	cred, err := confidential.NewCredFromSecret(simtenant.DefaultClientSecret)
	if err != nil {
		t.Fatalf("create credential: %v", err)
	}
	client := newMSALClient(t, sim, sim.TenantID(), simtenant.DefaultClientID, cred)

	result, err := client.AcquireTokenByCredential(t.Context(), []string{simtenant.GraphResource + "/.default"})
	if err != nil {
		t.Fatalf("acquire token: %v", err)
	}
	status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", result.AccessToken, nil)

	if status != http.StatusOK {
		t.Errorf("GET /groups with the MSAL token returned status %d: %s", status, body)
	}
	if n := sim.Stats().TokensIssued; n != 1 {
		t.Errorf("sim issued %d tokens, want 1", n)
	}
}

// newCertificate returns a self-signed RSA certificate for client assertions.
func newCertificate(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "storagebot test app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert, key
}

func TestMSALCertificate(t *testing.T) {
	registered, registeredKey := newCertificate(t)
	other, otherKey := newCertificate(t)
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), ClientCertificate: registered})

	tests := []struct {
		name     string
		cert     *x509.Certificate
		key      *rsa.PrivateKey
		wantCode string
	}{
		{"registered certificate", registered, registeredKey, ""},
		{"other certificate", other, otherKey, "AADSTS700027"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := confidential.NewCredFromCert([]*x509.Certificate{tt.cert}, tt.key)
			if err != nil {
				t.Fatalf("create credential: %v", err)
			}
			client := newMSALClient(t, sim, sim.TenantID(), simtenant.DefaultClientID, cred)

			result, err := client.AcquireTokenByCredential(t.Context(), []string{simtenant.GraphResource + "/.default"})

			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("acquire token: %v", err)
				}
				if status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", result.AccessToken, nil); status != http.StatusOK {
					t.Errorf("GET /groups with the certificate token returned status %d: %s", status, body)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantCode) {
				t.Errorf("acquire token: got %v, want an error naming %s", err, tt.wantCode)
			}
		})
	}
}

// signAssertion builds an RS256 client assertion by hand, so that a test can
// give it claims and a signature MSAL would never produce.
func signAssertion(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate, claims map[string]any) string {
	t.Helper()
	thumbprint := sha1.Sum(cert.Raw)
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": base64.StdEncoding.EncodeToString(thumbprint[:])})
	if err != nil {
		t.Fatalf("encode assertion header: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("encode assertion claims: %v", err)
	}
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signed))
	signature, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatalf("sign assertion: %v", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(signature)
}

func TestClientAssertionChecks(t *testing.T) {
	registered, registeredKey := newCertificate(t)
	_, otherKey := newCertificate(t)
	clock := newFakeClock()
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), ClientCertificate: registered, Now: clock.Now})
	endpoint := sim.AuthorityHost() + "/" + sim.TenantID() + "/oauth2/v2.0/token"
	now := clock.Now().Unix()
	valid := func() map[string]any {
		return map[string]any{"aud": endpoint, "iss": simtenant.DefaultClientID, "sub": simtenant.DefaultClientID, "nbf": now, "exp": now + 600, "jti": "1"}
	}

	tests := []struct {
		name     string
		key      *rsa.PrivateKey
		change   func(claims map[string]any)
		wantCode int
	}{
		{"valid", registeredKey, func(map[string]any) {}, 0},
		{"aud as array", registeredKey, func(c map[string]any) { c["aud"] = []string{endpoint} }, 0},
		{"signed with other key", otherKey, func(map[string]any) {}, 700027},
		{"other issuer", registeredKey, func(c map[string]any) { c["iss"] = "someone-else" }, 700021},
		{"expired", registeredKey, func(c map[string]any) { c["exp"] = now - 1 }, 700024},
		{"other audience", registeredKey, func(c map[string]any) { c["aud"] = "https://example.invalid/token" }, 50027},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := valid()
			tt.change(claims)
			form := url.Values{
				"grant_type":            {"client_credentials"},
				"client_id":             {simtenant.DefaultClientID},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {signAssertion(t, tt.key, registered, claims)},
				"scope":                 {simtenant.GraphResource + "/.default"},
			}

			status, _, body := send(t, sim, http.MethodPost, endpoint, "", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")

			var e struct {
				ErrorCodes []int `json:"error_codes"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("decode token response %s: %v", body, err)
			}
			switch {
			case tt.wantCode == 0 && status != http.StatusOK:
				t.Errorf("token endpoint returned status %d, want 200: %s", status, body)
			case tt.wantCode != 0 && (len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != tt.wantCode):
				t.Errorf("token endpoint returned status %d with %s, want AADSTS%d", status, body, tt.wantCode)
			}
		})
	}
}

func TestUnknownTenant(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	const otherTenant = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"

	t.Run("discovery", func(t *testing.T) {
		status, _, body := send(t, sim, http.MethodGet, sim.AuthorityHost()+"/"+otherTenant+"/v2.0/.well-known/openid-configuration", "", nil)

		if status != http.StatusBadRequest {
			t.Errorf("discovery for an unknown tenant returned status %d, want 400", status)
		}
		var e struct {
			Error      string `json:"error"`
			ErrorCodes []int  `json:"error_codes"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("decode error body %s: %v", body, err)
		}
		if e.Error != "invalid_tenant" {
			t.Errorf("error is %q, want invalid_tenant", e.Error)
		}
		if len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != 90002 {
			t.Errorf("error_codes are %v, want [90002]", e.ErrorCodes)
		}
	})

	t.Run("msal", func(t *testing.T) {
		cred, err := confidential.NewCredFromSecret(simtenant.DefaultClientSecret)
		if err != nil {
			t.Fatalf("create credential: %v", err)
		}
		client := newMSALClient(t, sim, otherTenant, simtenant.DefaultClientID, cred)

		_, err = client.AcquireTokenByCredential(t.Context(), []string{simtenant.GraphResource + "/.default"})

		if err == nil || !strings.Contains(err.Error(), "AADSTS90002") {
			t.Errorf("acquire token for an unknown tenant: got %v, want an error naming AADSTS90002", err)
		}
	})
}

func TestOpenIDConfiguration(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})

	status, _, body := send(t, sim, http.MethodGet, sim.AuthorityHost()+"/"+sim.TenantID()+"/v2.0/.well-known/openid-configuration", "", nil)
	if status != http.StatusOK {
		t.Fatalf("discovery returned status %d: %s", status, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode discovery document: %v", err)
	}

	base := sim.AuthorityHost() + "/" + sim.TenantID()
	want := map[string]string{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"jwks_uri":               base + "/discovery/v2.0/keys",
	}
	for field, value := range want {
		if doc[field] != value {
			t.Errorf("%s is %v, want %s", field, doc[field], value)
		}
	}

	status, _, body = send(t, sim, http.MethodGet, want["jwks_uri"], "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"kty":"RSA"`) {
		t.Errorf("jwks_uri returned status %d with %s, want an RSA key set", status, body)
	}
}

func TestTokenLifetime(t *testing.T) {
	clock := newFakeClock()
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), TokenLifetime: 90 * time.Second, Now: clock.Now})
	token := requestToken(t, sim, simtenant.GraphResource)

	tests := []struct {
		name       string
		advance    time.Duration
		wantStatus int
	}{
		{"fresh", 0, http.StatusOK},
		{"one second before expiry", 89 * time.Second, http.StatusOK},
		{"at expiry", time.Second, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)

			status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", token, nil)

			if status != tt.wantStatus {
				t.Errorf("GET /groups returned status %d, want %d: %s", status, tt.wantStatus, body)
			}
		})
	}
}

func TestStartRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "localhost:0", "192.0.2.1:0"} {
		t.Run(addr, func(t *testing.T) {
			sim, err := simtenant.Start(simtenant.Options{Addr: addr, Groups: smallDirectory()})
			if err == nil {
				sim.Close()
			}
			if !errors.Is(err, simtenant.ErrNotLoopback) {
				t.Errorf("Start(%q) returned %v, want ErrNotLoopback", addr, err)
			}
		})
	}
}

func TestCertPEMTrust(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(sim.CertPEM()) {
		t.Fatal("CertPEM holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	for _, base := range []string{sim.URL(), strings.Replace(sim.URL(), "127.0.0.1", "localhost", 1)} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/"+sim.TenantID()+"/v2.0/.well-known/openid-configuration", nil)
		if err != nil {
			t.Fatalf("build request: %v", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET with the PEM-trusting client at %s: %v", base, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("discovery at %s returned status %d", base, resp.StatusCode)
		}
	}
}
