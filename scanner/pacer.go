package scanner

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// goodputWindow is how far back the pacer counts successful requests to
	// estimate what Graph currently accepts. It is also the shortest time
	// between two rate cuts, because the responses to requests already in
	// flight report the same overload as the one that caused the first cut.
	goodputWindow = time.Second
	// goodputSlots divides goodputWindow into counting slots.
	goodputSlots = 10

	// creepPerSuccess is how much each successful request raises the rate,
	// in requests per second. At a rate r, r successes a second raise it by
	// r*creepPerSuccess per second, so the rate grows by about 5% a second
	// until Graph throttles again.
	creepPerSuccess = 0.05

	// minRate keeps a paced tenant from stalling when a header reports an
	// almost empty budget, in requests per second.
	minRate = 0.5
)

// Pacer spaces the Graph requests of one tenant. Share one Pacer between
// every GraphClient that calls Graph for the same tenant (the scan, owner and
// group checks), because Graph and SharePoint throttle per app and tenant.
// It is safe for concurrent use.
//
// An unthrottled Pacer adds no wait. A 429 or 503 with Retry-After pauses
// every request until the server's time has passed. It also cuts the rate,
// at most once a second, to half the rate sent in the last second. The cut
// never goes below the requests that Graph accepted in that second (the
// goodput). Each success lets the rate creep back up, so a throttled tenant
// converges to its budget instead of storming it. RateLimit-Remaining
// and RateLimit-Reset, which SharePoint sends when an app nears its
// resource-unit budget, cap the rate at what remains. Rates count requests
// inside a JSON batch one by one, because Graph throttles each of them.
type Pacer struct {
	mu sync.Mutex
	// rate is the allowed requests per second, 0 when not limited.
	rate float64
	// next is the earliest start of the next request under rate.
	next time.Time
	// resume is the end of the last Retry-After pause.
	resume time.Time
	// cutAt is when rate was last cut.
	cutAt time.Time

	// sent and accepted count the requests started and the successes over
	// the last goodputWindow.
	sent, accepted window
}

// window counts events over the last goodputWindow in goodputSlots slots.
type window struct {
	slots   [goodputSlots]int
	current int
	// start is the start of slots[current].
	start time.Time
}

// add counts n events at now.
func (w *window) add(now time.Time, n int) {
	w.advance(now)
	w.slots[w.current] += n
}

// perSecond returns the events of the last goodputWindow per second.
func (w *window) perSecond(now time.Time) float64 {
	w.advance(now)
	total := 0
	for _, n := range w.slots {
		total += n
	}
	return float64(total) / goodputWindow.Seconds()
}

// advance moves the current slot to now, clearing the slots it passes.
func (w *window) advance(now time.Time) {
	slot := goodputWindow / goodputSlots
	if w.start.IsZero() {
		w.start = now
		return
	}
	for passed := 0; now.Sub(w.start) >= slot; passed++ {
		if passed >= goodputSlots {
			w.slots = [goodputSlots]int{}
			w.start = now
			return
		}
		w.current = (w.current + 1) % goodputSlots
		w.slots[w.current] = 0
		w.start = w.start.Add(slot)
	}
}

// NewPacer returns a Pacer that does not limit requests until Graph
// throttles.
func NewPacer() *Pacer {
	return &Pacer{}
}

// Rate returns the current limit in requests per second, 0 when requests are
// not limited.
func (p *Pacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// reserve books the start of a request that carries n Graph requests (n is
// above 1 for a JSON batch) and returns how long the caller must wait for it.
func (p *Pacer) reserve(now time.Time, n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()

	start := now
	if p.resume.After(start) {
		start = p.resume
	}
	if p.rate > 0 {
		if p.next.After(start) {
			start = p.next
		}
		p.next = start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	}
	p.sent.add(start, n)
	return start.Sub(now)
}

// throttled records a 429 or 503 received at now whose Retry-After is d
// (zero when the server sent none).
func (p *Pacer) throttled(now time.Time, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if resume := now.Add(d); resume.After(p.resume) {
		p.resume = resume
	}
	if !p.cutAt.IsZero() && now.Sub(p.cutAt) < goodputWindow {
		return
	}
	cut := max(p.sent.perSecond(now)/2, p.accepted.perSecond(now))
	if cut == 0 {
		// Nothing was sent or accepted lately, so there is no rate to cut:
		// the Retry-After pause alone slows the tenant down.
		return
	}
	if p.rate == 0 || cut < p.rate {
		p.rate = max(cut, minRate)
	}
	p.cutAt = now
}

// succeeded records n requests that Graph accepted at now.
func (p *Pacer) succeeded(now time.Time, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.accepted.add(now, n)
	if p.rate == 0 {
		return
	}
	p.rate += creepPerSuccess * float64(n)
	// Graph accepted this many requests in the last second, so it accepts at
	// least that rate. This also repairs a cut made before every response of
	// the same burst had arrived.
	p.rate = max(p.rate, p.accepted.perSecond(now))
}

// rateLimited applies the RateLimit-Remaining and RateLimit-Reset headers
// of a response received at now, when both are present.
func (p *Pacer) rateLimited(now time.Time, header http.Header) {
	remaining, reset, ok := parseRateLimit(header)
	if !ok {
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	if remaining == 0 {
		if resume := now.Add(reset); resume.After(p.resume) {
			p.resume = resume
		}
		return
	}
	allowed := max(float64(remaining)/max(reset.Seconds(), 1), minRate)
	if p.rate == 0 || allowed < p.rate {
		p.rate = allowed
	}
}

// parseRateLimit reads RateLimit-Remaining and RateLimit-Reset (seconds), the
// headers of the IETF draft "RateLimit header fields for HTTP" that
// SharePoint sends when an app has used 80% of its resource units ("Avoid
// getting throttled or blocked in SharePoint Online").
func parseRateLimit(header http.Header) (remaining int, reset time.Duration, ok bool) {
	rawRemaining := strings.TrimSpace(header.Get("RateLimit-Remaining"))
	rawReset := strings.TrimSpace(header.Get("RateLimit-Reset"))
	if rawRemaining == "" || rawReset == "" {
		return 0, 0, false
	}
	remaining, err := strconv.Atoi(rawRemaining)
	if err != nil || remaining < 0 {
		return 0, 0, false
	}
	seconds, err := strconv.Atoi(rawReset)
	if err != nil || seconds < 0 || time.Duration(seconds) > maxRetryAfter/time.Second {
		return 0, 0, false
	}
	return remaining, time.Duration(seconds) * time.Second, true
}
