package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagebot/storagebot/botauth/botauthtest"
	"github.com/storagebot/storagebot/simtenant"
)

const (
	// teamsServiceURL is a Teams connector host on the allow-list. The
	// test's dialer sends it to the simulated connector.
	teamsServiceURL = "https://smba.trafficmanager.net/connector/"
	// forgedServiceURL is a host off the allow-list. The test's dialer
	// sends it to a local listener that counts connections.
	forgedServiceURL = "https://forged.example/connector/"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// countingListener accepts and closes connections on 127.0.0.1, counting
// them. It replaces a forged host that must never be contacted.
type countingListener struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return l
}

// routedClient is the bot's outbound client for the test. It trusts the
// simulated tenant's certificate, sends smba.trafficmanager.net to the
// simulated connector and forged.example to the counting listener, and
// refuses any other host that is not a loopback IP.
func routedClient(sim *simtenant.Tenant, forged *countingListener) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sim.CertPEM())
	simAddr := strings.TrimPrefix(sim.URL(), "https://")
	dialer := &net.Dialer{Timeout: 5 * time.Second}

	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			// The sim's certificate names 127.0.0.1, which every routed
			// host really is.
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				switch addr {
				case "smba.trafficmanager.net:443":
					addr = simAddr
				case "forged.example:443":
					addr = forged.ln.Addr().String()
				default:
					host, _, err := net.SplitHostPort(addr)
					if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
						return nil, fmt.Errorf("test client refuses to dial %s", addr)
					}
				}
				return dialer.DialContext(ctx, network, addr)
			},
		},
	}
}

// serveAuthFixture is storagebot serve with MicrosoftAppId set, its
// BotOpenIdMetadata on a local issuer, a simulated tenant for Entra, Graph
// and the connector, and a forged host that counts connections.
type serveAuthFixture struct {
	app    *app
	sim    *simtenant.Tenant
	issuer *botauthtest.Server
	key    *botauthtest.Key
	forged *countingListener
	logs   *lockedBuffer
}

func startServeAuth(t *testing.T) *serveAuthFixture {
	t.Helper()
	sim, err := simtenant.Start(simtenant.Options{})
	if err != nil {
		t.Fatalf("start simulated tenant: %v", err)
	}
	t.Cleanup(sim.Close)

	key, err := botauthtest.NewKey("key-1", "msteams")
	if err != nil {
		t.Fatal(err)
	}
	skypeOnly, err := botauthtest.NewKey("key-skype", "skype")
	if err != nil {
		t.Fatal(err)
	}
	issuer := botauthtest.NewServer(key, skypeOnly)
	t.Cleanup(issuer.Close)
	forged := newCountingListener(t)

	env := mapEnv{
		"MicrosoftAppId":            simtenant.DefaultClientID,
		"MicrosoftAppPassword":      simtenant.DefaultClientSecret,
		"MicrosoftAppTenantId":      simtenant.PlaygroundTenantID,
		"MicrosoftAppType":          "SingleTenant",
		"BotOpenIdMetadata":         issuer.MetadataURL,
		"STORAGEBOT_ADDR":           "127.0.0.1:0",
		"STORAGEBOT_ADMIN_GROUP_ID": simtenant.ITAdminsGroupID,
		"STORAGEBOT_DB_PATH":        filepath.Join(t.TempDir(), "storagebot.db"),
		"AZURE_AUTHORITY_HOST":      sim.AuthorityHost(),
		"GRAPH_BASE_URL":            sim.GraphURL(),
	}
	c, err := loadConfig(env)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := startApp(c, routedClient(sim, forged), logger)
	if err != nil {
		t.Fatalf("startApp: %v", err)
	}
	t.Cleanup(func() { a.shutdown() })
	return &serveAuthFixture{app: a, sim: sim, issuer: issuer, key: key, forged: forged, logs: logs}
}

// activity returns a personal "top 3" message from the Playground's admin
// user, as Teams would post it from serviceURL.
func (f *serveAuthFixture) activity(id, serviceURL, tenant string) []byte {
	body, _ := json.Marshal(map[string]any{
		"type":         "message",
		"id":           id,
		"channelId":    "msteams",
		"serviceUrl":   serviceURL,
		"from":         map[string]any{"id": "29:alex", "name": "Alex Wilber", "aadObjectId": simtenant.PlaygroundUserID},
		"recipient":    map[string]any{"id": "28:" + simtenant.DefaultClientID, "name": "storagebot"},
		"conversation": map[string]any{"id": "a:personal-" + id, "conversationType": "personal", "tenantId": tenant},
		"channelData":  map[string]any{"tenant": map[string]any{"id": tenant}},
		"text":         "top 3",
	})
	return body
}

func (f *serveAuthFixture) post(t *testing.T, body []byte, authorization string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.app.URL()+"/api/messages", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post activity: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func signWith(t *testing.T, key *botauthtest.Key, tok botauthtest.Token) string {
	t.Helper()
	signed, err := key.Sign(tok)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + signed
}

// The forged-case table runs in order against one server, because an
// unknown kid spends the validator's refetch for an hour.
func TestServeRejectsForgedActivities(t *testing.T) {
	f := startServeAuth(t)
	otherKey, err := botauthtest.NewKey("key-1", "msteams")
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := botauthtest.NewKey("key-2", "msteams")
	if err != nil {
		t.Fatal(err)
	}
	neverPublished, err := botauthtest.NewKey("key-unknown", "msteams")
	if err != nil {
		t.Fatal(err)
	}
	skypeOnly, err := botauthtest.NewKey("key-skype", "skype")
	if err != nil {
		t.Fatal(err)
	}
	f.issuer.AddKey(skypeOnly)

	appID := simtenant.DefaultClientID
	tenant := simtenant.PlaygroundTenantID
	now := time.Now()
	valid := botauthtest.NewToken(appID, teamsServiceURL, now)
	with := func(edit func(*botauthtest.Token)) botauthtest.Token {
		tok := valid
		edit(&tok)
		return tok
	}

	tests := []struct {
		name       string
		serviceURL string
		tenant     string
		header     func() string
		before     func()
		wantStatus int
		// wantReply is the text the card sent back must contain; empty
		// means nothing may be sent.
		wantReply string
	}{
		{name: "correctly signed", header: func() string { return signWith(t, f.key, valid) }, wantStatus: 200, wantReply: "The Library"},
		{name: "no header", header: func() string { return "" }, wantStatus: 401},
		{name: "not a JWT", header: func() string { return "Bearer not-a-jwt" }, wantStatus: 401},
		{name: "wrong signature", header: func() string { return signWith(t, otherKey, valid) }, wantStatus: 401},
		{name: "unknown kid", header: func() string { return signWith(t, neverPublished, valid) }, wantStatus: 401},
		{
			// The unknown kid above spent the refetch, which botbuilder-js
			// also allows once an hour, so a key published now is not used
			// yet. botauth's tests show the refetch with an injected clock.
			name:       "rotated key within the refetch interval",
			before:     func() { f.issuer.AddKey(rotated) },
			header:     func() string { return signWith(t, rotated, valid) },
			wantStatus: 401,
		},
		{name: "wrong issuer", header: func() string {
			return signWith(t, f.key, with(func(tok *botauthtest.Token) { tok.Issuer = "https://sts.windows.net/" + tenant + "/" }))
		}, wantStatus: 401},
		{name: "wrong audience", header: func() string {
			return signWith(t, f.key, with(func(tok *botauthtest.Token) { tok.Audience = "another-bot" }))
		}, wantStatus: 401},
		{name: "expired beyond the skew", header: func() string {
			return signWith(t, f.key, with(func(tok *botauthtest.Token) {
				tok.IssuedAt, tok.NotBefore, tok.ExpiresAt = now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-6*time.Minute)
			}))
		}, wantStatus: 401},
		{name: "expired inside the skew", header: func() string {
			return signWith(t, f.key, with(func(tok *botauthtest.Token) {
				tok.IssuedAt, tok.NotBefore, tok.ExpiresAt = now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-4*time.Minute)
			}))
		}, wantStatus: 200, wantReply: "The Library"},
		{name: "wrong serviceurl claim", header: func() string {
			return signWith(t, f.key, with(func(tok *botauthtest.Token) { tok.ServiceURL = "https://smba.trafficmanager.net/emea/" }))
		}, wantStatus: 401},
		{name: "key not endorsed for msteams", header: func() string { return signWith(t, skypeOnly, valid) }, wantStatus: 401},
		{name: "other tenant", tenant: "11111111-1111-1111-1111-111111111111", header: func() string { return signWith(t, f.key, valid) }, wantStatus: 200, wantReply: "does not serve your organization"},
		{
			name:       "forged serviceUrl host with a matching claim",
			serviceURL: forgedServiceURL,
			header: func() string {
				return signWith(t, f.key, with(func(tok *botauthtest.Token) { tok.ServiceURL = forgedServiceURL }))
			},
			wantStatus: 401,
		},
	}

	replies := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			serviceURL, activityTenant := teamsServiceURL, tenant
			if tt.serviceURL != "" {
				serviceURL = tt.serviceURL
			}
			if tt.tenant != "" {
				activityTenant = tt.tenant
			}

			status := f.post(t, f.activity(fmt.Sprintf("activity-%d", i), serviceURL, activityTenant), tt.header())
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", status, tt.wantStatus)
			}
			if tt.wantReply == "" {
				return
			}

			replies++
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			sent, err := f.sim.WaitActivities(ctx, replies)
			if err != nil {
				t.Fatalf("wait for reply %d: %v", replies, err)
			}
			reply := sent[replies-1]
			if !reply.Authorized {
				t.Error("reply carried no valid Bot Connector token")
			}
			text, err := cardText(reply.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, tt.wantReply) {
				t.Errorf("reply card does not contain %q:\n%s", tt.wantReply, text)
			}
		})
	}

	if err := f.app.bot.Shutdown(t.Context()); err != nil {
		t.Fatalf("shut the bot down: %v", err)
	}
	if n := len(f.sim.Activities()); n != replies {
		t.Errorf("connector received %d activities, want %d: a rejected activity got a reply", n, replies)
	}
	if n := f.forged.accepted.Load(); n != 0 {
		t.Errorf("the forged host received %d connections, want none", n)
	}
	if n := strings.Count(f.logs.String(), "rejected activity"); n < 10 {
		t.Errorf("logged %d rejections, want one per forged case:\n%s", n, f.logs.String())
	}
}

// A single-tenant bot gets its connector token from {authority}/{tenant};
// a multi-tenant bot from {authority}/botframework.com.
func TestConnectorTokenAuthority(t *testing.T) {
	tests := []struct {
		appType  string
		wantPath string
	}{
		{appType: "SingleTenant", wantPath: "/" + simtenant.PlaygroundTenantID + "/oauth2/v2.0/token"},
		{appType: "MultiTenant", wantPath: "/botframework.com/oauth2/v2.0/token"},
	}

	for _, tt := range tests {
		t.Run(tt.appType, func(t *testing.T) {
			var (
				mu    sync.Mutex
				paths []string
			)
			var authority *httptest.Server
			authority = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()

				tenant, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
				w.Header().Set("Content-Type", "application/json")
				switch {
				case strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
					fmt.Fprintf(w, `{"issuer":"%[1]s/%[2]s/v2.0","authorization_endpoint":"%[1]s/%[2]s/oauth2/v2.0/authorize","token_endpoint":"%[1]s/%[2]s/oauth2/v2.0/token"}`, authority.URL, tenant)
				case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
					fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"connector-token"}`)
				default:
					http.NotFound(w, r)
				}
			}))
			defer authority.Close()

			c, err := loadConfig(mapEnv{
				"MicrosoftAppId":       "6c1f3b52-8e0d-4c7a-9b14-2f5e7d9a0c31",
				"MicrosoftAppPassword": "test-secret",
				"MicrosoftAppTenantId": simtenant.PlaygroundTenantID,
				"MicrosoftAppType":     tt.appType,
				"AZURE_AUTHORITY_HOST": authority.URL,
			})
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			tokens, err := connectorTokens(c, authority.Client())
			if err != nil {
				t.Fatalf("connectorTokens: %v", err)
			}
			token, err := tokens.Token(t.Context())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}

			if token != "connector-token" {
				t.Errorf("token = %q, want the authority's", token)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(paths) == 0 || paths[len(paths)-1] != tt.wantPath {
				t.Errorf("authority paths = %v, want the token from %s", paths, tt.wantPath)
			}
		})
	}
}

// Configuration errors stop serve before it listens, with one line that
// names the setting.
func TestServeConfigErrorsOneLine(t *testing.T) {
	badPEM := filepath.Join(t.TempDir(), "bot.pem")
	if err := os.WriteFile(badPEM, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() mapEnv {
		return mapEnv{
			"MicrosoftAppId":       simtenant.DefaultClientID,
			"MicrosoftAppPassword": "secret",
			"MicrosoftAppTenantId": simtenant.PlaygroundTenantID,
			"GRAPH_TOKEN":          "graph-token",
			"STORAGEBOT_ADDR":      "127.0.0.1:0",
			"STORAGEBOT_DB_PATH":   filepath.Join(t.TempDir(), "storagebot.db"),
		}
	}
	tests := []struct {
		name     string
		edit     func(mapEnv)
		wantText string
	}{
		{
			name:     "single tenant without tenant id",
			edit:     func(e mapEnv) { e["MicrosoftAppType"] = "SingleTenant"; delete(e, "MicrosoftAppTenantId") },
			wantText: "MicrosoftAppType=SingleTenant requires MicrosoftAppTenantId",
		},
		{
			name:     "unknown app type",
			edit:     func(e mapEnv) { e["MicrosoftAppType"] = "Tenantless" },
			wantText: `MicrosoftAppType="Tenantless" is invalid`,
		},
		{
			name:     "certificate that does not load",
			edit:     func(e mapEnv) { delete(e, "MicrosoftAppPassword"); e["STORAGEBOT_APP_CERTIFICATE_PATH"] = badPEM },
			wantText: "load STORAGEBOT_APP_CERTIFICATE_PATH",
		},
		{
			name: "metadata over http on a network host",
			edit: func(e mapEnv) {
				e["BotOpenIdMetadata"] = "http://login.botframework.com/v1/.well-known/openidconfiguration"
			},
			wantText: "BotOpenIdMetadata=",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := base()
			tt.edit(env)
			var stdout, stderr bytes.Buffer

			code := run(t.Context(), []string{"serve"}, env, &stdout, &stderr)

			if code != 1 {
				t.Fatalf("serve exited %d, want 1; stderr:\n%s", code, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", len(lines), stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantText) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantText, stderr.String())
			}
			if strings.Contains(stderr.String(), "secret") {
				t.Errorf("stderr shows the password:\n%s", stderr.String())
			}
		})
	}
}
