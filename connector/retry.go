package connector

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// classify reports whether a failed status is retried, and why. The Teams
// rate-limit page lists 429, 412, 502 and 504 for retry
// (https://learn.microsoft.com/en-us/microsoftteams/platform/concepts/bots/rate-limit).
// 503 is retried too, because it means a temporary overload or maintenance
// (RFC 9110, section 15.6.4).
func classify(status int) (bool, string) {
	switch status {
	case http.StatusTooManyRequests:
		return true, "throttled"
	case http.StatusPreconditionFailed:
		return true, "precondition failed"
	case http.StatusBadGateway:
		return true, "bad gateway"
	case http.StatusServiceUnavailable:
		return true, "service unavailable"
	case http.StatusGatewayTimeout:
		return true, "gateway timeout"
	}
	return false, ""
}

// backoffCeiling returns the exponential backoff ceiling after attempt:
// baseBackoff doubled per earlier attempt, at most defaultMaxBackoff.
func (c *Client) backoffCeiling(attempt int) time.Duration {
	ceiling := c.baseBackoff
	for i := 1; i < attempt && ceiling < defaultMaxBackoff; i++ {
		ceiling *= 2
	}
	return min(ceiling, defaultMaxBackoff)
}

// parseRetryAfter reads Retry-After as delay seconds, fractions allowed
// because Microsoft services send them, or as an HTTP-date (RFC 9110,
// section 10.2.3). It returns zero for a missing, invalid or past value.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}

	if isDecimal(value) {
		seconds, err := strconv.ParseFloat(value, 64)
		if err != nil || seconds <= 0 {
			return 0
		}
		return time.Duration(seconds * float64(time.Second))
	}

	when, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	return max(when.Sub(now), 0)
}

// isDecimal reports whether s is digits with at most one decimal point, so
// that ParseFloat's wider syntax ("1e3", "-1", "Inf") is not accepted.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r == '.':
			dots++
		case r >= '0' && r <= '9':
			digits++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent.
func isDialError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// sleepContext waits for d or until ctx ends, whichever comes first.
func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// fullJitter returns a uniform random duration in [0, ceiling), so that
// bots throttled together do not retry together.
func fullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}
