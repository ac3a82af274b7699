package simtenant

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// faultSeed makes the fault injector pick the same requests in every run
// with the same request order.
const faultSeed = 0x5eed_fa17

// tokenBucket is Graph's simulated throttle: rate tokens per second refill a
// bucket of burst tokens, and each request takes one. A request that finds
// the bucket empty is rejected and takes nothing.
type tokenBucket struct {
	rate       float64
	burst      float64
	retryAfter time.Duration
	tokens     float64
	last       time.Time
}

// configure sets a new rate and fills the bucket. A rate of 0 or less turns
// the throttle off.
func (b *tokenBucket) configure(rate float64, burst int, retryAfter time.Duration, now time.Time) {
	b.rate = max(rate, 0)
	b.burst = float64(max(burst, 1))
	b.retryAfter = max(retryAfter, 0)
	b.tokens = b.burst
	b.last = now
}

// take reports whether a request at now may pass; when it may not, wait is
// the Retry-After to send.
func (b *tokenBucket) take(now time.Time) (ok bool, wait time.Duration) {
	if b.rate == 0 {
		return true, 0
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if b.retryAfter > 0 {
		return false, b.retryAfter
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// formatRetryAfter writes a wait as seconds with at most three decimals,
// rounded up so that a client that honours it finds a token. Graph's
// Retry-After is in seconds and may be fractional.
func formatRetryAfter(wait time.Duration) string {
	seconds := math.Ceil(wait.Seconds()*1000) / 1000
	return strconv.FormatFloat(max(seconds, 0.001), 'f', -1, 64)
}

// faultInjector fails a fraction of drive requests with one status.
type faultInjector struct {
	fraction float64
	status   int
	rng      *rand.Rand
}

func newFaultInjector() faultInjector {
	return faultInjector{rng: rand.New(rand.NewPCG(faultSeed, faultSeed))}
}

func (f *faultInjector) configure(fraction float64, status int) {
	f.fraction = min(max(fraction, 0), 1)
	if status != http.StatusInternalServerError {
		status = http.StatusServiceUnavailable
	}
	f.status = status
}

// pick returns the status to fail with, or 0 to respond normally.
func (f *faultInjector) pick() int {
	if f.fraction == 0 || f.rng.Float64() >= f.fraction {
		return 0
	}
	return f.status
}

// wait blocks for d or until ctx ends, and reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
