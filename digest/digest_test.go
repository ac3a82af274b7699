package digest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/connector"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/schedule"
	"github.com/storagebot/storagebot/store"
	"github.com/storagebot/storagebot/store/storetest"
)

const testTenant = "tenant-1"

// fakeConnector is a Bot Connector that records every new thread and
// returns a configured error status for some channels.
type fakeConnector struct {
	server *httptest.Server

	mu      sync.Mutex
	threads []postedThread
	// statuses maps a channel id to the error status returned for it.
	statuses map[string]int
	// attempts counts POST /v3/conversations per channel id.
	attempts map[string]int
}

// postedThread is one new channel thread as the fake received it.
type postedThread struct {
	ChannelID string
	Card      map[string]any
}

func newFakeConnector(t *testing.T) *fakeConnector {
	t.Helper()
	f := &fakeConnector{statuses: map[string]int{}, attempts: map[string]int{}}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeConnector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v3/conversations" {
		http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	var params struct {
		IsGroup     bool `json:"isGroup"`
		ChannelData struct {
			Channel struct {
				ID string `json:"id"`
			} `json:"channel"`
		} `json:"channelData"`
		Activity struct {
			Attachments []struct {
				ContentType string         `json:"contentType"`
				Content     map[string]any `json:"content"`
			} `json:"attachments"`
		} `json:"activity"`
	}
	if err := json.NewDecoder(r.Body).Decode(&params); err != nil || !params.IsGroup || len(params.Activity.Attachments) != 1 {
		http.Error(w, "invalid conversation parameters", http.StatusBadRequest)
		return
	}
	channel := params.ChannelData.Channel.ID

	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts[channel]++
	if status := f.statuses[channel]; status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`)
		return
	}
	f.threads = append(f.threads, postedThread{ChannelID: channel, Card: params.Activity.Attachments[0].Content})
	id := len(f.threads)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"%s;messageid=%d","activityId":"%d"}`, channel, id, id)
}

// posted returns the threads posted so far.
func (f *fakeConnector) posted() []postedThread {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]postedThread(nil), f.threads...)
}

func (f *fakeConnector) attemptsFor(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[channel]
}

func (f *fakeConnector) answer(channel string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[channel] = status
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// latestSource serves the store's latest scan, like a snapshot source
// whose scan is always fresh enough.
type latestSource struct{ store store.Store }

func (s latestSource) Get(ctx context.Context) (*scanner.Result, error) {
	return s.store.LatestScan(ctx)
}

// harness is one replica: a store connection and a Service on it.
type harness struct {
	store     store.Store
	service   *Service
	connector *fakeConnector
	clock     *clock
}

type options struct {
	spec, zone  string
	catchUp     time.Duration
	thresholds  []float64
	tenantQuota int64
	onSent      func()
}

func newHarness(t *testing.T, url string, conn *fakeConnector, c *clock, o options) *harness {
	t.Helper()
	st, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })

	if o.spec == "" {
		o.spec = DefaultSpec
	}
	sched, err := ParseSchedule(o.spec, o.zone)
	if err != nil {
		t.Fatalf("parse schedule: %v", err)
	}
	service, err := New(Config{
		Store:  st,
		Source: latestSource{st},
		Connector: connector.New(connector.Config{
			HTTPClient:    conn.server.Client(),
			MaxAttempts:   2,
			Sleep:         func(context.Context, time.Duration) error { return nil },
			DisablePacing: true,
		}),
		Schedule:    sched,
		CatchUp:     o.catchUp,
		Thresholds:  o.thresholds,
		TenantQuota: o.tenantQuota,
		Now:         c.Now,
		OnSent:      o.onSent,
	})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	return &harness{store: st, service: service, connector: conn, clock: c}
}

// channelActivity returns an authenticated-looking message from a channel.
func channelActivity(conn *fakeConnector, channelID string) schema.Activity {
	return schema.Activity{
		Type:         schema.Message,
		ID:           "activity-" + channelID,
		ChannelID:    "msteams",
		ServiceURL:   conn.server.URL,
		Recipient:    schema.ChannelAccount{ID: "bot-id", Name: "storagebot"},
		Conversation: schema.ConversationAccount{ID: channelID + ";messageid=1", ConversationType: "channel", TenantID: testTenant},
		ChannelData: map[string]any{
			"tenant":  map[string]any{"id": testTenant},
			"team":    map[string]any{"id": "team-" + channelID, "name": "IT", "aadGroupId": "group-" + channelID},
			"channel": map[string]any{"id": channelID, "name": "Storage"},
		},
	}
}

func (h *harness) addTarget(t *testing.T, channelID string) {
	t.Helper()
	if _, err := h.service.AddTarget(context.Background(), channelActivity(h.connector, channelID)); err != nil {
		t.Fatalf("add target %s: %v", channelID, err)
	}
}

// saveScan stores a scan that finished at finished with one Team per
// entry of used, all with a quota of 100 bytes and the given states.
func (h *harness) saveScan(t *testing.T, finished time.Time, used []int64, states []string) {
	t.Helper()
	r := &scanner.Result{TenantID: testTenant, StartedAt: finished.Add(-time.Minute), FinishedAt: finished}
	for i, u := range used {
		state := cards.QuotaNormal
		if i < len(states) {
			state = states[i]
		}
		r.Teams = append(r.Teams, scanner.TeamUsage{
			Team:    scanner.Team{ID: fmt.Sprintf("team-%d", i), DisplayName: fmt.Sprintf("Team %d", i)},
			Outcome: scanner.OutcomeMeasured,
			Quota:   scanner.Quota{Total: 100, Used: u, Remaining: 100 - u, State: state},
		})
	}
	if _, err := h.store.SaveScan(context.Background(), r); err != nil {
		t.Fatalf("save scan: %v", err)
	}
}

func (h *harness) tick(t *testing.T, at time.Time) {
	t.Helper()
	h.clock.Set(at)
	if err := h.service.Tick(context.Background()); err != nil {
		t.Fatalf("tick at %s: %v", at, err)
	}
}

func mustTime(t *testing.T, value string) time.Time {
	t.Helper()
	parsed, err := time.Parse(time.RFC3339, value)
	if err != nil {
		t.Fatalf("parse time %q: %v", value, err)
	}
	return parsed
}

func TestSchedulePrevious(t *testing.T) {
	tests := []struct {
		name, spec, zone, at, want string
	}{
		{"before spring DST change", DefaultSpec, "Europe/London", "2026-03-23T08:00:00Z", "2026-03-23T08:00:00Z"},
		{"after spring DST change at 08:00 BST", DefaultSpec, "Europe/London", "2026-03-30T07:00:00Z", "2026-03-30T07:00:00Z"},
		{"07:59 BST is still last week", DefaultSpec, "Europe/London", "2026-03-30T06:59:59Z", "2026-03-23T08:00:00Z"},
		{"day of the change", DefaultSpec, "Europe/London", "2026-03-29T12:00:00Z", "2026-03-23T08:00:00Z"},
		{"after autumn DST change", DefaultSpec, "Europe/London", "2026-10-26T08:30:00Z", "2026-10-26T08:00:00Z"},
		{"before autumn DST change", DefaultSpec, "Europe/London", "2026-10-26T07:59:00Z", "2026-10-19T07:00:00Z"},
		{"UTC default", DefaultSpec, "", "2026-03-25T00:00:00Z", "2026-03-23T08:00:00Z"},
		{"every minute", "* * * * *", "UTC", "2026-03-25T12:00:30Z", "2026-03-25T12:00:00Z"},
		{"yearly", "0 8 1 1 *", "UTC", "2026-06-01T00:00:00Z", "2026-01-01T08:00:00Z"},
		{"weekly descriptor", "@weekly", "UTC", "2026-03-25T00:00:00Z", "2026-03-22T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule(tt.spec, tt.zone)
			if err != nil {
				t.Fatalf("ParseSchedule: %v", err)
			}
			got, err := s.Previous(mustTime(t, tt.at))
			if err != nil {
				t.Fatalf("Previous: %v", err)
			}
			if want := mustTime(t, tt.want); !got.Equal(want) {
				t.Errorf("Previous(%s) = %s, want %s", tt.at, got.UTC(), want)
			}
		})
	}
}

func TestScheduleNextAcrossDST(t *testing.T) {
	s, err := ParseSchedule(DefaultSpec, "Europe/London")
	if err != nil {
		t.Fatalf("ParseSchedule: %v", err)
	}
	got := s.Next(mustTime(t, "2026-03-24T00:00:00Z"))
	if want := mustTime(t, "2026-03-30T07:00:00Z"); !got.Equal(want) {
		t.Errorf("Next = %s, want %s (08:00 BST)", got.UTC(), want)
	}
	if got.Hour() != 8 {
		t.Errorf("Next local hour = %d, want 8", got.Hour())
	}
}

func TestParseScheduleRejects(t *testing.T) {
	tests := []struct{ name, spec, zone string }{
		{"invalid spec", "0 8 * *", "UTC"},
		{"unknown zone", DefaultSpec, "Mars/Olympus"},
		{"zone prefix", "CRON_TZ=Europe/London 0 8 * * 1", "UTC"},
		{"every", "@every 1h", "UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseSchedule(tt.spec, tt.zone); err == nil {
				t.Errorf("ParseSchedule(%q, %q) returned no error", tt.spec, tt.zone)
			}
		})
	}
}

func TestSchedulePreviousNoRun(t *testing.T) {
	s, err := ParseSchedule("0 8 30 2 *", "UTC")
	if err != nil {
		t.Fatalf("ParseSchedule: %v", err)
	}
	if _, err := s.Previous(mustTime(t, "2026-03-25T00:00:00Z")); !errors.Is(err, ErrNoRun) {
		t.Errorf("Previous error = %v, want ErrNoRun", err)
	}
}

func TestTickDSTWeek(t *testing.T) {
	conn := newFakeConnector(t)
	c := &clock{}
	h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{zone: "Europe/London"})
	h.addTarget(t, "19:general@thread.tacv2")
	h.saveScan(t, mustTime(t, "2026-03-23T07:50:00Z"), []int64{40, 10}, nil)

	steps := []struct {
		at        string
		wantTotal int
	}{
		{"2026-03-23T07:59:40Z", 0}, // 07:59 GMT: not due
		{"2026-03-23T08:00:20Z", 1}, // 08:00 GMT
		{"2026-03-23T08:01:20Z", 1}, // same period
		{"2026-03-30T06:59:50Z", 1}, // 07:59 BST: not due
		{"2026-03-30T07:00:20Z", 2}, // 08:00 BST
		{"2026-03-30T09:00:00Z", 2},
	}
	for _, step := range steps {
		h.tick(t, mustTime(t, step.at))
		if got := len(conn.posted()); got != step.wantTotal {
			t.Fatalf("after tick at %s: %d digests posted, want %d", step.at, got, step.wantTotal)
		}
	}
}

func TestTickCatchUp(t *testing.T) {
	tests := []struct {
		name     string
		restart  string
		wantSent int
	}{
		{"restart within the window", "2026-03-23T11:00:00Z", 1},
		{"restart at the window's end", "2026-03-24T08:00:00Z", 1},
		{"restart after the window", "2026-03-24T08:00:01Z", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := newFakeConnector(t)
			c := &clock{}
			h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{catchUp: 24 * time.Hour})
			h.addTarget(t, "19:general@thread.tacv2")
			h.saveScan(t, mustTime(t, "2026-03-23T07:00:00Z"), []int64{40}, nil)

			// The process was down at 08:00 UTC and ticks first at restart.
			h.tick(t, mustTime(t, tt.restart))
			if got := len(conn.posted()); got != tt.wantSent {
				t.Errorf("digests posted at restart = %d, want %d", got, tt.wantSent)
			}
		})
	}
}

func TestSendNowIgnoresCatchUp(t *testing.T) {
	conn := newFakeConnector(t)
	c := &clock{now: mustTime(t, "2026-03-27T12:00:00Z")}
	var hooked int
	h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{onSent: func() { hooked++ }})
	h.addTarget(t, "19:general@thread.tacv2")
	h.saveScan(t, mustTime(t, "2026-03-27T11:00:00Z"), []int64{40}, nil)

	first, err := h.service.SendNow(context.Background())
	if err != nil {
		t.Fatalf("first SendNow: %v", err)
	}
	if first.Count(Sent) != 1 {
		t.Errorf("first SendNow sent %d, want 1", first.Count(Sent))
	}
	if want := mustTime(t, "2026-03-23T08:00:00Z"); !first.Period.Equal(want) {
		t.Errorf("period = %s, want %s", first.Period, want)
	}

	second, err := h.service.SendNow(context.Background())
	if err != nil {
		t.Fatalf("second SendNow: %v", err)
	}
	if second.Count(AlreadySent) != 1 || second.Count(Sent) != 0 {
		t.Errorf("second SendNow outcomes = %+v, want one AlreadySent", second.Results)
	}
	if got := len(conn.posted()); got != 1 {
		t.Errorf("digests posted = %d, want 1", got)
	}
	if hooked != 1 {
		t.Errorf("OnSent called %d times, want once for the one digest posted", hooked)
	}
}

func TestTwoReplicasPostOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		conn := newFakeConnector(t)
		c := &clock{}
		replicas := []*harness{
			newHarness(t, b.URL, conn, c, options{}),
			newHarness(t, b.URL, conn, c, options{}),
		}
		replicas[0].addTarget(t, "19:general@thread.tacv2")
		replicas[0].addTarget(t, "19:admins@thread.tacv2")
		replicas[0].saveScan(t, mustTime(t, "2026-03-23T07:00:00Z"), []int64{40}, nil)

		var schedulers []*schedule.Scheduler
		for i, r := range replicas {
			s, err := schedule.New(schedule.Config{Leases: r.store, Holder: fmt.Sprintf("replica-%d", i), Now: c.Now}, r.service.Job())
			if err != nil {
				t.Fatalf("create scheduler: %v", err)
			}
			schedulers = append(schedulers, s)
		}

		// Both replicas tick through the due minute and after it; only the
		// leader runs the job.
		for _, at := range []string{"2026-03-23T08:00:10Z", "2026-03-23T08:00:30Z", "2026-03-23T08:01:10Z", "2026-03-23T08:02:10Z"} {
			c.Set(mustTime(t, at))
			for _, s := range schedulers {
				s.Tick(context.Background())
			}
		}

		// Both call SendNow at once too, as two "digest --now" would.
		var wg sync.WaitGroup
		reports := make([]Report, len(replicas))
		for i, r := range replicas {
			wg.Go(func() {
				report, err := r.service.SendNow(context.Background())
				if err != nil {
					t.Errorf("SendNow on replica %d: %v", i, err)
				}
				reports[i] = report
			})
		}
		wg.Wait()

		posted := map[string]int{}
		for _, p := range conn.posted() {
			posted[p.ChannelID]++
		}
		for _, channel := range []string{"19:general@thread.tacv2", "19:admins@thread.tacv2"} {
			if posted[channel] != 1 {
				t.Errorf("digests posted to %s = %d, want 1", channel, posted[channel])
			}
		}
		for i, r := range reports {
			if n := r.Count(Sent); n != 0 {
				t.Errorf("SendNow on replica %d sent %d after the scheduled run, want 0", i, n)
			}
		}
	})
}

func TestRestartBetweenRecordAndSend(t *testing.T) {
	conn := newFakeConnector(t)
	c := &clock{}
	h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{})
	channel := "19:general@thread.tacv2"
	h.addTarget(t, channel)
	h.saveScan(t, mustTime(t, "2026-03-23T07:00:00Z"), []int64{40}, nil)

	// A replica recorded the send at 08:00:05 and died before posting.
	period := mustTime(t, "2026-03-23T08:00:00Z")
	if _, claimed, err := h.store.RecordSend(context.Background(), digestKey(period, channel), channel, period.Add(5*time.Second), pendingTimeout); err != nil || !claimed {
		t.Fatalf("record send of the crashed replica: claimed %v, err %v", claimed, err)
	}

	h.tick(t, period.Add(time.Minute))
	if got := len(conn.posted()); got != 0 {
		t.Fatalf("posted %d while the record is pending and recent, want 0", got)
	}
	report, err := h.service.SendNow(context.Background())
	if err != nil {
		t.Fatalf("SendNow: %v", err)
	}
	if report.Count(InProgress) != 1 {
		t.Errorf("SendNow outcomes = %+v, want one InProgress", report.Results)
	}

	h.tick(t, period.Add(5*time.Second+pendingTimeout))
	if got := len(conn.posted()); got != 1 {
		t.Fatalf("posted %d after the pending record expired, want 1", got)
	}
	h.tick(t, period.Add(time.Hour))
	if got := len(conn.posted()); got != 1 {
		t.Errorf("posted %d after the send completed, want 1", got)
	}
}

func TestGoneTargetMarkedInactive(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{"forbidden", http.StatusForbidden},
		{"not found", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := newFakeConnector(t)
			c := &clock{}
			h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{})
			gone, kept := "19:gone@thread.tacv2", "19:kept@thread.tacv2"
			h.addTarget(t, gone)
			h.addTarget(t, kept)
			h.saveScan(t, mustTime(t, "2026-03-23T07:00:00Z"), []int64{40}, nil)
			conn.answer(gone, tt.status)

			h.tick(t, mustTime(t, "2026-03-23T08:00:10Z"))
			h.tick(t, mustTime(t, "2026-03-30T08:00:10Z"))

			if got := conn.attemptsFor(gone); got != 1 {
				t.Errorf("requests for the gone channel = %d, want 1 (no retry, nothing the next week)", got)
			}
			if got := conn.attemptsFor(kept); got != 2 {
				t.Errorf("requests for the kept channel = %d, want 2 (one per week)", got)
			}
			targets, err := h.service.Targets(context.Background())
			if err != nil {
				t.Fatalf("Targets: %v", err)
			}
			active := map[string]bool{}
			for _, target := range targets {
				active[target.ConversationID] = target.Active()
			}
			if active[gone] || !active[kept] {
				t.Errorf("active targets = %v, want only %s", active, kept)
			}

			// Turning the digest on again makes the target active.
			h.addTarget(t, gone)
			conn.answer(gone, 0)
			report, err := h.service.SendNow(context.Background())
			if err != nil {
				t.Fatalf("SendNow: %v", err)
			}
			if report.Count(Sent) != 1 {
				t.Errorf("SendNow after digest here sent %d, want 1", report.Count(Sent))
			}
		})
	}
}

func TestAlertOncePerCrossing(t *testing.T) {
	conn := newFakeConnector(t)
	c := &clock{}
	// Two Teams of 100 bytes each against a tenant quota of 100 bytes, so
	// the tenant's share is the sum of used bytes in percent.
	h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{thresholds: []float64{80, 95}, tenantQuota: 100})
	h.addTarget(t, "19:general@thread.tacv2")

	start := mustTime(t, "2026-03-25T10:00:00Z")
	steps := []struct {
		name       string
		used       []int64
		states     []string
		wantTenant float64 // 0: no tenant crossing
		wantTeams  int
	}{
		{"baseline", []int64{50, 20}, nil, 0, 0},
		{"cross 80", []int64{60, 25}, nil, 80, 0},
		{"stay above 80", []int64{60, 30}, nil, 0, 0},
		{"team nearing", []int64{60, 30}, []string{"nearing"}, 0, 1},
		{"team stays nearing", []int64{61, 30}, []string{"nearing"}, 0, 0},
		{"drop below 80", []int64{50, 20}, []string{"normal"}, 0, 0},
		{"cross 80 again, team critical", []int64{60, 25}, []string{"critical"}, 80, 1},
		{"jump past 95", []int64{70, 26}, []string{"critical"}, 95, 0},
	}
	for i, step := range steps {
		before := len(conn.posted())
		at := start.Add(time.Duration(i) * time.Hour)
		h.saveScan(t, at, step.used, step.states)
		h.tick(t, at.Add(time.Minute))
		h.tick(t, at.Add(2*time.Minute))

		posted := conn.posted()[before:]
		wantPosts := 0
		if step.wantTenant != 0 || step.wantTeams != 0 {
			wantPosts = 1
		}
		if len(posted) != wantPosts {
			t.Fatalf("step %q: %d alerts posted, want %d", step.name, len(posted), wantPosts)
		}
		if wantPosts == 0 {
			continue
		}
		text := cardText(t, posted[0].Card)
		if step.wantTenant != 0 {
			want := fmt.Sprintf("above the %v%% threshold", step.wantTenant)
			if !strings.Contains(text, want) {
				t.Errorf("step %q: alert does not mention %q:\n%s", step.name, want, text)
			}
		}
		if step.wantTeams != 0 && !strings.Contains(text, "Team 0") {
			t.Errorf("step %q: alert does not name Team 0:\n%s", step.name, text)
		}
	}
}

func TestHandleCommand(t *testing.T) {
	conn := newFakeConnector(t)
	c := &clock{now: mustTime(t, "2026-03-25T10:00:00Z")}
	h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{zone: "Europe/London"})
	channel := channelActivity(conn, "19:general@thread.tacv2")
	personal := schema.Activity{
		ServiceURL:   conn.server.URL,
		Conversation: schema.ConversationAccount{ID: "a:1", ConversationType: "personal", TenantID: testTenant},
	}

	steps := []struct {
		name        string
		args        []string
		activity    schema.Activity
		wantText    string
		wantTargets int
	}{
		{"status without targets", []string{"status"}, channel, "No channel receives the digest", 0},
		{"here in a channel", []string{"here"}, channel, "This channel (IT › Storage) gets the weekly storage digest", 1},
		{"here again", []string{"HERE"}, channel, "gets the weekly storage digest", 1},
		{"status lists it", []string{"status"}, channel, "IT › Storage", 1},
		{"status shows the next run", []string{"status"}, channel, "Mon 2026-03-30 08:00 BST", 1},
		{"here in a personal chat", []string{"here"}, personal, "Send this in a Team channel", 1},
		{"off", []string{"off"}, channel, "no longer gets the digest", 0},
		{"off again", []string{"off"}, channel, "did not get the digest", 0},
		{"no subcommand", nil, channel, "Send digest here", 0},
	}
	for _, step := range steps {
		card, err := h.service.HandleCommand(context.Background(), step.args, step.activity)
		if err != nil {
			t.Fatalf("step %q: %v", step.name, err)
		}
		raw, err := json.Marshal(card)
		if err != nil {
			t.Fatalf("step %q: encode card: %v", step.name, err)
		}
		text, err := cards.PlainText(raw)
		if err != nil {
			t.Fatalf("step %q: card text: %v", step.name, err)
		}
		if !strings.Contains(text, step.wantText) {
			t.Errorf("step %q: reply does not contain %q:\n%s", step.name, step.wantText, text)
		}
		targets, err := h.service.Targets(context.Background())
		if err != nil {
			t.Fatalf("step %q: Targets: %v", step.name, err)
		}
		if len(targets) != step.wantTargets {
			t.Errorf("step %q: %d targets, want %d", step.name, len(targets), step.wantTargets)
		}
	}
}

func TestTargetFromActivity(t *testing.T) {
	base := schema.Activity{
		ID:         "1",
		ServiceURL: "https://smba.trafficmanager.net/emea/",
		Recipient:  schema.ChannelAccount{ID: "28:bot"},
	}
	tests := []struct {
		name        string
		mutate      func(a *schema.Activity)
		wantChannel string
		wantErr     error
	}{
		{
			name: "channel message in a thread",
			mutate: func(a *schema.Activity) {
				a.Conversation = schema.ConversationAccount{ID: "19:c@thread.tacv2;messageid=42", ConversationType: "channel"}
				a.ChannelData = map[string]any{"tenant": map[string]any{"id": testTenant}, "channel": map[string]any{"id": "19:c@thread.tacv2"}}
			},
			wantChannel: "19:c@thread.tacv2",
		},
		{
			name: "installationUpdate without channelData.channel",
			mutate: func(a *schema.Activity) {
				a.Conversation = schema.ConversationAccount{ID: "19:g@thread.tacv2", ConversationType: "channel", TenantID: testTenant}
			},
			wantChannel: "19:g@thread.tacv2",
		},
		{
			name: "personal chat",
			mutate: func(a *schema.Activity) {
				a.Conversation = schema.ConversationAccount{ID: "a:1", ConversationType: "personal", TenantID: testTenant}
			},
			wantErr: ErrNotChannel,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base
			tt.mutate(&a)
			target, err := TargetFromActivity(a, time.Unix(0, 0))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if target.ConversationID != tt.wantChannel || target.TeamsChannelID != tt.wantChannel {
				t.Errorf("channel = %q/%q, want %q", target.ConversationID, target.TeamsChannelID, tt.wantChannel)
			}
			if target.TenantID != testTenant || target.BotID != "28:bot" || !target.Active() {
				t.Errorf("target = %+v, want tenant %s, bot 28:bot, active", target, testTenant)
			}
		})
	}
}

func TestTickRecoversPanic(t *testing.T) {
	conn := newFakeConnector(t)
	c := &clock{now: mustTime(t, "2026-03-23T08:00:10Z")}
	h := newHarness(t, storetest.SQLite(t).URL, conn, c, options{})
	h.addTarget(t, "19:general@thread.tacv2")
	h.service.source = panickingSource{}

	if err := h.service.Tick(context.Background()); err == nil {
		t.Error("Tick returned no error for a panicking source")
	}
}

type panickingSource struct{}

func (panickingSource) Get(context.Context) (*scanner.Result, error) {
	panic("source failed")
}

func cardText(t *testing.T, card map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(card)
	if err != nil {
		t.Fatalf("encode card: %v", err)
	}
	text, err := cards.PlainText(raw)
	if err != nil {
		t.Fatalf("card text: %v", err)
	}
	return text
}
