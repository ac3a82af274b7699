package connector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

func TestPacerReserve(t *testing.T) {
	start := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// sends are the offsets from start at which reserve is called.
		sends []time.Duration
		// want is the wait returned for the last send.
		want time.Duration
	}{
		{name: "first send", sends: []time.Duration{0}, want: 0},
		{name: "seventh in one second", sends: repeat(0, 7), want: 0},
		{name: "eighth waits for the first to leave the second", sends: repeat(0, 8), want: time.Second},
		{name: "four a second never wait", sends: every(250*time.Millisecond, 40), want: 0},
		{name: "ninth in two seconds waits for the two-second window", sends: append(repeat(0, 7), 1100*time.Millisecond, 1100*time.Millisecond), want: 900 * time.Millisecond},
		{name: "sixty-first in thirty seconds waits for the first to leave", sends: every(400*time.Millisecond, 61), want: 6 * time.Second},
		{name: "old sends are forgotten", sends: append(repeat(0, 60), 31*time.Second), want: 0},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(teamsSendLimits)
			var got time.Duration
			for _, offset := range tt.sends {
				got = p.reserve("conversation", start.Add(offset))
			}
			if got != tt.want {
				t.Errorf("last wait = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPacerSeparatesConversations(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	p := newPacer(teamsSendLimits)
	for range 7 {
		p.reserve(conversationKey("https://smba.trafficmanager.net/emea/", "a"), now)
	}

	if wait := p.reserve(conversationKey("https://smba.trafficmanager.net/emea/", "b"), now); wait != 0 {
		t.Errorf("another conversation waits %s, want 0", wait)
	}
	if wait := p.reserve(conversationKey("https://smba.trafficmanager.net/emea", "a;messageid=42"), now); wait != time.Second {
		t.Errorf("a thread of the busy channel waits %s, want 1s", wait)
	}
}

// A burst of sends to one conversation goes out at most 7 per second: the
// client sleeps, on the injected clock, before the 8th and 15th.
func TestClientPacesSends(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"1"}`))
	}))
	defer server.Close()

	var (
		mu    sync.Mutex
		now   = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		waits []time.Duration
	)
	client := New(Config{
		HTTPClient: server.Client(),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			now = now.Add(d)
			return nil
		},
	})

	for i := range 15 {
		if _, err := client.SendToConversation(context.Background(), server.URL, "19:abc@thread.tacv2", schema.Activity{Type: schema.Message}); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}

	want := []time.Duration{time.Second, time.Second}
	if len(waits) != len(want) || waits[0] != want[0] || waits[1] != want[1] {
		t.Errorf("waits = %v, want %v", waits, want)
	}
}

func TestClientPacingStopsWithContext(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	defer server.Close()

	ctx, cancel := context.WithCancel(context.Background())
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	client := New(Config{
		HTTPClient: server.Client(),
		Now:        func() time.Time { return now },
		Sleep: func(ctx context.Context, _ time.Duration) error {
			cancel()
			return ctx.Err()
		},
	})

	var err error
	for range 8 {
		_, err = client.SendToConversation(ctx, server.URL, "conversation", schema.Activity{Type: schema.Message})
	}
	if err == nil || ctx.Err() == nil {
		t.Errorf("eighth send error = %v, want the context's cancellation", err)
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func every(step time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i) * step
	}
	return out
}
