// Package connector is the Bot Connector REST client: it sends, replies to
// and updates activities and creates conversations, through one retry gate.
package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

const (
	// defaultMaxAttempts counts the first request and its retries.
	defaultMaxAttempts = 5

	// defaultMaxRetryWait caps how long one retry may wait. A Retry-After
	// above it ends the call with the error instead of blocking a reply for
	// minutes.
	defaultMaxRetryWait = 60 * time.Second

	// defaultBaseBackoff is the first backoff without Retry-After; it doubles
	// per attempt up to defaultMaxBackoff, with full jitter.
	defaultBaseBackoff = 1 * time.Second
	defaultMaxBackoff  = 30 * time.Second

	// maxResponseBytes bounds how much of a response body is read. Success
	// bodies are a few ids and error bodies a code and a message.
	maxResponseBytes = 1 << 20

	// maxErrorMessageChars bounds the service's error message kept in an
	// APIError, so a large HTML error page cannot flood the logs.
	maxErrorMessageChars = 300
)

// Sentinel errors matched with errors.Is on an *APIError.
var (
	// ErrForbidden is a 403: the bot is not in the conversation's roster,
	// the user blocked it, or an admin disabled it.
	ErrForbidden = errors.New("bot connector rejected the request as forbidden")
	// ErrNotFound is a 404, usually ConversationNotFound: the bot was
	// uninstalled or the conversation is gone.
	ErrNotFound = errors.New("bot connector conversation not found")
	// ErrTooLarge is a 413 MessageSizeTooBig.
	ErrTooLarge = errors.New("bot connector rejected the message as too large")
)

// TokenSource returns a bearer token for the Bot Connector
// (scope https://api.botframework.com/.default). It has the method set of
// entra.TokenSource, so an entra source can be passed as is.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Config configures a Client. Zero values select the defaults.
type Config struct {
	// HTTPClient sends every request; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Tokens signs every request. Nil sends no Authorization header, which
	// only a local peer such as the Agents Playground accepts.
	Tokens TokenSource
	// Logger receives retry and give-up lines; nil discards them.
	Logger *slog.Logger
	// MaxAttempts counts requests per call, including the first (default 5).
	MaxAttempts int
	// MaxRetryWait caps a single wait between attempts (default 60 s).
	MaxRetryWait time.Duration
	// BaseBackoff is the first backoff without Retry-After (default 1 s).
	BaseBackoff time.Duration
	// Sleep waits between attempts and returns ctx.Err() when ctx ends
	// first. Nil uses a timer. Tests inject a recorder.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now reads the clock for Retry-After HTTP dates (default time.Now).
	Now func() time.Time
	// Jitter maps a backoff ceiling to the wait actually used (default: a
	// uniform random duration in [0, ceiling)).
	Jitter func(ceiling time.Duration) time.Duration
	// DisablePacing turns off the per-conversation send pacing, for a
	// local peer without Teams' limits.
	DisablePacing bool
}

// APIError is a Bot Connector response that was not a success.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is error.code from the body, for example BotNotInConversationRoster.
	Code string
	// Message is error.message from the body, shortened.
	Message string
	// RetryAfter is the wait the service asked for, zero when it sent none.
	RetryAfter time.Duration
}

// Client calls the Bot Connector REST API. It is safe for concurrent use.
type Client struct {
	httpClient   *http.Client
	tokens       TokenSource
	logger       *slog.Logger
	maxAttempts  int
	maxRetryWait time.Duration
	baseBackoff  time.Duration
	sleep        func(ctx context.Context, d time.Duration) error
	now          func() time.Time
	jitter       func(ceiling time.Duration) time.Duration
	pacer        *pacer
}

// New returns a Client with cfg's zero values replaced by the defaults.
func New(cfg Config) *Client {
	c := &Client{
		httpClient:   cfg.HTTPClient,
		tokens:       cfg.Tokens,
		logger:       cfg.Logger,
		maxAttempts:  cfg.MaxAttempts,
		maxRetryWait: cfg.MaxRetryWait,
		baseBackoff:  cfg.BaseBackoff,
		sleep:        cfg.Sleep,
		now:          cfg.Now,
		jitter:       cfg.Jitter,
	}
	if c.httpClient == nil {
		c.httpClient = http.DefaultClient
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	if c.maxRetryWait <= 0 {
		c.maxRetryWait = defaultMaxRetryWait
	}
	if c.baseBackoff <= 0 {
		c.baseBackoff = defaultBaseBackoff
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.jitter == nil {
		c.jitter = fullJitter
	}
	c.pacer = newPacer(teamsSendLimits)
	if cfg.DisablePacing {
		c.pacer = newPacer(nil)
	}
	return c
}

// SendToConversation posts a to the conversation and returns the id of the
// new activity. The id is empty when the service returns none, which Teams
// does for an activity with both text and attachments.
func (c *Client) SendToConversation(ctx context.Context, serviceURL, conversationID string, a schema.Activity) (string, error) {
	endpoint, err := activitiesURL(serviceURL, conversationID)
	if err != nil {
		return "", err
	}

	var resp schema.ResourceResponse
	if err := c.do(ctx, conversationKey(serviceURL, conversationID), http.MethodPost, endpoint, a, &resp); err != nil {
		return "", fmt.Errorf("send activity to conversation %s: %w", conversationID, err)
	}
	return resp.ID, nil
}

// ReplyToActivity posts a as a reply to the activity replyToID and returns
// the id of the new activity. In a channel, a conversation id ending in
// ";messageid=…" keeps the reply in that thread.
func (c *Client) ReplyToActivity(ctx context.Context, serviceURL, conversationID, replyToID string, a schema.Activity) (string, error) {
	endpoint, err := activityURL(serviceURL, conversationID, replyToID)
	if err != nil {
		return "", err
	}

	var resp schema.ResourceResponse
	if err := c.do(ctx, conversationKey(serviceURL, conversationID), http.MethodPost, endpoint, a, &resp); err != nil {
		return "", fmt.Errorf("reply to activity %s in conversation %s: %w", replyToID, conversationID, err)
	}
	return resp.ID, nil
}

// UpdateActivity replaces the activity activityID with a and returns the id
// the service reports for it.
func (c *Client) UpdateActivity(ctx context.Context, serviceURL, conversationID, activityID string, a schema.Activity) (string, error) {
	endpoint, err := activityURL(serviceURL, conversationID, activityID)
	if err != nil {
		return "", err
	}

	var resp schema.ResourceResponse
	if err := c.do(ctx, conversationKey(serviceURL, conversationID), http.MethodPut, endpoint, a, &resp); err != nil {
		return "", fmt.Errorf("update activity %s in conversation %s: %w", activityID, conversationID, err)
	}
	return resp.ID, nil
}

// CreateConversation starts a conversation, for example a new channel
// thread when params carries channelData.channel.id and an activity. The
// response holds the conversation id and, for a thread, the first
// activity's id.
func (c *Client) CreateConversation(ctx context.Context, serviceURL string, params schema.ConversationParameters) (schema.ConversationResourceResponse, error) {
	endpoint, err := conversationsURL(serviceURL)
	if err != nil {
		return schema.ConversationResourceResponse{}, err
	}

	var resp schema.ConversationResourceResponse
	// A new conversation has no id to pace by yet.
	if err := c.do(ctx, "", http.MethodPost, endpoint, params, &resp); err != nil {
		return schema.ConversationResourceResponse{}, fmt.Errorf("create conversation: %w", err)
	}
	return resp, nil
}

// Error formats the status, the service's code and its message.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bot connector returned HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

// Is matches ErrForbidden, ErrNotFound and ErrTooLarge by status code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	}
	return false
}

// do sends body as JSON with method to endpoint and decodes a success
// response into out. It is the client's only retry gate, and it paces
// every attempt, retries included, by conversation (empty: not paced).
func (c *Client) do(ctx context.Context, conversation, method, endpoint string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request body: %w", err)
	}

	var lastErr error
	for attempt := 1; attempt <= c.maxAttempts; attempt++ {
		if wait := c.pacer.reserve(conversation, c.now()); wait > 0 {
			c.logger.Debug("pacing bot connector request", "method", method, "wait", wait)
			if err := c.sleep(ctx, wait); err != nil {
				return fmt.Errorf("wait for the conversation's send limit: %w", err)
			}
		}
		result := c.attempt(ctx, method, endpoint, payload, out)
		if result.err == nil {
			return nil
		}
		lastErr = result.err
		if !result.retry || attempt == c.maxAttempts {
			break
		}

		wait := result.retryAfter
		if wait <= 0 {
			wait = c.jitter(c.backoffCeiling(attempt))
		}
		if wait > c.maxRetryWait {
			c.logger.Warn("bot connector retry wait exceeds the maximum, giving up",
				"method", method, "attempt", attempt, "wait", wait, "max_wait", c.maxRetryWait, "err", lastErr)
			return lastErr
		}

		c.logger.Warn("retrying bot connector request",
			"method", method, "attempt", attempt, "wait", wait, "reason", result.reason, "err", lastErr)
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("wait to retry: %w, after %w", err, lastErr)
		}
	}
	return lastErr
}

// attemptResult classifies one request: success (err nil), or a failure
// that is retried or not, with the reason logged for a retry.
type attemptResult struct {
	err        error
	retry      bool
	reason     string
	retryAfter time.Duration
}

// attempt sends one request and classifies its response.
func (c *Client) attempt(ctx context.Context, method, endpoint string, payload []byte, out any) attemptResult {
	req, err := http.NewRequestWithContext(ctx, method, endpoint, bytes.NewReader(payload))
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")

	if c.tokens != nil {
		token, err := c.tokens.Token(ctx)
		if err != nil {
			return attemptResult{err: fmt.Errorf("get bot connector token: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}

	resp, err := c.httpClient.Do(req)
	if err != nil {
		// A transport error may come after the service received a POST, so
		// a retry could post the message twice. Only a failed dial, where no
		// byte left this host, is retried.
		return attemptResult{err: fmt.Errorf("send request: %w", err), retry: isDialError(err), reason: "connection failed"}
	}
	defer drainAndClose(resp.Body)

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return attemptResult{err: decodeSuccess(resp, out)}
	}

	apiErr := decodeError(resp, c.now())
	retry, reason := classify(resp.StatusCode)
	return attemptResult{err: apiErr, retry: retry, reason: reason, retryAfter: apiErr.RetryAfter}
}

// decodeSuccess decodes a success body into out. An empty body (202, or a
// 200 without an id) leaves out unchanged.
func decodeSuccess(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of HTTP %d: %w", resp.StatusCode, err)
	}
	return nil
}

// decodeError builds an APIError from a failed response. The body is the
// Bot Framework ErrorResponse {"error":{"code","message"}} when the service
// produced it, and anything else (an HTML page, nothing) otherwise.
func decodeError(resp *http.Response, now time.Time) *APIError {
	apiErr := &APIError{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}

	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	var body schema.ErrorResponse
	if json.Unmarshal(data, &body) == nil {
		apiErr.Code = body.Error.Code
		apiErr.Message = shorten(body.Error.Message)
	}
	return apiErr
}

// shorten cuts s to maxErrorMessageChars runes.
func shorten(s string) string {
	runes := []rune(s)
	if len(runes) <= maxErrorMessageChars {
		return s
	}
	return string(runes[:maxErrorMessageChars]) + "…"
}

// drainAndClose reads what is left of body, bounded, so the connection can
// be reused, then closes it.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxResponseBytes))
	_ = body.Close()
}

// conversationsURL returns {serviceURL}/v3/conversations.
func conversationsURL(serviceURL string) (string, error) {
	base, err := baseURL(serviceURL)
	if err != nil {
		return "", err
	}
	return base + "/v3/conversations", nil
}

// activitiesURL returns {serviceURL}/v3/conversations/{id}/activities.
func activitiesURL(serviceURL, conversationID string) (string, error) {
	if conversationID == "" {
		return "", errors.New("build bot connector URL: missing conversation id")
	}
	conversations, err := conversationsURL(serviceURL)
	if err != nil {
		return "", err
	}
	return conversations + "/" + escapeSegment(conversationID) + "/activities", nil
}

// activityURL returns {serviceURL}/v3/conversations/{id}/activities/{activityID}.
func activityURL(serviceURL, conversationID, activityID string) (string, error) {
	if activityID == "" {
		return "", fmt.Errorf("build bot connector URL for conversation %s: missing activity id", conversationID)
	}
	activities, err := activitiesURL(serviceURL, conversationID)
	if err != nil {
		return "", err
	}
	return activities + "/" + escapeSegment(activityID), nil
}

// baseURL validates serviceURL and returns it without a trailing slash.
// The Bot Connector sends it with or without one
// (https://smba.trafficmanager.net/emea/ and https://…/teams).
func baseURL(serviceURL string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("parse service URL %q: %w", serviceURL, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("invalid service URL %q: want an absolute http or https URL", serviceURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("invalid service URL %q: want no user info, query or fragment", serviceURL)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// escapeSegment percent-encodes everything but RFC 3986 unreserved
// characters, as the JavaScript SDK's encodeURIComponent does for ids like
// "19:abc@thread.tacv2;messageid=123". url.PathEscape would leave ':', '@'
// and '=' as they are.
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if isUnreserved(ch) {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&0x0f])
	}
	return b.String()
}

func isUnreserved(ch byte) bool {
	switch {
	case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		return true
	case ch == '-', ch == '.', ch == '_', ch == '~':
		return true
	}
	return false
}
