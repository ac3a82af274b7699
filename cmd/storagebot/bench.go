package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/storagebot/storagebot/entra"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/simtenant"
)

const benchSynopsis = `Measures three scanners against the simulated tenant, each in a child process
of its own so that its peak RSS is its own: the one-by-one script's approach
(sequential, no retry), the fire-everything approach (one goroutine per Team,
no limit, no retry) and storagebot. The sim runs in this process, on
127.0.0.1. Prints a Markdown table: wall time, Graph HTTP requests counted at
the sim, Teams lost, and peak RSS.`

// Scanner names of the bench, also the child's --child value.
const (
	benchOneByOne       = "one-by-one"
	benchFireEverything = "fire-everything"
	benchStoragebot     = "storagebot"
)

// benchGenerateSeed fixes the Teams of the large scenarios.
const benchGenerateSeed = 4242

// benchScenario is one tenant and throttle that every scanner of the row
// set runs against.
type benchScenario struct {
	name    string
	summary string
	teams   int
	latency time.Duration
	// rps and burst configure the request bucket, and cap the concurrency
	// cap, whose Retry-After is 1 s. Zero turns them off.
	rps      float64
	burst    int
	cap      int
	scanners []benchScanner
}

// benchScanner is one child run: a scanner and whether storagebot also
// measures channel sites.
type benchScanner struct {
	name     string
	channels bool
	// skip, when set, is why this scanner is not run, printed instead of a
	// result.
	skip string
}

// benchResult is the JSON line that a child prints on stdout.
type benchResult struct {
	Teams       int     `json:"teams"`
	Definitive  int     `json:"definitive"`
	WallSeconds float64 `json:"wallSeconds"`
	// PeakRSSKiB is the child's VmHWM from /proc/self/status, read at its
	// end. The rusage of a child on Linux may count the parent's RSS at fork
	// time, which here includes the sim, so the child reports its own.
	PeakRSSKiB int64 `json:"peakRssKiB"`
}

func benchScenarios(latency, memoryLatency time.Duration) []benchScenario {
	all := []benchScanner{{name: benchOneByOne}, {name: benchFireEverything}, {name: benchStoragebot}, {name: benchStoragebot, channels: true}}
	return []benchScenario{
		{name: "S1", summary: "535 teams, no throttling", teams: simtenant.SchoolTeamCount, latency: latency, scanners: all},
		{name: "S2", summary: "535 teams, 100 requests/s bucket, 50 concurrent, 429 with Retry-After", teams: simtenant.SchoolTeamCount, latency: latency, rps: 100, burst: 100, cap: 50, scanners: all},
		{name: "S3", summary: "20,000 teams under the S2 throttle", teams: 20_000, latency: latency, rps: 100, burst: 100, cap: 50, scanners: []benchScanner{
			{name: benchOneByOne, skip: "not run: 20,000 × 0.348 s is about 1 h 56 min"},
			{name: benchFireEverything},
			{name: benchStoragebot},
		}},
		{name: "M", summary: fmt.Sprintf("100,000 teams for memory, no throttling, %s per request", memoryLatency), teams: 100_000, latency: memoryLatency, scanners: []benchScanner{
			{name: benchStoragebot},
		}},
	}
}

func runBench(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench [flags]", benchSynopsis, stderr)
	only := fs.String("scenarios", "S1,S2,S3,M", "comma-separated scenarios to run: S1, S2, S3 and M (100,000 teams)")
	latency := fs.Duration("latency", 348*time.Millisecond, "simulated Graph latency per request in S1 to S3")
	memoryLatency := fs.Duration("memory-latency", 50*time.Millisecond, "simulated Graph latency per request in the 100,000-team scenario")
	child := fs.String("child", "", "internal: run one scanner against BENCH_GRAPH_URL and print its result")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *child != "" {
		return runBenchChild(ctx, *child, env, stdout)
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	wanted := map[string]bool{}
	for _, name := range strings.Split(*only, ",") {
		wanted[strings.TrimSpace(name)] = true
	}

	fmt.Fprintf(stdout, "| Scenario | Scanner | Wall time | Graph HTTP requests | Teams lost | Peak RSS |\n")
	fmt.Fprintf(stdout, "|---|---|---:|---:|---:|---:|\n")
	for _, sc := range benchScenarios(*latency, *memoryLatency) {
		if !wanted[sc.name] {
			continue
		}
		groups := simtenant.School()
		if sc.teams != simtenant.SchoolTeamCount {
			groups = simtenant.Generate(sc.teams, benchGenerateSeed)
		}
		for _, bs := range sc.scanners {
			label := bs.name
			if bs.channels {
				label += " + channel sites"
			}
			if bs.skip != "" {
				fmt.Fprintf(stdout, "| %s | %s | %s | | | |\n", sc.name, label, bs.skip)
				continue
			}
			row, err := benchRun(ctx, self, sc, bs, groups)
			if err != nil {
				return fmt.Errorf("bench %s %s: %w", sc.name, label, err)
			}
			fmt.Fprintf(stdout, "| %s | %s | %s |\n", sc.name, label, row)
		}
	}
	return nil
}

// benchRun starts a fresh sim for one scanner, runs the scanner in a child
// process and returns its table cells.
func benchRun(ctx context.Context, self string, sc benchScenario, bs benchScanner, groups []simtenant.Group) (string, error) {
	sim, err := simtenant.Start(simtenant.Options{Groups: groups, Latency: sc.latency})
	if err != nil {
		return "", fmt.Errorf("start simulated tenant: %w", err)
	}
	defer sim.Close()
	if sc.rps > 0 {
		sim.SetThrottle(sc.rps, sc.burst, 0)
	}
	if sc.cap > 0 {
		sim.SetConcurrencyCap(sc.cap, time.Second)
	}

	dir, err := os.MkdirTemp("", "storagebot-bench-")
	if err != nil {
		return "", fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	caFile := filepath.Join(dir, "sim.pem")
	if err := os.WriteFile(caFile, sim.CertPEM(), 0o600); err != nil {
		return "", fmt.Errorf("write sim certificate: %w", err)
	}

	cmd := exec.CommandContext(ctx, self, "bench", "--child", bs.name)
	cmd.Env = append(os.Environ(),
		"BENCH_GRAPH_URL="+sim.GraphURL(),
		"BENCH_AUTHORITY_HOST="+sim.AuthorityHost(),
		"BENCH_CA_FILE="+caFile,
		fmt.Sprintf("BENCH_CHANNEL_SITES=%t", bs.channels),
	)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("run child: %w", err)
	}
	var res benchResult
	if err := json.Unmarshal(out, &res); err != nil {
		return "", fmt.Errorf("decode child result %q: %w", out, err)
	}

	stats := sim.Stats()
	graphRequests := stats.HTTPRequests - stats.Total(simtenant.RouteToken) - stats.Total(simtenant.RouteOpenIDConfiguration) - stats.Total(simtenant.RouteKeys)
	lost := sc.teams - res.Definitive
	return fmt.Sprintf("%.2f s | %d | %d | %.1f MiB", res.WallSeconds, graphRequests, lost, float64(res.PeakRSSKiB)/1024), nil
}

// runBenchChild runs one scanner and prints a benchResult.
func runBenchChild(ctx context.Context, name string, env Env, stdout io.Writer) error {
	get := func(key string) string { v, _ := env.Lookup(key); return v }
	client, err := benchHTTPClient(get("BENCH_CA_FILE"))
	if err != nil {
		return err
	}

	started := time.Now()
	tokens, err := entra.New(entra.Config{
		AuthorityHost: get("BENCH_AUTHORITY_HOST"),
		TenantID:      simtenant.PlaygroundTenantID,
		ClientID:      simtenant.DefaultClientID,
		ClientSecret:  simtenant.DefaultClientSecret,
		Scope:         graphScope,
		HTTPClient:    client,
	})
	if err != nil {
		return err
	}
	graphURL := get("BENCH_GRAPH_URL")

	var res benchResult
	switch name {
	case benchStoragebot:
		res, err = benchStoragebotScan(ctx, graphURL, tokens, client, get("BENCH_CHANNEL_SITES") == "true")
	case benchOneByOne, benchFireEverything:
		res, err = benchNaiveScan(ctx, graphURL, tokens, client, name == benchFireEverything)
	default:
		return fmt.Errorf("%w: unknown bench scanner %q", errUsage, name)
	}
	if err != nil {
		return err
	}
	res.WallSeconds = time.Since(started).Seconds()
	if res.PeakRSSKiB, err = peakRSS(); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// peakRSS returns the process's peak resident set size (VmHWM) in KiB.
func peakRSS() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("read peak RSS: /proc/self/status has no VmHWM line")
}

func benchStoragebotScan(ctx context.Context, graphURL string, tokens entra.TokenSource, client *http.Client, channels bool) (benchResult, error) {
	s, err := scanner.New(scanner.Config{
		BaseURL:      graphURL,
		Tokens:       tokens,
		HTTPClient:   client,
		Version:      version,
		ChannelSites: channels,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return benchResult{}, err
	}
	result, err := s.Scan(ctx)
	if err != nil {
		return benchResult{}, err
	}
	definitive := result.Count(scanner.OutcomeMeasured) + result.Count(scanner.OutcomeUnknown) + result.Count(scanner.OutcomeNoDrive)
	return benchResult{Teams: len(result.Teams), Definitive: definitive}, nil
}

// benchNaiveScan scans as the admins' scripts do: list every Team, then GET
// each Team's drive once, one after the other or all at once, without
// retrying anything. A Team whose drive request gets no 200 or 404 is lost.
func benchNaiveScan(ctx context.Context, graphURL string, tokens entra.TokenSource, client *http.Client, parallel bool) (benchResult, error) {
	token, err := tokens.Token(ctx)
	if err != nil {
		return benchResult{}, err
	}
	get := func(rawURL string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}

	var ids []string
	next := graphURL + "/groups?$filter=resourceProvisioningOptions/Any(x:x%20eq%20'Team')&$select=id,displayName&$top=999"
	for page := 0; next != "" && page < 1000; page++ {
		status, body, err := get(next)
		if err != nil || status != http.StatusOK {
			// The scripts stop at a failed page and report what they have.
			break
		}
		var p struct {
			Value    []scanner.Team `json:"value"`
			NextLink string         `json:"@odata.nextLink"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			break
		}
		for _, t := range p.Value {
			ids = append(ids, t.ID)
		}
		next = p.NextLink
	}

	measure := func(id string) bool {
		status, _, err := get(graphURL + "/groups/" + id + "/drive")
		return err == nil && (status == http.StatusOK || status == http.StatusNotFound)
	}
	definitive := 0
	if !parallel {
		for _, id := range ids {
			if measure(id) {
				definitive++
			}
		}
		return benchResult{Teams: len(ids), Definitive: definitive}, nil
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if measure(id) {
				mu.Lock()
				definitive++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return benchResult{Teams: len(ids), Definitive: definitive}, nil
}

// benchHTTPClient trusts only the sim's certificate in caFile.
func benchHTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read BENCH_CA_FILE: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("read BENCH_CA_FILE: no certificate in it")
	}
	transport := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: runtime.GOMAXPROCS(0) * 4,
	}
	return &http.Client{Transport: transport, Timeout: 2 * time.Minute}, nil
}
