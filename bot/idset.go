package bot

import (
	"sync"
	"time"
)

// idSet remembers ids for a time to live, up to a maximum count, dropping
// the oldest first. It is safe for concurrent use.
type idSet struct {
	ttl    time.Duration
	maxIDs int
	now    func() time.Time

	mu    sync.Mutex
	added map[string]time.Time
	// order lists ids by insertion time from head on; entries before head
	// are spent and reclaimed when the slice is compacted.
	order []idEntry
	head  int
}

type idEntry struct {
	id    string
	added time.Time
}

func newIDSet(ttl time.Duration, maxIDs int, now func() time.Time) *idSet {
	return &idSet{ttl: ttl, maxIDs: maxIDs, now: now, added: make(map[string]time.Time)}
}

// add records id and reports whether it was new, that is not added within
// the time to live.
func (s *idSet) add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	now := s.now()
	s.expire(now)
	if _, ok := s.added[id]; ok {
		return false
	}

	s.added[id] = now
	s.order = append(s.order, idEntry{id: id, added: now})
	for len(s.added) > s.maxIDs {
		s.dropOldest()
	}
	return true
}

// expire drops the ids older than the time to live.
func (s *idSet) expire(now time.Time) {
	for s.head < len(s.order) && now.Sub(s.order[s.head].added) >= s.ttl {
		s.dropOldest()
	}
}

// dropOldest removes the oldest entry and compacts order once half of it
// is spent.
func (s *idSet) dropOldest() {
	oldest := s.order[s.head]
	s.order[s.head] = idEntry{}
	s.head++
	if added, ok := s.added[oldest.id]; ok && added.Equal(oldest.added) {
		delete(s.added, oldest.id)
	}

	if s.head > len(s.order)/2 {
		s.order = append([]idEntry(nil), s.order[s.head:]...)
		s.head = 0
	}
}
