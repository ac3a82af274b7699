// Package botauth validates the JWT bearer token that the Bot Connector sends
// with every activity it posts to the bot.
//
// The checks follow "Authentication with the Bot Connector API"
// (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication)
// and botbuilder-js, libraries/botframework-connector/src/auth
// (jwtTokenExtractor.ts, endorsementsValidator.ts, openIdMetadata.ts,
// parameterizedBotFrameworkAuthentication.ts) where the article leaves a
// detail open.
package botauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultMetadataURL is the Bot Connector's OpenID metadata document in
// Microsoft's global cloud. The Bot Framework SDKs read an override from the
// BotOpenIdMetadata setting.
const DefaultMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"

// BotFrameworkIssuer is the iss claim of every token the Bot Connector sends
// to a bot, for multi-tenant and single-tenant bots alike.
const BotFrameworkIssuer = "https://api.botframework.com"

// clockSkew is the leeway on exp and nbf. The article calls 5 minutes the
// industry standard, and botbuilder-js sets clockTolerance to 300 seconds.
const clockSkew = 5 * time.Minute

// allowedAlgorithms are the signing algorithms botbuilder-js accepts
// (AllowedSigningAlgorithms). Listing them also rejects "none" and the HS*
// family, so a token cannot pass with the public key used as an HMAC secret.
var allowedAlgorithms = []string{"RS256", "RS384", "RS512"}

var (
	// ErrUnauthorized is wrapped by every error Validate returns: the request
	// must not be trusted. The Bot Framework SDKs respond with HTTP 401.
	ErrUnauthorized = errors.New("unauthorized")

	// ErrNoBearerToken means the Authorization header is missing or does not
	// use the Bearer scheme.
	ErrNoBearerToken = errors.New("no bearer token")

	// ErrUnknownKey means the token's kid is not in the signing keys, even
	// after the refetch that an unknown kid allows.
	ErrUnknownKey = errors.New("unknown signing key")

	// ErrNotEndorsed means the signing key carries endorsements and the
	// activity's channelId is not one of them.
	ErrNotEndorsed = errors.New("signing key not endorsed for channel")

	// ErrServiceURLMismatch means the token's serviceurl claim differs from
	// the activity's serviceUrl.
	ErrServiceURLMismatch = errors.New("serviceurl claim does not match")

	// ErrKeysUnavailable means no signing keys could be fetched, so no token
	// can be checked. The fault is the key endpoint's, not the caller's, so a
	// bot may respond with HTTP 503 instead of 401.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

// Config configures a Validator.
type Config struct {
	// AppID is the bot's Microsoft App ID, the expected aud claim. Required.
	AppID string
	// MetadataURL is the OpenID metadata document whose jwks_uri lists the
	// signing keys. Empty means DefaultMetadataURL. It must use https unless
	// its host is a loopback address or "localhost".
	MetadataURL string
	// HTTPClient fetches the metadata and the keys. Nil means
	// http.DefaultClient. Every fetch is bounded by its own timeout.
	HTTPClient *http.Client
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives key refreshes and refresh failures. Nil discards them.
	Logger *slog.Logger
}

// Claims are the validated claims of a Bot Connector token.
type Claims struct {
	Issuer   string
	Audience []string
	// ServiceURL is the serviceurl claim, the only Connector URL the token
	// vouches for.
	ServiceURL string
	ExpiresAt  time.Time
	// KeyID is the kid of the key that signed the token.
	KeyID string
}

// Validator validates Bot Connector tokens. It is safe for concurrent use.
type Validator struct {
	appID  string
	parser *jwt.Parser
	keys   *keySet
}

// tokenClaims is the JSON payload of a Bot Connector token.
type tokenClaims struct {
	jwt.RegisteredClaims
	ServiceURL string `json:"serviceurl"`
}

// New returns a Validator for cfg. It makes no request: the keys are fetched
// on the first Validate.
func New(cfg Config) (*Validator, error) {
	if cfg.AppID == "" {
		return nil, errors.New("create validator: AppID is empty, set it to the bot's Microsoft App ID")
	}

	metadataURL := cfg.MetadataURL
	if metadataURL == "" {
		metadataURL = DefaultMetadataURL
	}
	if err := checkFetchURL(metadataURL); err != nil {
		return nil, fmt.Errorf("create validator: metadata URL: %w", err)
	}

	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	parser := jwt.NewParser(
		jwt.WithValidMethods(allowedAlgorithms),
		jwt.WithIssuer(BotFrameworkIssuer),
		jwt.WithAudience(cfg.AppID),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(now),
	)

	return &Validator{
		appID:  cfg.AppID,
		parser: parser,
		keys:   newKeySet(metadataURL, client, now, logger.With("component", "botauth")),
	}, nil
}

// Validate checks authHeader ("Bearer <jwt>") for an activity with the given
// channelId and serviceUrl and returns the token's claims. Every error wraps
// ErrUnauthorized and gives a short reason, never the token.
//
// As in botbuilder-js, an empty channelID skips the endorsement check and an
// empty serviceURL skips the serviceurl check. A caller must therefore not
// send anything for an activity without a serviceUrl.
func (v *Validator) Validate(ctx context.Context, authHeader, channelID, serviceURL string) (Claims, error) {
	raw, err := bearerToken(authHeader)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}

	var (
		claims tokenClaims
		key    signingKey
		keyID  string
	)
	_, err = v.parser.ParseWithClaims(raw, &claims, func(token *jwt.Token) (any, error) {
		// Checking the issuer before the key lookup, as botbuilder-js does,
		// keeps foreign tokens from spending the unknown-kid refetch.
		issuer, _ := token.Claims.GetIssuer()
		if issuer != BotFrameworkIssuer {
			return nil, fmt.Errorf("check issuer %q: %w", issuer, jwt.ErrTokenInvalidIssuer)
		}

		keyID, _ = token.Header["kid"].(string)
		var lookupErr error
		key, lookupErr = v.keys.key(ctx, keyID)
		if lookupErr != nil {
			return nil, lookupErr
		}
		return key.publicKey, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: validate token: %w", ErrUnauthorized, err)
	}

	// endorsementsValidator.ts: a key with endorsements may sign only for the
	// channels it lists, compared exactly. A key without endorsements, or an
	// activity without a channelId, passes.
	if len(key.endorsements) > 0 && strings.TrimSpace(channelID) != "" && !slices.Contains(key.endorsements, channelID) {
		return Claims{}, fmt.Errorf("%w: check channel %q against key %q: %w", ErrUnauthorized, channelID, keyID, ErrNotEndorsed)
	}

	// botbuilder-js compares the claim with the activity's serviceUrl as
	// exact strings, case and trailing slash included.
	if serviceURL != "" && claims.ServiceURL != serviceURL {
		return Claims{}, fmt.Errorf("%w: check serviceurl claim %q against activity serviceUrl %q: %w",
			ErrUnauthorized, claims.ServiceURL, serviceURL, ErrServiceURLMismatch)
	}

	result := Claims{
		Issuer:     claims.Issuer,
		Audience:   claims.Audience,
		ServiceURL: claims.ServiceURL,
		KeyID:      keyID,
	}
	if claims.ExpiresAt != nil {
		result.ExpiresAt = claims.ExpiresAt.Time
	}
	return result, nil
}

// bearerToken returns the token of a "Bearer <token>" header. The scheme is
// matched case-insensitively, as RFC 9110 section 11.1 requires. The error
// never repeats the header, because the header may be a bare token.
func bearerToken(header string) (string, error) {
	if strings.TrimSpace(header) == "" {
		return "", fmt.Errorf("read Authorization header: header is missing: %w", ErrNoBearerToken)
	}

	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("read Authorization header: scheme is not Bearer: %w", ErrNoBearerToken)
	}
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", fmt.Errorf("read Authorization header: expected one token after Bearer: %w", ErrNoBearerToken)
	}
	return token, nil
}

// checkFetchURL accepts an absolute https URL, or an http URL whose host is
// loopback, so that keys are never fetched in plain text over a network.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	if u.Host == "" {
		return fmt.Errorf("check %q: URL has no host", raw)
	}

	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("check %q: http is allowed only for a loopback host, use https", raw)
	default:
		return fmt.Errorf("check %q: scheme %q is not https", raw, u.Scheme)
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
