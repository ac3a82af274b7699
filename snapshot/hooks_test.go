package snapshot_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/storagebot/storagebot/snapshot"
	"github.com/storagebot/storagebot/store/storetest"
)

// countingHooks counts a Source's cache events.
type countingHooks struct {
	hits, misses atomic.Int64
}

func (h *countingHooks) CacheHit()  { h.hits.Add(1) }
func (h *countingHooks) CacheMiss() { h.misses.Add(1) }

// The first Get on an empty store misses and scans, the second is served
// from the stored snapshot, and Refresh counts as neither.
func TestHooksCountCacheHitsAndMisses(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		c := &clock{now: baseTime}
		scan := &fakeScan{clock: c, used: 100}
		hooks := &countingHooks{}
		src, err := snapshot.New(snapshot.Config{
			Store:        openStore(t, b),
			Scan:         scan.Scan,
			TenantID:     "tenant-1",
			TTL:          15 * time.Minute,
			PollInterval: time.Millisecond,
			Now:          c.Now,
			Hooks:        hooks,
		})
		if err != nil {
			t.Fatalf("snapshot.New: %v", err)
		}

		for i := range 2 {
			if _, err := src.Get(t.Context()); err != nil {
				t.Fatalf("Get %d: %v", i+1, err)
			}
		}
		if _, err := src.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}

		if got := hooks.misses.Load(); got != 1 {
			t.Errorf("CacheMiss calls = %d, want 1", got)
		}
		if got := hooks.hits.Load(); got != 1 {
			t.Errorf("CacheHit calls = %d, want 1", got)
		}
	})
}
