package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/storagebot/storagebot/scanner"
)

func TestWebhookCountsByStatus(t *testing.T) {
	m := New()
	gin.SetMode(gin.TestMode)
	engine := gin.New()
	webhook := engine.Group("", m.Webhook())
	webhook.POST("/api/messages", func(c *gin.Context) {
		if c.GetHeader("Authorization") == "" {
			c.Status(http.StatusUnauthorized)
			return
		}
		c.Status(http.StatusOK)
	})
	webhook.GET("/export/:file", func(c *gin.Context) { c.Status(http.StatusNotFound) })
	engine.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusOK) })

	requests := []struct {
		method, path, authorization string
	}{
		{http.MethodPost, "/api/messages", "Bearer x"},
		{http.MethodPost, "/api/messages", "Bearer x"},
		{http.MethodPost, "/api/messages", ""},
		{http.MethodGet, "/healthz", ""},
		{http.MethodGet, "/export/scan.csv", ""},
	}
	for _, r := range requests {
		req := httptest.NewRequest(r.method, r.path, nil)
		if r.authorization != "" {
			req.Header.Set("Authorization", r.authorization)
		}
		engine.ServeHTTP(httptest.NewRecorder(), req)
	}

	tests := []struct {
		code string
		want float64
	}{
		{"200", 2},
		{"401", 1},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := testutil.ToFloat64(m.webhookRequests.WithLabelValues(tt.code)); got != tt.want {
				t.Errorf("webhook requests with code %s = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
	if got := testutil.CollectAndCount(m.webhookRequests); got != 2 {
		t.Errorf("webhook request series = %d, want 2: /healthz and GET requests must not be counted", got)
	}
	if got := testutil.CollectAndCount(m.webhookDuration); got != 2 {
		t.Errorf("webhook duration series = %d, want one per status code (2)", got)
	}
}

func TestGraphTransportCountsByStatus(t *testing.T) {
	m := New()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/throttled" {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, "{}")
	}))
	defer server.Close()
	client := &http.Client{Transport: m.GraphTransport(nil)}

	for _, path := range []string{"/ok", "/ok", "/throttled"} {
		resp, err := client.Get(server.URL + path)
		if err != nil {
			t.Fatalf("get %s: %v", path, err)
		}
		resp.Body.Close()
	}
	server.Close()
	if resp, err := client.Get(server.URL + "/ok"); err == nil {
		resp.Body.Close()
		t.Fatal("get from a closed server succeeded")
	}

	tests := []struct {
		code string
		want float64
	}{
		{"200", 2},
		{"429", 1},
		{statusNetworkError, 1},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := testutil.ToFloat64(m.graphRequests.WithLabelValues(tt.code)); got != tt.want {
				t.Errorf("graph requests with code %s = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

// The connector transport counts each failure by status and Bot Framework
// error code, and the client still reads the whole error body.
func TestConnectorTransportCountsErrorCodes(t *testing.T) {
	roster := `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`
	bodies := map[string]struct {
		status int
		body   string
	}{
		"/ok":       {http.StatusCreated, `{"id":"1"}`},
		"/roster":   {http.StatusForbidden, roster},
		"/plain":    {http.StatusBadGateway, "upstream failed"},
		"/injected": {http.StatusBadRequest, `{"error":{"code":"a b\nc","message":"x"}}`},
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := bodies[r.URL.Path]
		w.WriteHeader(answer.status)
		io.WriteString(w, answer.body)
	}))
	defer server.Close()
	m := New()
	client := &http.Client{Transport: m.ConnectorTransport(nil)}

	for _, path := range []string{"/ok", "/roster", "/roster", "/plain", "/injected"} {
		resp, err := client.Get(server.URL + path)
		if err != nil {
			t.Fatalf("get %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if string(body) != bodies[path].body {
			t.Errorf("body of %s = %q, want the server's %q", path, body, bodies[path].body)
		}
	}

	tests := []struct {
		code, errorCode string
		want            float64
	}{
		{"403", "BotNotInConversationRoster", 2},
		{"502", codeNone, 1},
		{"400", codeNone, 1},
	}
	for _, tt := range tests {
		t.Run(tt.code+" "+tt.errorCode, func(t *testing.T) {
			if got := testutil.ToFloat64(m.connectorErrors.WithLabelValues(tt.code, tt.errorCode)); got != tt.want {
				t.Errorf("connector errors{%s,%s} = %v, want %v", tt.code, tt.errorCode, got, tt.want)
			}
		})
	}
	if got := testutil.CollectAndCount(m.connectorErrors); got != 3 {
		t.Errorf("connector error series = %d, want 3: a success is not an error", got)
	}
}

func TestScanRecordsResultAndOutcomes(t *testing.T) {
	complete := &scanner.Result{Teams: []scanner.TeamUsage{
		{Outcome: scanner.OutcomeMeasured},
		{Outcome: scanner.OutcomeMeasured},
		{Outcome: scanner.OutcomeFailed},
	}}
	tests := []struct {
		name       string
		result     *scanner.Result
		err        error
		wantResult string
	}{
		{"complete", complete, nil, scanComplete},
		{"failed", nil, errors.New("list teams: HTTP 403"), scanFailed},
		{"canceled", nil, context.Canceled, scanCanceled},
	}
	m := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scan := m.Scan(func(context.Context) (*scanner.Result, error) { return tt.result, tt.err })
			result, err := scan(t.Context())
			if result != tt.result || !errors.Is(err, tt.err) {
				t.Errorf("wrapped scan returned %v, %v; want the scan's %v, %v", result, err, tt.result, tt.err)
			}
			if got := histogramCount(t, m, "storagebot_scan_duration_seconds", tt.wantResult); got != 1 {
				t.Errorf("scan durations with result %s = %d, want 1", tt.wantResult, got)
			}
		})
	}

	outcomes := []struct {
		outcome scanner.Outcome
		want    float64
	}{
		{scanner.OutcomeMeasured, 2},
		{scanner.OutcomeFailed, 1},
		{scanner.OutcomeForbidden, 0},
	}
	for _, tt := range outcomes {
		if got := testutil.ToFloat64(m.scanTeams.WithLabelValues(string(tt.outcome))); got != tt.want {
			t.Errorf("scan teams %s = %v, want %v", tt.outcome, got, tt.want)
		}
	}
}

func TestHooksAndDigestsCount(t *testing.T) {
	m := New()
	var graph scanner.Hooks = m.GraphHooks()
	graph.Throttled()
	graph.Retried()
	graph.Retried()
	cache := m.CacheHooks()
	cache.CacheHit()
	cache.CacheHit()
	cache.CacheMiss()
	m.DigestSent()

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"throttles", testutil.ToFloat64(m.graphThrottles), 1},
		{"retries", testutil.ToFloat64(m.graphRetries), 2},
		{"cache hits", testutil.ToFloat64(m.snapshotGets.WithLabelValues("hit")), 2},
		{"cache misses", testutil.ToFloat64(m.snapshotGets.WithLabelValues("miss")), 1},
		{"digests", testutil.ToFloat64(m.digestsSent), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
}

// The handler serves every storagebot metric in the text format, with
// HELP lines, once each counter has a value.
func TestHandlerServesTextFormat(t *testing.T) {
	m := New()
	m.DigestSent()
	m.GraphHooks().Retried()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"# HELP storagebot_digests_sent_total ",
		"storagebot_digests_sent_total 1",
		"storagebot_graph_retries_total 1",
		`storagebot_scan_cache_requests_total{result="hit"} 0`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}

// histogramCount returns the sample count of the histogram series named
// name whose one label has the value label.
func histogramCount(t *testing.T, m *Metrics, name, label string) uint64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, metric := range family.GetMetric() {
			if labels := metric.GetLabel(); len(labels) == 1 && labels[0].GetValue() == label {
				return metric.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}
