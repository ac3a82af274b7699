package bot

import (
	"sync"
	"time"
)

// maxLimitedUsers bounds the limiter's memory. Past it, users whose last
// request is older than the interval are forgotten.
const maxLimitedUsers = 10_000

// userLimiter allows each user one action per interval. It is safe for
// concurrent use.
type userLimiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
}

func newUserLimiter(interval time.Duration, now func() time.Time) *userLimiter {
	return &userLimiter{interval: interval, now: now, last: make(map[string]time.Time)}
}

// allow records an action by user and returns true, or returns false and
// the wait until the next allowed action.
func (l *userLimiter) allow(user string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()

	now := l.now()
	if last, ok := l.last[user]; ok {
		if wait := last.Add(l.interval).Sub(now); wait > 0 {
			return false, wait
		}
	}

	if len(l.last) >= maxLimitedUsers {
		for u, t := range l.last {
			if now.Sub(t) >= l.interval {
				delete(l.last, u)
			}
		}
	}
	l.last[user] = now
	return true, 0
}
