// Package metrics owns storagebot's Prometheus metrics: their registry, the
// /metrics handler, and the wrappers that count the webhook, Graph, the Bot
// Connector and scans from the outside.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric name.
const namespace = "storagebot"

// Label values used where no HTTP status or error code exists.
const (
	// statusNetworkError is the status label of a request that got no
	// response.
	statusNetworkError = "network_error"
	// codeNone is the code label of an error response without a Bot
	// Framework error code, or with one that is not a plain identifier.
	codeNone = "none"
)

// Scan results, the values of the result label of the scan metrics.
const (
	scanComplete = "complete"
	scanFailed   = "failed"
	scanCanceled = "canceled"
)

// Metrics holds storagebot's collectors in a registry of its own, so that
// tests and several servers in one process do not share counts. Its methods
// are safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	webhookRequests *prometheus.CounterVec
	webhookDuration *prometheus.HistogramVec
	graphRequests   *prometheus.CounterVec
	graphThrottles  prometheus.Counter
	graphRetries    prometheus.Counter
	scanDuration    *prometheus.HistogramVec
	scanTeams       *prometheus.GaugeVec
	snapshotGets    *prometheus.CounterVec
	connectorErrors *prometheus.CounterVec
	digestsSent     prometheus.Counter
}

// New returns Metrics with every collector registered, together with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "webhook_requests_total",
			Help:      "Requests to the messaging endpoint POST /api/messages, by HTTP status code of the answer.",
		}, []string{"code"}),
		webhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "webhook_request_duration_seconds",
			Help:      "Time from a webhook request's arrival to its answer, by HTTP status code. Replies are sent in the background and are not included.",
			Buckets:   []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15},
		}, []string{"code"}),
		graphRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "graph_requests_total",
			Help:      "HTTP requests to Microsoft Graph, by status code (network_error when no response came). A JSON batch counts once.",
		}, []string{"code"}),
		graphThrottles: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "graph_throttled_total",
			Help:      "Graph answers throttled with 429 or 503, counting each item of a JSON batch.",
		}),
		graphRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "graph_retries_total",
			Help:      "Graph requests and JSON batch items sent again after a failed attempt.",
		}),
		scanDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "scan_duration_seconds",
			Help:      "Duration of tenant scans, by result: complete, failed or canceled.",
			Buckets:   []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800},
		}, []string{"result"}),
		scanTeams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "scan_teams",
			Help:      "Teams in the last complete scan of this process, by outcome.",
		}, []string{"outcome"}),
		snapshotGets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "scan_cache_requests_total",
			Help:      "Requests for the latest scan, by result: hit when a stored scan younger than STORAGEBOT_SCAN_TTL answered, miss when a new scan was awaited.",
		}, []string{"result"}),
		connectorErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "connector_errors_total",
			Help:      "Failed Bot Connector requests, by HTTP status code (network_error when no response came) and Bot Framework error code.",
		}, []string{"code", "error_code"}),
		digestsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "digests_sent_total",
			Help:      "Scheduled storage digests sent to a conversation.",
		}),
	}

	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.webhookRequests,
		m.webhookDuration,
		m.graphRequests,
		m.graphThrottles,
		m.graphRetries,
		m.scanDuration,
		m.scanTeams,
		m.snapshotGets,
		m.connectorErrors,
		m.digestsSent,
	)
	m.snapshotGets.WithLabelValues("hit")
	m.snapshotGets.WithLabelValues("miss")
	return m
}

// Handler returns the /metrics handler in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry returns the registry behind Handler.
func (m *Metrics) Registry() *prometheus.Registry {
	return m.registry
}

// DigestSent counts one storage digest sent to a conversation. serve
// passes it to the digest service as its OnSent hook.
func (m *Metrics) DigestSent() {
	m.digestsSent.Inc()
}

// GraphHooks returns the scanner.Hooks that count throttles and retries.
func (m *Metrics) GraphHooks() GraphHooks {
	return GraphHooks{m: m}
}

// GraphHooks counts the Graph retry gate's events. It implements
// scanner.Hooks.
type GraphHooks struct {
	m *Metrics
}

// Throttled counts one throttled Graph response.
func (h GraphHooks) Throttled() { h.m.graphThrottles.Inc() }

// Retried counts one Graph request or batch item sent again.
func (h GraphHooks) Retried() { h.m.graphRetries.Inc() }

// CacheHooks returns the snapshot.Hooks that count cache hits and misses.
func (m *Metrics) CacheHooks() CacheHooks {
	return CacheHooks{m: m}
}

// CacheHooks counts the scan cache's hits and misses. It implements
// snapshot.Hooks.
type CacheHooks struct {
	m *Metrics
}

// CacheHit counts one request served from a fresh stored scan.
func (h CacheHooks) CacheHit() { h.m.snapshotGets.WithLabelValues("hit").Inc() }

// CacheMiss counts one request that waited for a new scan.
func (h CacheHooks) CacheMiss() { h.m.snapshotGets.WithLabelValues("miss").Inc() }
