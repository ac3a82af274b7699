package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

// threadID is a Teams channel thread conversation id, with every character
// that needs escaping in a path segment.
const threadID = "19:abc@thread.tacv2;messageid=1796413366245"

// cannedResponse is one scripted response of the fake connector.
type cannedResponse struct {
	status     int
	body       string
	retryAfter string
}

// recordedRequest is what the fake connector received.
type recordedRequest struct {
	method        string
	escapedPath   string
	authorization string
	hasAuth       bool
	body          []byte
}

// fakeConnector responds with its script in order, repeating the last entry,
// and records every request. It is safe for concurrent use.
type fakeConnector struct {
	mu       sync.Mutex
	script   []cannedResponse
	requests []recordedRequest
}

func (f *fakeConnector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)

	f.mu.Lock()
	_, hasAuth := r.Header["Authorization"]
	f.requests = append(f.requests, recordedRequest{
		method:        r.Method,
		escapedPath:   r.URL.EscapedPath(),
		authorization: r.Header.Get("Authorization"),
		hasAuth:       hasAuth,
		body:          body,
	})
	answer := f.script[min(len(f.requests), len(f.script))-1]
	f.mu.Unlock()

	if answer.retryAfter != "" {
		w.Header().Set("Retry-After", answer.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(answer.status)
	_, _ = io.WriteString(w, answer.body)
}

func (f *fakeConnector) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

// sleepRecorder records the waits a Client requests and returns at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleepRecorder) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

type staticTokens string

func (s staticTokens) Token(context.Context) (string, error) { return string(s), nil }

type failingTokens struct{}

func (failingTokens) Token(context.Context) (string, error) {
	return "", errors.New("token endpoint returned HTTP 401")
}

var fixedNow = time.Date(2026, 12, 4, 19, 42, 0, 0, time.UTC)

// newTestClient starts a fake connector with script and a Client whose
// waits are recorded and whose jitter is the identity.
func newTestClient(t *testing.T, script []cannedResponse, cfg Config) (*Client, *fakeConnector, *sleepRecorder, string) {
	t.Helper()
	fake := &fakeConnector{script: script}
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)

	sleeper := &sleepRecorder{}
	cfg.HTTPClient = server.Client()
	if cfg.Sleep == nil {
		cfg.Sleep = sleeper.sleep
	}
	cfg.Now = func() time.Time { return fixedNow }
	cfg.Jitter = func(ceiling time.Duration) time.Duration { return ceiling }
	return New(cfg), fake, sleeper, server.URL
}

func messageActivity() schema.Activity {
	return schema.Activity{Type: schema.Message, Text: "hello"}
}

func TestClientCallsReturnIDs(t *testing.T) {
	tests := []struct {
		name     string
		response string
		wantID   string
		call     func(c *Client, serviceURL string) (string, error)
		method   string
		path     string
	}{
		{
			name:     "send to conversation",
			response: `{"id":"1796413360383"}`,
			wantID:   "1796413360383",
			call: func(c *Client, serviceURL string) (string, error) {
				return c.SendToConversation(context.Background(), serviceURL, threadID, messageActivity())
			},
			method: http.MethodPost,
			path:   "/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D1796413366245/activities",
		},
		{
			name:     "reply to activity",
			response: `{"id":"1796413360384"}`,
			wantID:   "1796413360384",
			call: func(c *Client, serviceURL string) (string, error) {
				return c.ReplyToActivity(context.Background(), serviceURL, threadID, "1:abc=", messageActivity())
			},
			method: http.MethodPost,
			path:   "/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D1796413366245/activities/1%3Aabc%3D",
		},
		{
			name:     "update activity",
			response: `{"id":"1796413360383"}`,
			wantID:   "1796413360383",
			call: func(c *Client, serviceURL string) (string, error) {
				return c.UpdateActivity(context.Background(), serviceURL, "a:b", "1796413360383", messageActivity())
			},
			method: http.MethodPut,
			path:   "/v3/conversations/a%3Ab/activities/1796413360383",
		},
		{
			name:     "create conversation",
			response: `{"id":"team-id;messageid=1796413362024","activityId":"1796413362024"}`,
			wantID:   "team-id;messageid=1796413362024|1796413362024",
			call: func(c *Client, serviceURL string) (string, error) {
				resp, err := c.CreateConversation(context.Background(), serviceURL, schema.ConversationParameters{IsGroup: true, Activity: messageActivity()})
				return resp.ID + "|" + resp.ActivityID, err
			},
			method: http.MethodPost,
			path:   "/v3/conversations",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, suffix := range []string{"", "/", "/teams/"} {
				client, fake, _, serviceURL := newTestClient(t, []cannedResponse{{status: http.StatusCreated, body: tt.response}}, Config{})

				id, err := tt.call(client, serviceURL+suffix)
				if err != nil {
					t.Fatalf("service URL suffix %q: call failed: %v", suffix, err)
				}

				if id != tt.wantID {
					t.Errorf("service URL suffix %q: id = %q, want %q", suffix, id, tt.wantID)
				}

				requests := fake.recorded()
				if len(requests) != 1 {
					t.Fatalf("service URL suffix %q: got %d requests, want 1", suffix, len(requests))
				}
				wantPath := strings.TrimSuffix(suffix, "/") + tt.path
				if requests[0].method != tt.method {
					t.Errorf("method = %s, want %s", requests[0].method, tt.method)
				}
				if requests[0].escapedPath != wantPath {
					t.Errorf("path = %s, want %s", requests[0].escapedPath, wantPath)
				}
			}
		})
	}
}

func TestClientSendsActivityJSON(t *testing.T) {
	client, fake, _, serviceURL := newTestClient(t, []cannedResponse{{status: http.StatusOK, body: `{"id":"1"}`}}, Config{})
	a := schema.Activity{
		Type:        schema.Message,
		Attachments: []schema.Attachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: map[string]any{"type": "AdaptiveCard"}}},
	}

	if _, err := client.SendToConversation(context.Background(), serviceURL, "conv", a); err != nil {
		t.Fatalf("send failed: %v", err)
	}

	var got schema.Activity
	if err := json.Unmarshal(fake.recorded()[0].body, &got); err != nil {
		t.Fatalf("request body is not an activity: %v", err)
	}
	if got.Type != schema.Message {
		t.Errorf("type = %q, want message", got.Type)
	}
	if len(got.Attachments) != 1 || got.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("attachments = %+v, want one Adaptive Card", got.Attachments)
	}
}

func TestClientEmptySuccessBody(t *testing.T) {
	client, _, _, serviceURL := newTestClient(t, []cannedResponse{{status: http.StatusAccepted}}, Config{})

	id, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity())
	if err != nil {
		t.Fatalf("send failed: %v", err)
	}
	if id != "" {
		t.Errorf("id = %q, want empty", id)
	}
}

func TestClientAuthorizationHeader(t *testing.T) {
	tests := []struct {
		name    string
		tokens  TokenSource
		wantHas bool
		want    string
	}{
		{name: "no token source", tokens: nil, wantHas: false},
		{name: "static token", tokens: staticTokens("x"), wantHas: true, want: "Bearer x"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, fake, _, serviceURL := newTestClient(t, []cannedResponse{{status: http.StatusCreated, body: `{"id":"1"}`}}, Config{Tokens: tt.tokens})

			if _, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity()); err != nil {
				t.Fatalf("send failed: %v", err)
			}

			got := fake.recorded()[0]
			if got.hasAuth != tt.wantHas {
				t.Errorf("Authorization header present = %v, want %v", got.hasAuth, tt.wantHas)
			}
			if got.authorization != tt.want {
				t.Errorf("Authorization = %q, want %q", got.authorization, tt.want)
			}
		})
	}
}

func TestClientTokenErrorSendsNothing(t *testing.T) {
	client, fake, _, serviceURL := newTestClient(t, []cannedResponse{{status: http.StatusCreated, body: `{"id":"1"}`}}, Config{Tokens: failingTokens{}})

	_, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity())
	if err == nil {
		t.Fatal("send succeeded, want a token error")
	}
	if n := len(fake.recorded()); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
}

func TestClientRetries(t *testing.T) {
	tests := []struct {
		name      string
		script    []cannedResponse
		wantWaits []time.Duration
	}{
		{
			name: "retry-after seconds and HTTP-date",
			script: []cannedResponse{
				{status: http.StatusTooManyRequests, retryAfter: "2", body: `{"error":{"code":"Throttled","message":"slow down"}}`},
				{status: http.StatusServiceUnavailable, retryAfter: fixedNow.Add(7 * time.Second).Format(http.TimeFormat)},
				{status: http.StatusCreated, body: `{"id":"42"}`},
			},
			wantWaits: []time.Duration{2 * time.Second, 7 * time.Second},
		},
		{
			name: "fractional retry-after",
			script: []cannedResponse{
				{status: http.StatusTooManyRequests, retryAfter: "1.5"},
				{status: http.StatusCreated, body: `{"id":"42"}`},
			},
			wantWaits: []time.Duration{1500 * time.Millisecond},
		},
		{
			name: "exponential backoff without retry-after",
			script: []cannedResponse{
				{status: http.StatusBadGateway},
				{status: http.StatusGatewayTimeout},
				{status: http.StatusPreconditionFailed},
				{status: http.StatusCreated, body: `{"id":"42"}`},
			},
			wantWaits: []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, fake, sleeper, serviceURL := newTestClient(t, tt.script, Config{})

			id, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity())
			if err != nil {
				t.Fatalf("send failed: %v", err)
			}
			if id != "42" {
				t.Errorf("id = %q, want 42", id)
			}
			if n := len(fake.recorded()); n != len(tt.script) {
				t.Errorf("got %d requests, want %d", n, len(tt.script))
			}
			if got := sleeper.recorded(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
		})
	}
}

func TestClientRetryLimits(t *testing.T) {
	tests := []struct {
		name         string
		script       []cannedResponse
		wantRequests int
		wantStatus   int
	}{
		{
			name:         "max attempts",
			script:       []cannedResponse{{status: http.StatusTooManyRequests, retryAfter: "1"}},
			wantRequests: 3,
			wantStatus:   http.StatusTooManyRequests,
		},
		{
			name:         "retry-after above max wait",
			script:       []cannedResponse{{status: http.StatusTooManyRequests, retryAfter: "3600"}},
			wantRequests: 1,
			wantStatus:   http.StatusTooManyRequests,
		},
		{
			name:         "bad request is not retried",
			script:       []cannedResponse{{status: http.StatusBadRequest, body: `{"error":{"code":"BadArgument","message":"bad"}}`}},
			wantRequests: 1,
			wantStatus:   http.StatusBadRequest,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, fake, _, serviceURL := newTestClient(t, tt.script, Config{MaxAttempts: 3})

			_, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity())

			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an *APIError", err)
			}
			if apiErr.Status != tt.wantStatus {
				t.Errorf("status = %d, want %d", apiErr.Status, tt.wantStatus)
			}
			if n := len(fake.recorded()); n != tt.wantRequests {
				t.Errorf("got %d requests, want %d", n, tt.wantRequests)
			}
		})
	}
}

func TestClientContextCancelsWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelThenSleep := func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleepContext(ctx, d)
	}
	client, fake, _, serviceURL := newTestClient(t, []cannedResponse{{status: http.StatusServiceUnavailable, retryAfter: "30"}}, Config{Sleep: cancelThenSleep})

	_, err := client.SendToConversation(ctx, serviceURL, "conv", messageActivity())

	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Errorf("error = %v, want it to wrap the 503", err)
	}
	if n := len(fake.recorded()); n != 1 {
		t.Errorf("got %d requests, want 1", n)
	}
}

func TestClientDialErrorRetried(t *testing.T) {
	server := httptest.NewServer(http.NotFoundHandler())
	serviceURL := server.URL
	server.Close()
	sleeper := &sleepRecorder{}
	client := New(Config{MaxAttempts: 3, Sleep: sleeper.sleep, Jitter: func(d time.Duration) time.Duration { return d }})

	_, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity())

	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	if n := len(sleeper.recorded()); n != 2 {
		t.Errorf("got %d waits, want 2 (3 attempts)", n)
	}
}

func TestClientTypedErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode string
		target   error
	}{
		{name: "not in roster", status: http.StatusForbidden, body: `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`, wantCode: "BotNotInConversationRoster", target: ErrForbidden},
		{name: "blocked by user", status: http.StatusForbidden, body: `{"error":{"code":"ConversationBlockedByUser","message":"User blocked the conversation with the bot."}}`, wantCode: "ConversationBlockedByUser", target: ErrForbidden},
		{name: "disabled by admin", status: http.StatusForbidden, body: `{"error":{"code":"BotDisabledByAdmin","message":"The tenant admin disabled this bot"}}`, wantCode: "BotDisabledByAdmin", target: ErrForbidden},
		{name: "conversation not found", status: http.StatusNotFound, body: `{"error":{"code":"ConversationNotFound","message":"Conversation not found."}}`, wantCode: "ConversationNotFound", target: ErrNotFound},
		{name: "message too big", status: http.StatusRequestEntityTooLarge, body: `{"error":{"code":"MessageSizeTooBig","message":"Message size too large"}}`, wantCode: "MessageSizeTooBig", target: ErrTooLarge},
		{name: "html error page", status: http.StatusNotFound, body: `<html>not found</html>`, wantCode: "", target: ErrNotFound},
	}
	sentinels := []error{ErrForbidden, ErrNotFound, ErrTooLarge}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, fake, _, serviceURL := newTestClient(t, []cannedResponse{{status: tt.status, body: tt.body}}, Config{})

			_, err := client.ReplyToActivity(context.Background(), serviceURL, "conv", "1", messageActivity())

			for _, sentinel := range sentinels {
				if got, want := errors.Is(err, sentinel), sentinel == tt.target; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v (err: %v)", sentinel, got, want, err)
				}
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an *APIError", err)
			}
			if apiErr.Status != tt.status || apiErr.Code != tt.wantCode {
				t.Errorf("APIError = {%d %q}, want {%d %q}", apiErr.Status, apiErr.Code, tt.status, tt.wantCode)
			}
			if n := len(fake.recorded()); n != 1 {
				t.Errorf("got %d requests, want 1", n)
			}
		})
	}
}

func TestClientNeverLogsToken(t *testing.T) {
	const token = "secret-token-value"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	script := []cannedResponse{
		{status: http.StatusTooManyRequests, retryAfter: "1"},
		{status: http.StatusForbidden, body: `{"error":{"code":"BotDisabledByAdmin","message":"disabled"}}`},
	}
	client, _, _, serviceURL := newTestClient(t, script, Config{Tokens: staticTokens(token), Logger: logger})

	_, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity())

	if err == nil {
		t.Fatal("send succeeded, want a 403")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error contains the token: %v", err)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry was logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("logs contain the token: %s", logs.String())
	}
}

func TestClientRejectsInvalidServiceURL(t *testing.T) {
	tests := []string{"", "smba.trafficmanager.net/emea", "ftp://example.invalid/", "https://user:pw@example.invalid/", "https://example.invalid/?a=b"}
	client := New(Config{})

	for _, serviceURL := range tests {
		t.Run(serviceURL, func(t *testing.T) {
			if _, err := client.SendToConversation(context.Background(), serviceURL, "conv", messageActivity()); err == nil {
				t.Errorf("service URL %q accepted", serviceURL)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{value: "", want: 0},
		{value: "2", want: 2 * time.Second},
		{value: " 3 ", want: 3 * time.Second},
		{value: "0.25", want: 250 * time.Millisecond},
		{value: "0", want: 0},
		{value: "-1", want: 0},
		{value: "1e3", want: 0},
		{value: "soon", want: 0},
		{value: fixedNow.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{value: fixedNow.Add(-time.Minute).Format(http.TimeFormat), want: 0},
	}

	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if got := parseRetryAfter(tt.value, fixedNow); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestBackoffCeilingCapped(t *testing.T) {
	client := New(Config{BaseBackoff: time.Second})
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}

	for i, w := range want {
		if got := client.backoffCeiling(i + 1); got != w {
			t.Errorf("backoffCeiling(%d) = %v, want %v", i+1, got, w)
		}
	}
}
