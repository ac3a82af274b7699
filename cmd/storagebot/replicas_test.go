package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagebot/storagebot/simtenant"
	"github.com/storagebot/storagebot/store"
	"github.com/storagebot/storagebot/store/storetest"
)

// replicaTimeout bounds each wait for a scan or a reply in these tests.
const replicaTimeout = 2 * time.Minute

// syncBuffer is a log destination that several replicas write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startReplica starts the bot as serve wires it, against sim, with the store
// that b names, on a free loopback port.
func startReplica(t *testing.T, sim *simtenant.Tenant, b storetest.Backend, logs *syncBuffer) *app {
	t.Helper()
	c, err := loadConfig(mapEnv{})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	c.Addr = "127.0.0.1:0"
	c.AuthorityHost = sim.AuthorityHost()
	c.GraphURL = sim.GraphURL()
	c.TenantID = simtenant.PlaygroundTenantID
	c.TenantIDs = []string{simtenant.PlaygroundTenantID}
	c.ClientID = simtenant.DefaultClientID
	c.ClientSecret = simtenant.DefaultClientSecret
	// An admin by id needs no Graph request to be recognised, so every
	// Graph request these tests count belongs to a scan.
	c.AdminIDs = []string{playgroundUserObjectID}
	if b.Name == "postgres" {
		c.DatabaseURL = b.URL
	} else {
		c.DBPath = b.URL
	}

	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := startApp(c, sim.HTTPClient(), logger)
	if err != nil {
		t.Fatalf("startApp: %v", err)
	}
	t.Cleanup(func() { a.shutdown() })
	return a
}

// postMessage posts a Teams personal-chat message to a webhook, with the
// simulated connector as its serviceUrl.
func postMessage(t *testing.T, webhook string, sim *simtenant.Tenant, activityID, conversationID, text string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"type":         "message",
		"id":           activityID,
		"timestamp":    time.Now().UTC().Format(time.RFC3339Nano),
		"channelId":    "msteams",
		"serviceUrl":   sim.ConnectorURL(),
		"from":         map[string]any{"id": "user-id-0", "name": "Test Admin", "aadObjectId": playgroundUserObjectID},
		"recipient":    map[string]any{"id": "storagebot-test", "name": "storagebot"},
		"conversation": map[string]any{"id": conversationID, "conversationType": "personal", "tenantId": simtenant.PlaygroundTenantID},
		"channelData":  map[string]any{"tenant": map[string]any{"id": simtenant.PlaygroundTenantID}},
		"text":         text,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(webhook+"/api/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post %q: %v", text, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post %q: status %d, want 200", text, resp.StatusCode)
	}
}

// graphRequests counts the Graph requests the sim has answered on every
// route but the directory's, so the count stays right when the scanner's
// requests change.
func graphRequests(sim *simtenant.Tenant) int {
	n := 0
	for k, v := range sim.Stats().Requests {
		switch k.Route {
		case simtenant.RouteOwners, simtenant.RouteTransitiveMemberOf, simtenant.RouteOwnedObjects:
			// Role and owner lookups are cached per process, so a new
			// process repeats them whatever the store holds.
			continue
		}
		if strings.HasPrefix(string(k.Route), "graph.") {
			n += v
		}
	}
	return n
}

// storedScans returns how many scans the store has, by stepping back from the
// latest one.
func storedScans(t *testing.T, b storetest.Backend) int {
	t.Helper()
	st, err := store.Open(t.Context(), b.URL, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()

	n := 0
	r, err := st.LatestScan(t.Context())
	for ; err == nil && n < 100; n++ {
		r, err = st.ScanAt(t.Context(), r.FinishedAt.Add(-time.Microsecond))
	}
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read scans: %v", err)
	}
	return n
}

// Two replicas on one database: simultaneous questions and refreshes cause
// one scan, a message delivered to both gets one reply, and the daily prune
// runs on one of them.
func TestReplicasShareScansAndSchedule(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		sim, err := simtenant.Start(simtenant.Options{Latency: 5 * time.Millisecond})
		if err != nil {
			t.Fatalf("start simulated tenant: %v", err)
		}
		t.Cleanup(sim.Close)
		var logs syncBuffer
		replicas := []*app{startReplica(t, sim, b, &logs), startReplica(t, sim, b, &logs)}
		ctx, cancel := context.WithTimeout(t.Context(), replicaTimeout)
		defer cancel()

		var wg sync.WaitGroup
		errs := make(chan error, 2*len(replicas))
		for _, a := range replicas {
			wg.Go(func() {
				_, err := a.snapshots.Refresh(ctx)
				errs <- err
			})
			wg.Go(func() {
				_, err := a.snapshots.Get(ctx)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("refresh on a replica: %v", err)
			}
		}
		if n := storedScans(t, b); n != 1 {
			t.Errorf("stored scans after simultaneous refreshes on two replicas = %d, want 1", n)
		}
		if n := strings.Count(logs.String(), `msg="scan started" component=scanner`); n != 1 {
			t.Errorf("scanner started %d scans, want 1", n)
		}

		before := graphRequests(sim)
		postMessage(t, replicas[0].URL(), sim, "activity-1", "chat-1", "top 10 teams")
		postMessage(t, replicas[1].URL(), sim, "activity-1", "chat-1", "top 10 teams")
		sent, err := sim.WaitActivities(ctx, 1)
		if err != nil {
			t.Fatalf("wait for the reply: %v", err)
		}
		for _, a := range replicas {
			if err := a.bot.Shutdown(ctx); err != nil {
				t.Fatalf("shut a replica's bot down: %v", err)
			}
		}
		if n := len(sim.Activities()); n != 1 {
			t.Errorf("connector received %d replies to one message delivered to two replicas, want 1", n)
		}
		if n := graphRequests(sim) - before; n != 0 {
			t.Errorf("answering from the stored scan made %d Graph requests, want 0", n)
		}
		text, err := cardText(sent[0].Body)
		if err != nil {
			t.Fatalf("read the card: %v", err)
		}
		assertLibraryFirst(t, text)

		for _, a := range replicas {
			a.stopScheduler()
			<-a.schedulerDone
		}
		if n := strings.Count(logs.String(), `msg="scheduled job done" component=schedule job=prune`); n != 1 {
			t.Errorf("prune ran %d times on two replicas, want 1\nlogs:\n%s", n, logs.String())
		}
	})
}
