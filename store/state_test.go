package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSeenActivity(t *testing.T) {
	const ttl = time.Hour
	forEachBackend(t, func(t *testing.T, b testBackend) {
		first := b.open(t)
		second := b.open(t) // another replica on the same database
		steps := []struct {
			name       string
			store      *sqlStore
			activityID string
			now        time.Time
			wantFirst  bool
		}{
			{"first delivery", first, "activity-1", baseTime, true},
			{"retry on the same replica", first, "activity-1", baseTime.Add(time.Second), false},
			{"retry on another replica", second, "activity-1", baseTime.Add(time.Minute), false},
			{"another activity", second, "activity-2", baseTime.Add(time.Minute), true},
			{"last moment before expiry", first, "activity-1", baseTime.Add(ttl - time.Microsecond), false},
			{"after expiry", second, "activity-1", baseTime.Add(ttl), true},
			{"retry after the renewed record", first, "activity-1", baseTime.Add(ttl + time.Minute), false},
		}
		for _, step := range steps {
			got, err := step.store.SeenActivity(t.Context(), step.activityID, step.now, ttl)
			if err != nil {
				t.Fatalf("%s: SeenActivity(%q) error = %v", step.name, step.activityID, err)
			}
			if got != step.wantFirst {
				t.Errorf("%s: SeenActivity(%q) = %t, want %t", step.name, step.activityID, got, step.wantFirst)
			}
		}
	})
}

func TestSeenActivityInvalidArguments(t *testing.T) {
	s := sqliteBackend(t).open(t)
	if _, err := s.SeenActivity(t.Context(), "", baseTime, time.Hour); err == nil {
		t.Errorf("SeenActivity(empty id) error = nil, want an error")
	}
	if _, err := s.SeenActivity(t.Context(), "activity-1", baseTime, 0); err == nil {
		t.Errorf("SeenActivity(ttl 0) error = nil, want an error")
	}
}

func TestTryLease(t *testing.T) {
	const ttl = time.Minute
	forEachBackend(t, func(t *testing.T, b testBackend) {
		replicaA := b.open(t)
		replicaB := b.open(t)
		type step struct {
			name   string
			store  *sqlStore
			holder string
			now    time.Time
			want   bool
		}
		steps := []step{
			{"a acquires", replicaA, "a", baseTime, true},
			{"b is excluded", replicaB, "b", baseTime.Add(time.Second), false},
			{"a renews", replicaA, "a", baseTime.Add(30 * time.Second), true},
			{"b is excluded until the renewed expiry", replicaB, "b", baseTime.Add(ttl + time.Second), false},
			{"b takes over after expiry", replicaB, "b", baseTime.Add(30*time.Second + ttl), true},
			{"a is excluded after the takeover", replicaA, "a", baseTime.Add(31*time.Second + ttl), false},
		}
		for _, s := range steps {
			got, err := s.store.TryLease(t.Context(), "scan", s.holder, s.now, ttl)
			if err != nil {
				t.Fatalf("%s: TryLease(scan, %s) error = %v", s.name, s.holder, err)
			}
			if got != s.want {
				t.Errorf("%s: TryLease(scan, %s) = %t, want %t", s.name, s.holder, got, s.want)
			}
		}

		now := baseTime.Add(32*time.Second + ttl)
		if err := replicaA.ReleaseLease(t.Context(), "scan", "a"); err != nil {
			t.Fatalf("ReleaseLease(scan, a) error = %v", err)
		}
		if got, err := replicaA.TryLease(t.Context(), "scan", "a", now, ttl); err != nil || got {
			t.Errorf("TryLease(scan, a) after a released a lease it did not hold = %t, %v, want false, nil", got, err)
		}
		if err := replicaB.ReleaseLease(t.Context(), "scan", "b"); err != nil {
			t.Fatalf("ReleaseLease(scan, b) error = %v", err)
		}
		if got, err := replicaA.TryLease(t.Context(), "scan", "a", now, ttl); err != nil || !got {
			t.Errorf("TryLease(scan, a) after b released = %t, %v, want true, nil", got, err)
		}
		if got, err := replicaB.TryLease(t.Context(), "digest", "b", now, ttl); err != nil || !got {
			t.Errorf("TryLease(digest, b) while a holds scan = %t, %v, want true, nil", got, err)
		}
	})
}

func TestTryLeaseConcurrent(t *testing.T) {
	const replicas = 4
	forEachBackend(t, func(t *testing.T, b testBackend) {
		stores := make([]*sqlStore, replicas)
		for i := range stores {
			stores[i] = b.open(t)
		}

		type outcome struct {
			acquired bool
			err      error
		}
		results := make(chan outcome, replicas)
		for i, s := range stores {
			go func() {
				acquired, err := s.TryLease(t.Context(), "scan", string(rune('a'+i)), baseTime, time.Minute)
				results <- outcome{acquired, err}
			}()
		}

		acquired := 0
		for range replicas {
			r := <-results
			if r.err != nil {
				t.Errorf("TryLease() error = %v", r.err)
			}
			if r.acquired {
				acquired++
			}
		}
		if acquired != 1 {
			t.Errorf("%d of %d concurrent TryLease calls acquired the lease, want 1", acquired, replicas)
		}
	})
}

func TestConversations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		ctx := t.Context()
		personal := ConversationReference{
			ConversationID: "a:1personal",
			Kind:           "personal",
			ServiceURL:     "https://smba.trafficmanager.net/emea/",
			TenantID:       "tenant-1",
			BotID:          "28:bot",
			Reference:      json.RawMessage(`{"conversation": {"id": "a:1personal"}, "serviceUrl": "https://smba.trafficmanager.net/emea/"}`),
			UpdatedAt:      baseTime,
		}
		channel := ConversationReference{
			ConversationID: "19:general@thread.tacv2",
			Kind:           "channel",
			ServiceURL:     "https://smba.trafficmanager.net/emea/",
			TenantID:       "tenant-1",
			BotID:          "28:bot",
			TeamID:         "19:general@thread.tacv2",
			GroupID:        "00000000-0000-0000-0000-000000000001",
			TeamsChannelID: "19:general@thread.tacv2",
			UpdatedAt:      baseTime,
		}
		for _, ref := range []ConversationReference{personal, channel} {
			if err := s.SaveConversation(ctx, ref); err != nil {
				t.Fatalf("SaveConversation(%q) error = %v", ref.ConversationID, err)
			}
		}
		moved := personal
		moved.ServiceURL = "https://smba.trafficmanager.net/amer/"
		moved.UpdatedAt = baseTime.Add(time.Hour)
		if err := s.SaveConversation(ctx, moved); err != nil {
			t.Fatalf("SaveConversation(%q) again error = %v", moved.ConversationID, err)
		}

		tests := []struct {
			name string
			kind string
			want []ConversationReference
		}{
			{"every kind", "", []ConversationReference{channel, moved}},
			{"personal", "personal", []ConversationReference{moved}},
			{"channel", "channel", []ConversationReference{channel}},
			{"kind without references", "groupChat", []ConversationReference{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Conversations(ctx, tt.kind)
				if err != nil {
					t.Fatalf("Conversations(%q) error = %v", tt.kind, err)
				}
				assertConversations(t, got, tt.want)
			})
		}

		if err := s.DeleteConversation(ctx, personal.ConversationID); err != nil {
			t.Fatalf("DeleteConversation(%q) error = %v", personal.ConversationID, err)
		}
		if err := s.DeleteConversation(ctx, personal.ConversationID); err != nil {
			t.Errorf("DeleteConversation(%q) a second time error = %v, want nil", personal.ConversationID, err)
		}
		got, err := s.Conversations(ctx, "")
		if err != nil {
			t.Fatalf("Conversations() after delete error = %v", err)
		}
		assertConversations(t, got, []ConversationReference{channel})
	})
}

// assertConversations compares references, and their Reference JSON by
// value because PostgreSQL's jsonb does not keep the original text.
func assertConversations(t *testing.T, got, want []ConversationReference) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d conversation references, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !jsonEqual(t, g.Reference, w.Reference) {
			t.Errorf("reference %d Reference = %s, want %s", i, g.Reference, w.Reference)
		}
		g.Reference, w.Reference = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("reference %d = %+v, want %+v", i, g, w)
		}
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var av, bv any
	if err := json.Unmarshal(a, &av); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &bv); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(av, bv)
}

func TestRecordSend(t *testing.T) {
	const retryAfter = 10 * time.Minute
	forEachBackend(t, func(t *testing.T, b testBackend) {
		s := b.open(t)
		other := b.open(t)
		ctx := t.Context()
		const key = "digest/2025-W02/a:1personal"
		steps := []struct {
			name          string
			store         *sqlStore
			now           time.Time
			retryAfter    time.Duration
			wantClaimed   bool
			wantRecorded  time.Time
			wantCompleted bool
		}{
			{"first record", s, baseTime, retryAfter, true, baseTime, false},
			{"pending on another replica", other, baseTime.Add(time.Minute), retryAfter, false, baseTime, false},
			{"pending without takeover", other, baseTime.Add(time.Hour), 0, false, baseTime, false},
			{"stale pending record taken over", other, baseTime.Add(retryAfter), retryAfter, true, baseTime.Add(retryAfter), false},
		}
		for _, step := range steps {
			send, claimed, err := step.store.RecordSend(ctx, key, "a:1personal", step.now, step.retryAfter)
			if err != nil {
				t.Fatalf("%s: RecordSend() error = %v", step.name, err)
			}
			if claimed != step.wantClaimed {
				t.Errorf("%s: RecordSend() claimed = %t, want %t", step.name, claimed, step.wantClaimed)
			}
			if !send.RecordedAt.Equal(step.wantRecorded) {
				t.Errorf("%s: RecordSend().RecordedAt = %s, want %s", step.name, send.RecordedAt, step.wantRecorded)
			}
			if send.Completed() != step.wantCompleted {
				t.Errorf("%s: RecordSend().Completed() = %t, want %t", step.name, send.Completed(), step.wantCompleted)
			}
		}

		completedAt := baseTime.Add(retryAfter + time.Second)
		if err := other.CompleteSend(ctx, key, "1:activity", completedAt); err != nil {
			t.Fatalf("CompleteSend() error = %v", err)
		}
		send, claimed, err := s.RecordSend(ctx, key, "a:1personal", baseTime.Add(48*time.Hour), retryAfter)
		if err != nil {
			t.Fatalf("RecordSend() after completion error = %v", err)
		}
		want := Send{
			Key:            key,
			ConversationID: "a:1personal",
			RecordedAt:     baseTime.Add(retryAfter),
			CompletedAt:    completedAt,
			ActivityID:     "1:activity",
		}
		if claimed {
			t.Errorf("RecordSend() after completion claimed = true, want false")
		}
		if !reflect.DeepEqual(send, want) {
			t.Errorf("RecordSend() after completion = %+v, want %+v", send, want)
		}

		if err := s.CompleteSend(ctx, "unknown", "1:activity", completedAt); !errors.Is(err, ErrNotFound) {
			t.Errorf("CompleteSend(unknown key) error = %v, want ErrNotFound", err)
		}
	})
}
