// Package botauthtest fakes the Bot Connector's token issuer. It serves
// OpenID metadata and signing keys the way login.botframework.com does and
// mints tokens with chosen claims, keys, kid, algorithm and endorsements.
// Tests and the simulated tenant use it; production code does not.
package botauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Paths of the two documents, as login.botframework.com serves them.
const (
	MetadataPath = "/v1/.well-known/openidconfiguration"
	KeysPath     = "/v1/.well-known/keys"
)

// BotFrameworkIssuer is the iss claim of Bot Connector tokens.
const BotFrameworkIssuer = "https://api.botframework.com"

// keyBits is the size of generated keys, the smallest that botauth accepts.
const keyBits = 2048

// Key is an RSA signing key with the Bot Framework's endorsements, the
// channel ids it may sign for.
type Key struct {
	ID           string
	Endorsements []string
	PrivateKey   *rsa.PrivateKey
}

// Token is the header and claims of a token to mint. Zero times and empty
// strings leave the claim out.
type Token struct {
	// Alg is the signing algorithm: RS256 (when empty), RS384, RS512, "none"
	// (no signature) or HS256/HS384/HS512, which use the PEM of the key's
	// public key as the HMAC secret, the classic algorithm-confusion forgery.
	Alg string
	// KeyID is the kid header. Empty means the signing key's ID.
	KeyID string
	// OmitKeyID leaves the kid header out.
	OmitKeyID  bool
	Issuer     string
	Audience   string
	ServiceURL string
	IssuedAt   time.Time
	NotBefore  time.Time
	ExpiresAt  time.Time
	// Extra claims are added as they are and override the fields above.
	Extra map[string]any
}

// Authority serves the OpenID metadata document and the JWKS of its keys. It
// is an http.Handler, safe for concurrent use, and counts the requests.
type Authority struct {
	mu              sync.Mutex
	keys            []*Key
	failStatus      int
	metadataFetches int
	keysFetches     int
}

// Server is an Authority listening on 127.0.0.1.
type Server struct {
	*Authority
	// URL is the server's base URL, for example http://127.0.0.1:41234.
	URL string
	// MetadataURL is the OpenID metadata document, for botauth.Config.
	MetadataURL string

	server *httptest.Server
}

// NewKey generates a 2048-bit RSA key with the given kid and endorsements.
func NewKey(kid string, endorsements ...string) (*Key, error) {
	private, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key %q: %w", kid, err)
	}
	return &Key{ID: kid, Endorsements: endorsements, PrivateKey: private}, nil
}

// NewToken returns the claims the Bot Connector sends to the bot appID for
// an activity from serviceURL: issued at now, valid for one hour.
func NewToken(appID, serviceURL string, now time.Time) Token {
	return Token{
		Issuer:     BotFrameworkIssuer,
		Audience:   appID,
		ServiceURL: serviceURL,
		IssuedAt:   now,
		NotBefore:  now,
		ExpiresAt:  now.Add(time.Hour),
	}
}

// Sign mints tok signed with k, as a compact JWT.
func (k *Key) Sign(tok Token) (string, error) {
	alg := tok.Alg
	if alg == "" {
		alg = "RS256"
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return "", fmt.Errorf("sign token: algorithm %q is unknown", alg)
	}

	var signingKey any
	switch {
	case alg == "none":
		signingKey = jwt.UnsafeAllowNoneSignatureType
	case strings.HasPrefix(alg, "HS"):
		der, err := x509.MarshalPKIXPublicKey(&k.PrivateKey.PublicKey)
		if err != nil {
			return "", fmt.Errorf("sign token: encode public key %q: %w", k.ID, err)
		}
		signingKey = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	default:
		signingKey = k.PrivateKey
	}

	token := jwt.NewWithClaims(method, tok.claims())
	token.Header["kid"] = k.ID
	if tok.KeyID != "" {
		token.Header["kid"] = tok.KeyID
	}
	if tok.OmitKeyID {
		delete(token.Header, "kid")
	}
	signed, err := token.SignedString(signingKey)
	if err != nil {
		return "", fmt.Errorf("sign token with key %q: %w", k.ID, err)
	}
	return signed, nil
}

func (tok Token) claims() jwt.MapClaims {
	claims := jwt.MapClaims{}
	setString := func(name, value string) {
		if value != "" {
			claims[name] = value
		}
	}
	setTime := func(name string, value time.Time) {
		if !value.IsZero() {
			claims[name] = value.Unix()
		}
	}

	setString("iss", tok.Issuer)
	setString("aud", tok.Audience)
	setString("serviceurl", tok.ServiceURL)
	setTime("iat", tok.IssuedAt)
	setTime("nbf", tok.NotBefore)
	setTime("exp", tok.ExpiresAt)
	for name, value := range tok.Extra {
		claims[name] = value
	}
	return claims
}

// NewAuthority returns an Authority that serves the given keys.
func NewAuthority(keys ...*Key) *Authority {
	return &Authority{keys: slices.Clone(keys)}
}

// NewServer starts an Authority for the given keys on 127.0.0.1. Call Close
// when done.
func NewServer(keys ...*Key) *Server {
	authority := NewAuthority(keys...)
	server := httptest.NewServer(authority)
	return &Server{
		Authority:   authority,
		URL:         server.URL,
		MetadataURL: server.URL + MetadataPath,
		server:      server,
	}
}

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client {
	return s.server.Client()
}

// Close stops the server.
func (s *Server) Close() {
	s.server.Close()
}

// AddKey adds k to the served keys, replacing a key with the same kid.
func (a *Authority) AddKey(k *Key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys = slices.DeleteFunc(a.keys, func(old *Key) bool { return old.ID == k.ID })
	a.keys = append(a.keys, k)
}

// RemoveKey stops serving the key with the given kid.
func (a *Authority) RemoveKey(kid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys = slices.DeleteFunc(a.keys, func(old *Key) bool { return old.ID == kid })
}

// FailWith makes both documents respond with the given HTTP status, or
// serve normally again when status is 0.
func (a *Authority) FailWith(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failStatus = status
}

// MetadataFetches returns how many requests the metadata document received.
func (a *Authority) MetadataFetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.metadataFetches
}

// KeysFetches returns how many requests the JWKS received.
func (a *Authority) KeysFetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keysFetches
}

// ServeHTTP serves the metadata document at MetadataPath and the JWKS at
// KeysPath. The metadata's jwks_uri points back at the host of the request.
func (a *Authority) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	a.mu.Lock()
	switch r.URL.Path {
	case MetadataPath:
		a.metadataFetches++
	case KeysPath:
		a.keysFetches++
	}
	failStatus := a.failStatus
	keys := slices.Clone(a.keys)
	a.mu.Unlock()

	if failStatus != 0 {
		http.Error(w, http.StatusText(failStatus), failStatus)
		return
	}

	switch r.URL.Path {
	case MetadataPath:
		writeJSON(w, metadataDocument(r))
	case KeysPath:
		writeJSON(w, keySetDocument(keys))
	default:
		http.NotFound(w, r)
	}
}

// metadataDocument mirrors the example document in "Authentication with the
// Bot Connector API", with jwks_uri pointing at this server.
func metadataDocument(r *http.Request) map[string]any {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	return map[string]any{
		"issuer":                                BotFrameworkIssuer,
		"authorization_endpoint":                "https://invalid.botframework.com",
		"jwks_uri":                              base + KeysPath,
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
	}
}

func keySetDocument(keys []*Key) map[string]any {
	encoded := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		public := k.PrivateKey.PublicKey
		jwk := map[string]any{
			"kty": "RSA",
			"use": "sig",
			"kid": k.ID,
			"n":   base64.RawURLEncoding.EncodeToString(public.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(public.E)).Bytes()),
		}
		if len(k.Endorsements) > 0 {
			jwk["endorsements"] = k.Endorsements
		}
		encoded = append(encoded, jwk)
	}
	return map[string]any{"keys": encoded}
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode JSON: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
