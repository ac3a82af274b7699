package botauth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// maxKeyAge is how long fetched keys are used before a refresh. The
	// article requires a refresh at least once every 24 hours, and
	// openIdMetadata.ts refreshes after 24 hours.
	maxKeyAge = 24 * time.Hour

	// unknownKeyRefetchInterval limits the refetches that a token with an
	// unknown kid triggers, as openIdMetadata.ts does (once an hour), so
	// forged kids cannot make the bot hammer the metadata endpoint.
	unknownKeyRefetchInterval = time.Hour

	// failedFetchRetryInterval spaces the retries while there are no keys
	// yet, or while the keys are older than maxKeyAge and refreshes fail.
	failedFetchRetryInterval = time.Minute

	// fetchTimeout bounds one shared fetch of the metadata and the keys.
	// Callers stop waiting earlier when their own context ends, but the fetch
	// goes on for the other waiters.
	fetchTimeout = 30 * time.Second

	// maxResponseBytes bounds each metadata and key document. An RSA key
	// with its x5c certificate takes roughly 2 KB of JSON, so the bound
	// leaves room for hundreds of keys.
	maxResponseBytes = 1 << 20

	// minKeyBits rejects RSA keys shorter than 2048 bits, the NIST SP 800-131A
	// minimum for signatures.
	minKeyBits = 2048
)

// signingKey is one usable key from the JWKS.
type signingKey struct {
	publicKey *rsa.PublicKey
	// endorsements are the channel ids the key may sign for. Empty means
	// the key is not limited to channels.
	endorsements []string
}

// keySet caches the signing keys behind an OpenID metadata document and
// refetches them when they are stale or a token names an unknown kid.
type keySet struct {
	metadataURL string
	client      *http.Client
	now         func() time.Time
	logger      *slog.Logger

	mu sync.Mutex
	// keys is nil until the first successful fetch.
	keys map[string]signingKey
	// fetchedAt is when keys were last fetched successfully.
	fetchedAt time.Time
	// attemptedAt is when the last fetch started, successful or not.
	attemptedAt time.Time
	// inflight is the running fetch that concurrent callers share, or nil.
	inflight *fetchCall
}

// fetchCall is one fetch of the metadata and the keys. Its done channel is
// closed after err is set.
type fetchCall struct {
	done chan struct{}
	err  error
}

// jsonWebKey is one key of the JWKS (RFC 7517) with the Bot Framework's
// extra endorsements property.
type jsonWebKey struct {
	KeyType      string   `json:"kty"`
	Use          string   `json:"use"`
	KeyID        string   `json:"kid"`
	Modulus      string   `json:"n"`
	Exponent     string   `json:"e"`
	Endorsements []string `json:"endorsements"`
}

func newKeySet(metadataURL string, client *http.Client, now func() time.Time, logger *slog.Logger) *keySet {
	return &keySet{
		metadataURL: metadataURL,
		client:      client,
		now:         now,
		logger:      logger,
	}
}

// key returns the signing key with the given kid, fetching the keys first
// when none are cached, when they are older than maxKeyAge, or when the kid
// is unknown and the last fetch is at least unknownKeyRefetchInterval old.
// A failed fetch keeps the cached keys.
func (s *keySet) key(ctx context.Context, kid string) (signingKey, error) {
	s.mu.Lock()
	now := s.now()
	cached, found := s.keys[kid]
	if !s.fetchDueLocked(now, found) {
		haveKeys := s.keys != nil
		s.mu.Unlock()
		return cachedOrError(cached, found, haveKeys, kid, nil)
	}
	call := s.startFetchLocked(ctx, now)
	s.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return signingKey{}, fmt.Errorf("wait for signing keys: %w", ctx.Err())
	}

	s.mu.Lock()
	cached, found = s.keys[kid]
	haveKeys := s.keys != nil
	s.mu.Unlock()
	return cachedOrError(cached, found, haveKeys, kid, call.err)
}

// fetchDueLocked reports whether key must fetch, or join a running fetch,
// before it returns. s.mu must be held.
func (s *keySet) fetchDueLocked(now time.Time, found bool) bool {
	if s.inflight != nil {
		return true
	}

	sinceAttempt := now.Sub(s.attemptedAt)
	switch {
	case s.keys == nil:
		return s.attemptedAt.IsZero() || sinceAttempt >= failedFetchRetryInterval
	case now.Sub(s.fetchedAt) >= maxKeyAge:
		return sinceAttempt >= failedFetchRetryInterval
	case !found:
		return sinceAttempt >= unknownKeyRefetchInterval
	default:
		return false
	}
}

// startFetchLocked starts a fetch in its own goroutine, detached from ctx's
// cancellation so one caller leaving does not fail the others. s.mu must be
// held.
func (s *keySet) startFetchLocked(ctx context.Context, now time.Time) *fetchCall {
	if s.inflight != nil {
		return s.inflight
	}

	call := &fetchCall{done: make(chan struct{})}
	s.inflight = call
	s.attemptedAt = now

	go func() {
		fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		keys, err := s.fetch(fetchCtx)

		s.mu.Lock()
		if err == nil {
			s.keys = keys
			s.fetchedAt = s.now()
			s.logger.Info("signing keys refreshed", "metadata_url", s.metadataURL, "key_count", len(keys))
		} else if s.keys != nil {
			s.logger.Warn("refresh signing keys failed, keeping cached keys",
				"metadata_url", s.metadataURL, "key_count", len(s.keys), "err", err)
		}
		s.inflight = nil
		call.err = err
		s.mu.Unlock()
		close(call.done)
	}()
	return call
}

// cachedOrError returns the cached key, or the error that explains why there
// is none.
func cachedOrError(cached signingKey, found, haveKeys bool, kid string, fetchErr error) (signingKey, error) {
	switch {
	case found:
		return cached, nil
	case !haveKeys && fetchErr != nil:
		return signingKey{}, fmt.Errorf("%w: %w", ErrKeysUnavailable, fetchErr)
	case !haveKeys:
		return signingKey{}, fmt.Errorf("%w: last fetch failed, next try within %v", ErrKeysUnavailable, failedFetchRetryInterval)
	default:
		return signingKey{}, fmt.Errorf("find signing key %q: %w", kid, ErrUnknownKey)
	}
}

// fetch reads the metadata document, then the JWKS that its jwks_uri names.
func (s *keySet) fetch(ctx context.Context) (map[string]signingKey, error) {
	var metadata struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.getJSON(ctx, s.metadataURL, &metadata); err != nil {
		return nil, fmt.Errorf("fetch openid metadata: %w", err)
	}
	if metadata.JWKSURI == "" {
		return nil, fmt.Errorf("fetch openid metadata %s: jwks_uri is missing", s.metadataURL)
	}
	if err := checkFetchURL(metadata.JWKSURI); err != nil {
		return nil, fmt.Errorf("fetch openid metadata %s: jwks_uri: %w", s.metadataURL, err)
	}

	var set struct {
		Keys []jsonWebKey `json:"keys"`
	}
	if err := s.getJSON(ctx, metadata.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("fetch signing keys: %w", err)
	}

	keys := make(map[string]signingKey, len(set.Keys))
	for _, jwk := range set.Keys {
		key, err := parseRSAKey(jwk)
		if err != nil {
			s.logger.Debug("skip signing key", "kid", jwk.KeyID, "err", err)
			continue
		}
		keys[jwk.KeyID] = key
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("fetch signing keys %s: none of %d keys is a usable RSA signing key", metadata.JWKSURI, len(set.Keys))
	}
	return keys, nil
}

// getJSON decodes the JSON body of a GET to rawURL into v, reading at most
// maxResponseBytes.
func (s *keySet) getJSON(ctx context.Context, rawURL string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("create request for %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")

	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", rawURL, err)
	}
	defer resp.Body.Close()

	// The client follows redirects, so the document is trusted only if the
	// URL it finally came from passes the same https rule.
	if resp.Request != nil && resp.Request.URL.String() != rawURL {
		if err := checkFetchURL(resp.Request.URL.String()); err != nil {
			return fmt.Errorf("get %s: redirected: %w", rawURL, err)
		}
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", rawURL, resp.StatusCode)
	}
	if len(body) > maxResponseBytes {
		return fmt.Errorf("read %s: body is larger than %d bytes", rawURL, maxResponseBytes)
	}

	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", rawURL, err)
	}
	return nil
}

// parseRSAKey converts an RSA signing key of the JWKS. fetch skips keys of
// other types, as openIdMetadata.ts skips keys without n and e. The base64url
// values may carry padding, which RFC 7518 forbids but some issuers send.
func parseRSAKey(jwk jsonWebKey) (signingKey, error) {
	if jwk.KeyID == "" {
		return signingKey{}, errors.New("kid is empty")
	}
	if jwk.KeyType != "RSA" {
		return signingKey{}, fmt.Errorf("kty %q is not RSA", jwk.KeyType)
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return signingKey{}, fmt.Errorf("use %q is not sig", jwk.Use)
	}

	modulusBytes, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jwk.Modulus, "="))
	if err != nil {
		return signingKey{}, fmt.Errorf("decode n: %w", err)
	}
	exponentBytes, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jwk.Exponent, "="))
	if err != nil {
		return signingKey{}, fmt.Errorf("decode e: %w", err)
	}

	modulus := new(big.Int).SetBytes(modulusBytes)
	if modulus.BitLen() < minKeyBits {
		return signingKey{}, fmt.Errorf("modulus has %d bits, want at least %d", modulus.BitLen(), minKeyBits)
	}
	exponent := new(big.Int).SetBytes(exponentBytes)
	if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 {
		return signingKey{}, fmt.Errorf("exponent %s is out of range", exponent)
	}

	return signingKey{
		publicKey:    &rsa.PublicKey{N: modulus, E: int(exponent.Int64())},
		endorsements: jwk.Endorsements,
	}, nil
}
