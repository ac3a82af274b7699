package scanner

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10

	// maxRetryAfter only guards the conversion of a huge Retry-After into a
	// time.Duration. Below it the server's value is used as it is, and the
	// caller's context bounds the wait.
	maxRetryAfter = 24 * time.Hour
)

// retryAfterSeconds matches delay-seconds (RFC 9110, section 10.2.3) and the
// fractional seconds that Graph and SharePoint also send.
var retryAfterSeconds = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// AttemptsError is a Graph call whose last allowed attempt still failed with
// a retryable error. Err is that attempt's *GraphError or *NetworkError.
type AttemptsError struct {
	Attempts int
	Err      error
}

func (e *AttemptsError) Error() string {
	var graphErr *GraphError
	if errors.As(e.Err, &graphErr) {
		return fmt.Sprintf("HTTP %d after %s", graphErr.Status, attemptsText(e.Attempts))
	}
	var netErr *NetworkError
	if errors.As(e.Err, &netErr) {
		return fmt.Sprintf("network error after %s: %v", attemptsText(e.Attempts), netErr.Err)
	}
	return fmt.Sprintf("%v after %s", e.Err, attemptsText(e.Attempts))
}

func attemptsText(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func (e *AttemptsError) Unwrap() error { return e.Err }

// NetworkError is a request that got no complete HTTP response: the
// connection failed, the attempt timed out or the body broke off.
type NetworkError struct {
	Err error
}

func (e *NetworkError) Error() string { return "network error: " + e.Err.Error() }

func (e *NetworkError) Unwrap() error { return e.Err }

// verdict is the retry gate's classification of one failed attempt.
type verdict struct {
	retry bool
	// refreshToken requests one new token and an immediate retry (401).
	refreshToken bool
	// throttled marks a 429 or 503, which slow down the shared Pacer.
	throttled bool
	// reason is one line for the log, for example "HTTP 429 throttled".
	reason string
	// retryAfter is the server's Retry-After, valid when hasRetryAfter.
	retryAfter    time.Duration
	hasRetryAfter bool
}

// classify decides whether a failed attempt is worth repeating. status is 0
// when err reports that no response came.
func classify(status int, header http.Header, err error, now time.Time) verdict {
	if err != nil {
		// A certificate the client does not trust fails the same way on
		// every attempt, so retrying only delays the error.
		var unknownAuthority x509.UnknownAuthorityError
		var invalidCert x509.CertificateInvalidError
		var wrongHost x509.HostnameError
		if errors.As(err, &unknownAuthority) || errors.As(err, &invalidCert) || errors.As(err, &wrongHost) {
			return verdict{reason: "TLS certificate error: " + err.Error()}
		}
		return verdict{retry: true, reason: "network error: " + err.Error()}
	}

	v := verdict{reason: fmt.Sprintf("HTTP %d", status)}
	switch status {
	case http.StatusUnauthorized:
		v.refreshToken = true
		v.reason += " unauthorized: the token may have expired early or been revoked"
	case http.StatusTooManyRequests:
		v.retry, v.throttled = true, true
		v.reason += " throttled"
	case http.StatusServiceUnavailable:
		// SharePoint throttles with 503 as well as 429 ("Avoid getting
		// throttled or blocked in SharePoint Online").
		v.retry, v.throttled = true, true
		v.reason += " service unavailable or throttled"
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		v.retry = true
		v.reason += " server error"
	case 509:
		// SharePoint's "bandwidth limit exceeded", which rclone's OneDrive
		// backend also retries.
		v.retry = true
		v.reason += " bandwidth limit exceeded"
	}
	if v.retry {
		v.retryAfter, v.hasRetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	}
	return v
}

// parseRetryAfter reads Retry-After as seconds, fractional seconds or an
// HTTP-date. A date in the past means no wait.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if retryAfterSeconds.MatchString(value) {
		seconds, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, false
		}
		if seconds >= maxRetryAfter.Seconds() {
			return maxRetryAfter, true
		}
		return time.Duration(seconds * float64(time.Second)), true
	}
	date, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return min(max(date.Sub(now), 0), maxRetryAfter), true
}

// backoff chooses the wait before a retry when the server sent none:
// exponential with full jitter, a random wait in [0, min(max, base*2^(n-1))).
type backoff struct {
	base, max time.Duration
	jitter    func() float64
}

// wait returns the pause after failed attempt n (counted from 1). The
// server's Retry-After, when present, always wins.
func (b backoff) wait(n int, v verdict) time.Duration {
	if v.hasRetryAfter {
		return v.retryAfter
	}
	ceiling := float64(b.base) * math.Pow(2, float64(n-1))
	ceiling = min(ceiling, float64(b.max))
	return time.Duration(b.jitter() * ceiling)
}

// Hooks receives the retry gate's events, for example to count them as
// metrics. Calls come from several goroutines at once and must return
// quickly.
type Hooks interface {
	// Throttled is called for each answer, a whole response or one item of
	// a JSON batch, that Graph throttled with 429 or 503.
	Throttled()
	// Retried is called each time a request or batch item is sent again.
	Retried()
}

// noHooks is the Hooks of a client configured without any.
type noHooks struct{}

func (noHooks) Throttled() {}
func (noHooks) Retried()   {}

func hooksOrNone(h Hooks) Hooks {
	if h == nil {
		return noHooks{}
	}
	return h
}

// retryGate is the single place that decides how a Graph request is
// repeated: it classifies each attempt, refreshes the token once after a
// 401, waits for the backoff and the shared pacer, and stops when the
// context ends.
type retryGate struct {
	maxAttempts    int
	attemptTimeout time.Duration
	backoff        backoff
	pacer          *Pacer
	hooks          Hooks
	now            func() time.Time
	sleep          func(ctx context.Context, d time.Duration) error
}

// attemptResult is one request's response, or err when none came. A
// permanent error (an invalid URL, an oversized body) is not retried.
type attemptResult struct {
	status    int
	header    http.Header
	body      []byte
	err       error
	permanent bool
}

// get sends GET rawURL for g until it succeeds, fails for good or uses its
// last attempt. It returns the 2xx body and the number of requests made.
func (r *retryGate) get(ctx context.Context, g *GraphClient, logger *slog.Logger, rawURL string) ([]byte, int, error) {
	return r.do(ctx, g, logger, graphRequest{method: http.MethodGet, url: rawURL, weight: 1})
}

// graphRequest is one HTTP request to Graph. weight is how many Graph
// requests it carries for the pacer: 1, or the size of a JSON batch.
type graphRequest struct {
	method string
	url    string
	body   []byte
	weight int
}

// do sends req for g until it succeeds, fails for good or uses its last
// attempt. It returns the 2xx body and the number of requests made.
func (r *retryGate) do(ctx context.Context, g *GraphClient, logger *slog.Logger, req graphRequest) ([]byte, int, error) {
	refreshed := false
	previousReason := ""
	var backoffWait time.Duration

	for attempt := 1; attempt <= r.maxAttempts; attempt++ {
		if wait := max(backoffWait, r.pacer.reserve(r.now(), req.weight)); wait > 0 {
			if err := r.sleep(ctx, wait); err != nil {
				return nil, attempt - 1, err
			}
		}
		backoffWait = 0

		token, err := g.tokens.Token(ctx)
		if err != nil {
			return nil, attempt - 1, fmt.Errorf("get token: %w", err)
		}

		res := r.send(ctx, g, req, token)
		if ctx.Err() != nil {
			return nil, attempt, ctx.Err()
		}
		if res.permanent {
			return nil, attempt, res.err
		}
		if res.header != nil {
			r.pacer.rateLimited(r.now(), res.header)
		}
		if res.err == nil && res.status >= 200 && res.status <= 299 {
			if req.weight == 1 {
				// A batch reports its successes item by item.
				r.pacer.succeeded(r.now(), 1)
			}
			return res.body, attempt, nil
		}

		v := classify(res.status, res.header, res.err, r.now())
		if v.throttled {
			r.pacer.throttled(r.now(), v.retryAfter)
			r.hooks.Throttled()
		}
		failure := attemptError(res)
		if v.refreshToken && !refreshed && attempt < r.maxAttempts {
			if invalidator, ok := g.tokens.(tokenInvalidator); ok {
				refreshed = true
				invalidator.Invalidate(token)
				r.hooks.Retried()
				logger.Info("refresh token and retry", "status", res.status, "attempt", attempt)
				continue
			}
		}
		if !v.retry {
			return nil, attempt, failure
		}
		if attempt == r.maxAttempts {
			return nil, attempt, &AttemptsError{Attempts: attempt, Err: failure}
		}

		backoffWait = r.backoff.wait(attempt, v)
		r.hooks.Retried()
		level := slog.LevelWarn
		if v.reason == previousReason {
			level = slog.LevelDebug
		}
		logger.Log(ctx, level, "retry graph request", "status", res.status, "attempt", attempt, "wait", backoffWait, "reason", v.reason)
		previousReason = v.reason
	}
	return nil, r.maxAttempts, fmt.Errorf("no attempt allowed: max attempts is %d", r.maxAttempts)
}

// send makes one request, bounded by attemptTimeout, and reads its body.
func (r *retryGate) send(ctx context.Context, g *GraphClient, gr graphRequest, token string) attemptResult {
	ctx, cancel := context.WithTimeout(ctx, r.attemptTimeout)
	defer cancel()

	var reqBody io.Reader
	if gr.body != nil {
		reqBody = bytes.NewReader(gr.body)
	}
	req, err := http.NewRequestWithContext(ctx, gr.method, gr.url, reqBody)
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w", err), permanent: true}
	}
	if gr.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", g.userAgent)

	resp, err := g.httpClient.Do(req)
	if err != nil {
		return attemptResult{err: unwrapURLError(err)}
	}
	defer resp.Body.Close()

	limit := int64(maxErrorBody)
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		limit = maxBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return attemptResult{err: fmt.Errorf("read HTTP %d body: %w", resp.StatusCode, err)}
	}
	if int64(len(body)) > limit {
		if limit == maxBody {
			return attemptResult{err: fmt.Errorf("HTTP %d body exceeds %d bytes", resp.StatusCode, limit), permanent: true}
		}
		body = body[:limit]
	}
	return attemptResult{status: resp.StatusCode, header: resp.Header, body: body}
}

// attemptError turns a failed attempt into the error that get returns.
func attemptError(res attemptResult) error {
	if res.err != nil {
		return &NetworkError{Err: res.err}
	}
	return parseGraphError(res.status, res.header, res.body)
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the method
// and the whole URL, and keeps the cause.
func unwrapURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// sleepContext waits d, or less when ctx ends, and then returns ctx's error.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
