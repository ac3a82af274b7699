package bot

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/roles"
	"github.com/storagebot/storagebot/scanner"
)

// exportKey is the signing key of the export tests.
var exportKey = []byte("0123456789abcdef0123456789abcdef")

// settableClock is a clock that tests move by hand.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeTimers records every wait the bot starts and lets the test end it.
type fakeTimers struct {
	waits chan chan time.Time
}

func newFakeTimers() *fakeTimers {
	return &fakeTimers{waits: make(chan chan time.Time, 64)}
}

func (f *fakeTimers) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.waits <- ch
	return ch
}

// next returns the next wait the bot started, failing after waitLimit.
func (f *fakeTimers) next(t *testing.T) chan time.Time {
	t.Helper()
	select {
	case ch := <-f.waits:
		return ch
	case <-time.After(waitLimit):
		t.Fatal("the bot started no wait")
		return nil
	}
}

// progressSource is a Source whose Refresh blocks until release and whose
// progress the test sets.
type progressSource struct {
	result  *scanner.Result
	release chan struct{}

	mu                   sync.Mutex
	done, discovered     int
	running              bool
	refreshes, getsBlock int
}

func (s *progressSource) Get(ctx context.Context) (*scanner.Result, error) {
	s.mu.Lock()
	block := s.getsBlock > 0
	if block {
		s.getsBlock--
	}
	s.mu.Unlock()
	if block {
		return s.wait(ctx)
	}
	return s.result, nil
}

func (s *progressSource) Refresh(ctx context.Context) (*scanner.Result, error) {
	s.mu.Lock()
	s.refreshes++
	s.mu.Unlock()
	return s.wait(ctx)
}

// wait returns the result once release is closed; a nil release does not
// block.
func (s *progressSource) wait(ctx context.Context) (*scanner.Result, error) {
	if s.release == nil {
		return s.result, nil
	}
	select {
	case <-s.release:
		return s.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *progressSource) ScanProgress() (int, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done, s.discovered, s.running
}

func (s *progressSource) set(done, discovered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done, s.discovered, s.running = done, discovered, true
}

func plainText(t *testing.T, card json.RawMessage) string {
	t.Helper()
	text, err := cards.PlainText(card)
	if err != nil {
		t.Fatalf("read card text: %v", err)
	}
	return text
}

// nextCard returns the method of the next connector request and its card.
func (h *harness) nextCard(t *testing.T) (string, json.RawMessage) {
	t.Helper()
	r := h.connector.next(t)
	return r.method, decodeReply(t, r).Attachments[0].Content
}

func TestRefreshUpdatesProgressCard(t *testing.T) {
	clock := &settableClock{now: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}
	timers := newFakeTimers()
	source := &progressSource{result: testResult(), release: make(chan struct{})}
	h := newHarness(t, nil, func(c *Config) {
		c.Source = source
		c.Now = clock.Now
		c.After = timers.After
	})

	h.post(t, encode(t, h.messageFrom(t, adminUser, "refresh")), "")
	timers.next(t) // the progress delay, which refresh does not wait for
	method, card := h.nextCard(t)
	if method != http.MethodPost {
		t.Errorf("progress card sent with %s, want POST", method)
	}
	if text := plainText(t, card); !strings.Contains(text, "Scanning the tenant again") {
		t.Errorf("first reply is not the progress card:\n%s", text)
	}

	steps := []struct {
		advance          time.Duration
		done, discovered int
		want             string
	}{
		{advance: 3 * time.Second, done: 312, discovered: 535, want: "312 of 535 Teams, about 2 s left."},
		{advance: time.Second, done: 500, discovered: 535, want: "500 of 535 Teams, about 1 s left."},
	}
	for _, s := range steps {
		tick := timers.next(t)
		source.set(s.done, s.discovered)
		clock.Advance(s.advance)
		tick <- time.Time{}

		method, card := h.nextCard(t)
		if method != http.MethodPut {
			t.Errorf("progress update sent with %s, want PUT", method)
		}
		if text := plainText(t, card); !strings.Contains(text, s.want) {
			t.Errorf("progress update has no %q:\n%s", s.want, text)
		}
	}

	tick := timers.next(t)
	tick <- time.Time{} // an unchanged card is not sent again
	timers.next(t)
	close(source.release)
	method, card = h.nextCard(t)
	if method != http.MethodPut {
		t.Errorf("answer sent with %s, want PUT in place of the progress card", method)
	}
	assertCard(t, card, cards.Top(testResult(), 10))

	h.shutdown(t)
	if got := h.connector.received(); got != 4 {
		t.Errorf("connector received %d requests, want 4: the progress card, 2 updates and the answer", got)
	}
}

func TestSlowAnswerGetsProgressCard(t *testing.T) {
	timers := newFakeTimers()
	source := &progressSource{result: testResult(), release: make(chan struct{}), getsBlock: 1}
	h := newHarness(t, nil, func(c *Config) {
		c.Source = source
		c.After = timers.After
	})

	h.post(t, encode(t, h.messageFrom(t, adminUser, "top 3")), "")
	timers.next(t) <- time.Time{} // the answer is not ready within the delay
	method, card := h.nextCard(t)
	if text := plainText(t, card); method != http.MethodPost || !strings.Contains(text, "Reading the latest scan") {
		t.Errorf("first reply = %s of\n%s\nwant POST of the progress card", method, text)
	}

	timers.next(t)
	close(source.release)
	method, card = h.nextCard(t)
	if method != http.MethodPut {
		t.Errorf("answer sent with %s, want PUT", method)
	}
	assertCard(t, card, topPage(testResult(), 3))
}

func TestFastAnswerHasNoProgressCard(t *testing.T) {
	timers := newFakeTimers()
	h := newHarness(t, nil, func(c *Config) { c.After = timers.After })

	card := h.replyCard(t, h.messageFrom(t, adminUser, "top 3"))
	assertCard(t, card, topPage(testResult(), 3))
	h.shutdown(t)
	if got := h.connector.received(); got != 1 {
		t.Errorf("connector received %d requests, want only the answer", got)
	}
}

// fakeHistory returns fixed growth for any period of at least fromDays.
type fakeHistory struct {
	fromDays int
	growth   Growth
	now      time.Time
	scan     *scanner.Result
}

func (h *fakeHistory) Growth(_ context.Context, since time.Time) (Growth, error) {
	if h.now.Sub(since) > time.Duration(h.fromDays)*day {
		return Growth{}, fmt.Errorf("growth since %s: %w", since, ErrNoHistory)
	}
	return h.growth, nil
}

func (h *fakeHistory) ScanAt(_ context.Context, t time.Time) (*scanner.Result, error) {
	if h.scan == nil || h.scan.FinishedAt.After(t) {
		return nil, fmt.Errorf("scan at %s: %w", t, ErrNoHistory)
	}
	return h.scan, nil
}

// ownerRoles is schoolRoles that also lists owners.
type ownerRoles struct {
	*fakeRoles
	owners map[string][]roles.Owner
	err    error
}

func (r *ownerRoles) Owners(_ context.Context, teamID string) ([]roles.Owner, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.owners[teamID], nil
}

func TestCommandsPerRole(t *testing.T) {
	now := time.Date(2026, 12, 4, 19, 30, 0, 0, time.UTC)
	result := testResult()
	history := &fakeHistory{fromDays: 7, now: now, growth: Growth{Tenant: 2 << 30, Teams: map[string]int64{"g-bob": 1 << 20}}}
	directory := &ownerRoles{fakeRoles: schoolRoles(), owners: map[string][]roles.Owner{
		"g-mkt": {{ID: adminUser, DisplayName: "Alex Wilber"}},
		"g-bob": {{ID: ownerUser, DisplayName: "Megan Bowen"}},
	}}
	adminsOnly := func(verb string) cards.AdaptiveCard { return adminsOnlyCard(verb) }
	withOwners := func(n, offset int, owners map[string][]string) cards.AdaptiveCard {
		return cards.TopPage(result, cards.TopOptions{N: n, Offset: offset, Paging: true, Owners: owners})
	}
	bobDetails := cards.UsageDetails{OwnersKnown: true, Owners: []string{"Megan Bowen"}, Changes: []cards.Change{
		{Days: 7, Known: true, Bytes: 1 << 20}, {Days: 30},
	}}

	tests := []struct {
		name  string
		user  string
		text  string
		value map[string]any
		want  cards.AdaptiveCard
	}{
		{name: "admin summary", user: adminUser, text: "summary", want: cards.Summary(result, cards.SummaryDetails{
			QuotaHint: quotaHint, WeekChange: cards.Change{Days: 7, Known: true, Bytes: 2 << 30},
		})},
		{name: "owner summary refused", user: ownerUser, text: "summary", want: adminsOnly("summary")},
		{name: "no role summary refused", user: noRoleUser, text: "summary", want: noRoleCard},
		{name: "admin top with owners", user: adminUser, text: "top 2", want: withOwners(2, 0, map[string][]string{"g-mkt": {"Alex Wilber"}, "g-lib-1": {}})},
		{name: "admin next page", user: adminUser, value: map[string]any{"cmd": "top", "n": 2, "offset": 2}, want: withOwners(2, 2, map[string][]string{"g-lib-2": {}, "g-cafe": {}})},
		{name: "forged offset ignored", user: adminUser, value: map[string]any{"cmd": "top", "n": 2, "offset": -5}, want: withOwners(2, 0, map[string][]string{"g-mkt": {"Alex Wilber"}, "g-lib-1": {}})},
		{name: "owner top refused", user: ownerUser, text: "top 10", want: adminsOnly("top")},
		{name: "owner usage with details", user: ownerUser, text: "usage bob", want: cards.UsageDetail(teamByID(t, result, "g-bob"), result, bobDetails)},
		{name: "owner export refused", user: ownerUser, text: "export", want: adminsOnly("export")},
		{name: "owner help", user: ownerUser, text: "help", want: cards.Help(commandsFor(ownerOf("g-bob")))},
		{name: "admin help lists every command", user: adminUser, text: "help", want: cards.Help(Commands())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, func(c *Config) {
				c.Roles = directory
				c.History = history
				c.Now = func() time.Time { return now }
			})
			a := h.messageFrom(t, tt.user, tt.text)
			if tt.value != nil {
				a["text"] = ""
				a["value"] = tt.value
			}
			assertCard(t, h.replyCard(t, a), tt.want)
		})
	}
}

func TestHelpListsCommandsPerRole(t *testing.T) {
	admin := commandsFor(asker{admin: true})
	owner := commandsFor(ownerOf("g-bob"))
	usages := func(cs []cards.Command) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Usage)
		}
		return strings.Join(out, ", ")
	}
	if got, want := usages(admin), "top [N] [teams], summary, my teams, usage <team name>, refresh, export, help"; got != want {
		t.Errorf("admin commands = %s, want %s", got, want)
	}
	if got, want := usages(owner), "my teams, usage <team name>, help"; got != want {
		t.Errorf("owner commands = %s, want %s", got, want)
	}
}

func TestOwnerLookupFailureLeavesLinesOut(t *testing.T) {
	directory := &ownerRoles{fakeRoles: allAdmins(), err: errors.New("graph unavailable")}
	h := newHarness(t, nil, func(c *Config) { c.Roles = directory })

	card := h.replyCard(t, h.messageFrom(t, adminUser, "top 3"))
	assertCard(t, card, topPage(testResult(), 3))
	if !strings.Contains(h.logs.String(), "owner lookups failed") {
		t.Errorf("failed owner lookups not logged:\n%s", h.logs.String())
	}
}

// exportHarness is a bot with export on, a settable clock and History
// that holds the test result.
func exportHarness(t *testing.T, clock *settableClock) *harness {
	t.Helper()
	return newHarness(t, nil, func(c *Config) {
		c.Now = clock.Now
		c.History = &fakeHistory{now: clock.Now(), scan: testResult()}
		c.Export = ExportConfig{Key: exportKey, BaseURL: "https://bot.example/"}
	})
}

// exportLinkFrom returns the URL of the download button of an export card.
func exportLinkFrom(t *testing.T, card json.RawMessage) string {
	t.Helper()
	var c struct {
		Body []struct {
			Type    string `json:"type"`
			Actions []struct {
				Type string `json:"type"`
				URL  string `json:"url"`
			} `json:"actions"`
		} `json:"body"`
	}
	if err := json.Unmarshal(card, &c); err != nil {
		t.Fatalf("decode export card: %v", err)
	}
	for _, e := range c.Body {
		for _, a := range e.Actions {
			if a.Type == "Action.OpenUrl" {
				return a.URL
			}
		}
	}
	t.Fatalf("export card has no download button: %s", card)
	return ""
}

func (h *harness) download(t *testing.T, link string) *httptest.ResponseRecorder {
	t.Helper()
	path := strings.TrimPrefix(link, "https://bot.example")
	rec := httptest.NewRecorder()
	h.engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestExportLinkDownloadsOnce(t *testing.T) {
	clock := &settableClock{now: time.Date(2026, 12, 4, 19, 30, 0, 0, time.UTC)}
	h := exportHarness(t, clock)

	link := exportLinkFrom(t, h.replyCard(t, h.messageFrom(t, adminUser, "export")))
	if !strings.HasPrefix(link, "https://bot.example/export/") || !strings.HasSuffix(link, ".csv") {
		t.Fatalf("link = %q, want https://bot.example/export/….csv", link)
	}

	first := h.download(t, link)
	if first.Code != http.StatusOK {
		t.Fatalf("first download status = %d, want 200; body %s", first.Code, first.Body)
	}
	if ct := first.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type = %q, want text/csv", ct)
	}
	if cc := first.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	rows, err := csv.NewReader(first.Body).ReadAll()
	if err != nil {
		t.Fatalf("read CSV: %v", err)
	}
	if len(rows) != len(testResult().Teams)+1 || rows[1][1] != "Marketing" {
		t.Errorf("CSV has %d rows starting %v, want a header and %d Teams, Marketing first", len(rows), rows[:min(2, len(rows))], len(testResult().Teams))
	}

	second := h.download(t, link)
	if second.Code != http.StatusGone {
		t.Errorf("second download status = %d, want 410", second.Code)
	}
	if strings.Contains(h.logs.String(), strings.TrimPrefix(link, "https://bot.example/export/")) {
		t.Error("the log contains the download link")
	}
}

func TestExportLinkRefusals(t *testing.T) {
	start := time.Date(2026, 12, 4, 19, 30, 0, 0, time.UTC)
	tests := []struct {
		name     string
		edit     func(t *testing.T, link string, h *harness, clock *settableClock) string
		wantCode int
	}{
		{
			name: "expired",
			edit: func(_ *testing.T, link string, _ *harness, clock *settableClock) string {
				clock.Advance(DefaultExportTTL)
				return link
			},
			wantCode: http.StatusGone,
		},
		{
			name: "signature changed",
			edit: func(_ *testing.T, link string, _ *harness, _ *settableClock) string {
				i := strings.LastIndex(link, ".csv") - 1
				flipped := byte('A')
				if link[i] == 'A' {
					flipped = 'B'
				}
				return link[:i] + string(flipped) + link[i:][1:]
			},
			wantCode: http.StatusForbidden,
		},
		{
			name: "payload changed",
			edit: func(_ *testing.T, link string, h *harness, _ *settableClock) string {
				payload, _ := json.Marshal(exportLink{TenantID: servedTenant, Expires: start.Add(time.Hour).Unix(), ID: "forged"})
				_, mac, _ := strings.Cut(strings.TrimPrefix(link, "https://bot.example/export/"), ".")
				return "https://bot.example/export/" + base64URL(payload) + "." + mac
			},
			wantCode: http.StatusForbidden,
		},
		{
			name: "foreign tenant",
			edit: func(_ *testing.T, _ string, h *harness, _ *settableClock) string {
				link, _, err := h.bot.newExportLink("11111111-0000-0000-0000-000000000000", testResult().FinishedAt)
				if err != nil {
					panic(err)
				}
				return link
			},
			wantCode: http.StatusForbidden,
		},
		{
			name: "not a csv path",
			edit: func(_ *testing.T, link string, _ *harness, _ *settableClock) string {
				return strings.TrimSuffix(link, ".csv")
			},
			wantCode: http.StatusForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &settableClock{now: start}
			h := exportHarness(t, clock)
			link := exportLinkFrom(t, h.replyCard(t, h.messageFrom(t, adminUser, "export")))

			rec := h.download(t, tt.edit(t, link, h, clock))
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			if body, _ := io.ReadAll(rec.Body); strings.Contains(string(body), "team_id") {
				t.Errorf("refused download carries CSV: %s", body)
			}
		})
	}
}

func TestExportOnlyInPersonalChat(t *testing.T) {
	clock := &settableClock{now: time.Date(2026, 12, 4, 19, 30, 0, 0, time.UTC)}
	h := exportHarness(t, clock)
	a := loadActivity(t, "channel-mention-message.json", h.connector.server.URL)
	a["text"] = "export"
	a["entities"] = nil
	setUser(a, adminUser)

	card := h.replyCard(t, a)
	assertCard(t, card, cards.Message("Export", "Send export in a personal chat with me, so that the download link reaches only you."))
}

func TestNewRejectsInvalidExportConfig(t *testing.T) {
	tests := []struct {
		name   string
		export ExportConfig
	}{
		{"short key", ExportConfig{Key: []byte("short"), BaseURL: "https://bot.example"}},
		{"relative base URL", ExportConfig{Key: exportKey, BaseURL: "/bot"}},
		{"other scheme", ExportConfig{Key: exportKey, BaseURL: "ftp://bot.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{
				TenantIDs: []string{servedTenant}, LocalDevelopment: true,
				Source: &fakeSource{}, Roles: allAdmins(), Connector: newHarness(t, nil, nil).bot.connector,
				Export: tt.export,
			})
			if err == nil {
				t.Error("New accepted the export config, want an error")
			}
		})
	}
}

func base64URL(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}
