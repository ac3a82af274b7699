package scanner

import (
	"net/http"
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	t.Run("idle pacer adds no wait", func(t *testing.T) {
		p := NewPacer()
		for range 3 {
			if got := p.reserve(testNow, 20); got != 0 {
				t.Errorf("reserve = %s, want 0", got)
			}
		}
	})

	t.Run("Retry-After pauses every request", func(t *testing.T) {
		p := NewPacer()
		p.throttled(testNow, 2*time.Second)
		if got := p.reserve(testNow, 1); got != 2*time.Second {
			t.Errorf("reserve = %s, want 2s", got)
		}
		if got := p.reserve(testNow.Add(3*time.Second), 1); got != 0 {
			t.Errorf("reserve after the pause = %s, want 0 while no rate is known", got)
		}
	})

	t.Run("throttle cuts the rate to the goodput", func(t *testing.T) {
		p := NewPacer()
		p.reserve(testNow, 20)
		p.succeeded(testNow, 100)
		p.throttled(testNow, 0)
		if got := p.Rate(); got != 100 {
			t.Fatalf("rate = %v, want 100, the requests accepted in the last second", got)
		}
		// 20 requests at 100 a second take 200 ms each batch.
		first := p.reserve(testNow, 20)
		second := p.reserve(testNow, 20)
		if first != 0 || second != 200*time.Millisecond {
			t.Errorf("reserves = %s, %s, want 0 and 200ms", first, second)
		}
	})

	t.Run("throttle cuts to half the sent rate when more than the goodput", func(t *testing.T) {
		p := NewPacer()
		p.reserve(testNow, 500)
		p.succeeded(testNow, 10)
		p.throttled(testNow, 0)
		if got := p.Rate(); got != 250 {
			t.Errorf("rate = %v, want 250, half of the 500 sent", got)
		}
	})

	t.Run("one cut a second", func(t *testing.T) {
		p := NewPacer()
		p.reserve(testNow, 200)
		p.throttled(testNow, 0)
		p.reserve(testNow, 200)
		p.throttled(testNow.Add(500*time.Millisecond), 0)
		if got := p.Rate(); got != 100 {
			t.Errorf("rate after two throttles within a second = %v, want 100 from the first cut", got)
		}
	})

	t.Run("successes creep the rate up", func(t *testing.T) {
		p := NewPacer()
		p.reserve(testNow, 100)
		p.throttled(testNow, 0)
		before := p.Rate()
		p.succeeded(testNow.Add(2*time.Second), 20)
		if got, want := p.Rate(), before+20*creepPerSuccess; got != want {
			t.Errorf("rate after 20 successes = %v, want %v", got, want)
		}
	})

	t.Run("RateLimit headers cap the rate", func(t *testing.T) {
		p := NewPacer()
		h := http.Header{}
		h.Set("RateLimit-Remaining", "120")
		h.Set("RateLimit-Reset", "30")
		p.rateLimited(testNow, h)
		if got := p.Rate(); got != 4 {
			t.Errorf("rate = %v, want 4 (120 units over 30 s)", got)
		}

		h.Set("RateLimit-Remaining", "0")
		p.rateLimited(testNow, h)
		if got := p.reserve(testNow, 1); got != 30*time.Second {
			t.Errorf("reserve with no budget left = %s, want the 30s reset", got)
		}
	})

	t.Run("malformed RateLimit headers are ignored", func(t *testing.T) {
		for _, h := range []http.Header{
			{"Ratelimit-Remaining": {"-1"}, "Ratelimit-Reset": {"30"}},
			{"Ratelimit-Remaining": {"10"}},
			{"Ratelimit-Remaining": {"ten"}, "Ratelimit-Reset": {"30"}},
		} {
			p := NewPacer()
			p.rateLimited(testNow, h)
			if got := p.Rate(); got != 0 {
				t.Errorf("rate after %v = %v, want 0", h, got)
			}
		}
	})
}

func TestPacerSharedBetweenClients(t *testing.T) {
	fg := newFakeGraph(t)
	sleeper := &sleepRecorder{}
	shared := NewPacer()
	shared.throttled(testNow, 5*time.Second)

	cfg := testConfig(fg, sleeper)
	cfg.Pacer = shared
	g := newTestGraph(t, cfg)
	var drive Drive
	if err := g.GetJSON(t.Context(), "/groups/g-1/drive", &drive); err != nil {
		t.Fatalf("GetJSON: %v", err)
	}
	if got := sleeper.recorded(); len(got) != 1 || got[0] != 5*time.Second {
		t.Errorf("waits = %v, want one 5s pause from the shared pacer", got)
	}
}
