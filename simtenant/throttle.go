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

// Resource units that SharePoint charges per request ("Avoid getting
// throttled or blocked in SharePoint Online"): a single-item GET costs 1, a
// list 2.
const (
	costSingleItem = 1
	costList       = 2
)

// budgetWindow is the window of SharePoint's resource-unit budget per app
// and tenant, which is set per minute.
const budgetWindow = time.Minute

// budgetWarnShare is the share of the budget after which SharePoint sends
// the RateLimit headers: 80%.
const budgetWarnShare = 0.8

// resourceBudget is SharePoint's per-minute resource-unit budget, modelled
// as fixed one-minute windows. A request that would go over it is rejected
// until the window ends.
type resourceBudget struct {
	limit int
	start time.Time
	used  int
}

func (b *resourceBudget) configure(perMinute int, now time.Time) {
	b.limit = max(perMinute, 0)
	b.start = now
	b.used = 0
}

// takeCost charges cost units at now, or returns the wait until the window
// ends when they do not fit. Rejected requests are charged too, because
// SharePoint counts throttled requests against the budget.
func (b *resourceBudget) takeCost(now time.Time, cost float64) (ok bool, wait time.Duration) {
	if b.limit == 0 {
		return true, 0
	}
	b.roll(now)
	fits := b.used+int(cost) <= b.limit
	b.used = min(b.used+int(cost), b.limit)
	if fits {
		return true, 0
	}
	return false, b.start.Add(budgetWindow).Sub(now)
}

// writeHeaders adds RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// (seconds to the end of the window) once 80% of the budget is used.
func (b *resourceBudget) writeHeaders(h http.Header, now time.Time) {
	if b.limit == 0 {
		return
	}
	b.roll(now)
	if float64(b.used) < budgetWarnShare*float64(b.limit) {
		return
	}
	reset := int(math.Ceil(b.start.Add(budgetWindow).Sub(now).Seconds()))
	h.Set("RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(b.limit-b.used))
	h.Set("RateLimit-Reset", strconv.Itoa(max(reset, 1)))
}

// roll starts a new window when the current one has ended.
func (b *resourceBudget) roll(now time.Time) {
	if elapsed := now.Sub(b.start); elapsed >= budgetWindow {
		b.start = b.start.Add(elapsed.Truncate(budgetWindow))
		b.used = 0
	}
}

// concurrencyCap rejects a request that arrives while limit requests are in
// flight, as Graph does for too many concurrent requests from one app.
type concurrencyCap struct {
	limit      int
	inflight   int
	retryAfter time.Duration
}

func (c *concurrencyCap) configure(limit int, retryAfter time.Duration) {
	c.limit = max(limit, 0)
	c.retryAfter = max(retryAfter, time.Millisecond)
}

// enter admits a request, or returns false and the Retry-After to send.
func (c *concurrencyCap) enter() (bool, time.Duration) {
	if c.limit > 0 && c.inflight >= c.limit {
		return false, c.retryAfter
	}
	c.inflight++
	return true, 0
}

func (c *concurrencyCap) leave() { c.inflight-- }

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
