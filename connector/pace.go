package connector

import (
	"strings"
	"sync"
	"time"
)

// sendLimit is one of Teams' per-conversation send limits: at most count
// sends within any window.
type sendLimit struct {
	count  int
	window time.Duration
}

// teamsSendLimits are the per-bot, per-conversation limits for sending to a
// conversation, from "Optimize your bot with rate limiting and best
// practices in Teams"
// (https://learn.microsoft.com/en-us/microsoftteams/platform/bots/how-to/rate-limit).
//
// NOTE: the page also lists 1800 per hour; keeping an hour of send times
// per conversation is left out, because a storage bot answers a few
// commands per conversation, and a 429 from that limit is still retried.
var teamsSendLimits = []sendLimit{
	{count: 7, window: time.Second},
	{count: 8, window: 2 * time.Second},
	{count: 60, window: 30 * time.Second},
}

// maxPacedConversations bounds the pacer's memory. Past it, conversations
// with no send inside the longest window are forgotten.
const maxPacedConversations = 10_000

// pacer spaces sends per conversation so that no window of a sendLimit
// holds more than its count. It is safe for concurrent use.
type pacer struct {
	limits    []sendLimit
	maxWindow time.Duration

	mu sync.Mutex
	// sent holds each conversation's reserved send times, ascending, within
	// the longest window.
	sent map[string][]time.Time
}

func newPacer(limits []sendLimit) *pacer {
	p := &pacer{limits: limits, sent: make(map[string][]time.Time)}
	for _, l := range limits {
		p.maxWindow = max(p.maxWindow, l.window)
	}
	return p
}

// reserve books the earliest send slot for conversation at or after now
// and returns how long to wait for it. A caller that gives up keeps its
// slot booked, which only makes later sends more cautious.
func (p *pacer) reserve(conversation string, now time.Time) time.Duration {
	if conversation == "" || len(p.limits) == 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	times := p.sent[conversation]
	cut := 0
	for cut < len(times) && !times[cut].After(now.Add(-p.maxWindow)) {
		cut++
	}
	times = times[cut:]

	at := now
	if len(times) > 0 && times[len(times)-1].After(at) {
		at = times[len(times)-1]
	}
	for _, l := range p.limits {
		// The send l.count places back must have left the window.
		if len(times) >= l.count {
			if free := times[len(times)-l.count].Add(l.window); free.After(at) {
				at = free
			}
		}
	}

	p.sent[conversation] = append(times, at)
	if len(p.sent) > maxPacedConversations {
		p.forget(now)
	}
	return at.Sub(now)
}

// forget drops the conversations whose last send left the longest window.
func (p *pacer) forget(now time.Time) {
	for conversation, times := range p.sent {
		if !times[len(times)-1].After(now.Add(-p.maxWindow)) {
			delete(p.sent, conversation)
		}
	}
}

// conversationKey names the conversation that Teams rate-limits. A channel
// thread ("19:…@thread.tacv2;messageid=123") counts with its channel, which
// is stricter than per thread and never looser.
func conversationKey(serviceURL, conversationID string) string {
	base, _, _ := strings.Cut(conversationID, ";messageid=")
	return strings.TrimRight(strings.ToLower(serviceURL), "/") + "\x00" + base
}
