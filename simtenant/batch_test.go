package simtenant_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/simtenant"
)

type batchAnswer struct {
	Responses []struct {
		ID      string            `json:"id"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"responses"`
}

// postBatch sends GET requests for urls in one JSON batch and returns the
// responses by id, the ids being the indexes of urls.
func postBatch(t *testing.T, sim *simtenant.Tenant, token string, urls ...string) (int, map[string]int, map[string]json.RawMessage, map[string]map[string]string) {
	t.Helper()
	var requests []map[string]string
	for i, u := range urls {
		requests = append(requests, map[string]string{"id": strconv.Itoa(i), "method": "GET", "url": u})
	}
	raw, err := json.Marshal(map[string]any{"requests": requests})
	if err != nil {
		t.Fatalf("encode batch: %v", err)
	}
	status, _, body := send(t, sim, http.MethodPost, sim.GraphURL()+"/$batch", token, strings.NewReader(string(raw)), "application/json")
	statuses, bodies, headers := map[string]int{}, map[string]json.RawMessage{}, map[string]map[string]string{}
	if status != http.StatusOK {
		return status, statuses, bodies, headers
	}
	var answer batchAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("decode batch answer: %v: %s", err, body)
	}
	for _, r := range answer.Responses {
		statuses[r.ID], bodies[r.ID], headers[r.ID] = r.Status, r.Body, r.Headers
	}
	return status, statuses, bodies, headers
}

// libraryTeam returns the school library's Team, the larger of the two
// named The Library, which has channel sites.
func libraryTeam(t *testing.T) simtenant.Group {
	t.Helper()
	var found simtenant.Group
	for _, g := range simtenant.School() {
		if g.DisplayName == "The Library" && (found.Drive == nil || g.Drive.Quota.Used > found.Drive.Quota.Used) {
			found = g
		}
	}
	if len(found.Channels) == 0 {
		t.Fatal("The Library has no channels in School()")
	}
	return found
}

func TestBatchAnswersEachRequest(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	token := requestToken(t, sim, simtenant.GraphResource)
	library := libraryTeam(t)

	status, statuses, bodies, _ := postBatch(t, sim, token,
		"/groups/"+library.ID+"/drive",
		"groups/3c1e9f70-0000-4000-8000-000000000000/drive",
		"/teams/"+library.ID+"/channels?$filter="+url.QueryEscape("membershipType ne 'standard'"),
	)
	if status != http.StatusOK {
		t.Fatalf("batch returned status %d, want 200", status)
	}
	if statuses["0"] != http.StatusOK || !strings.Contains(string(bodies["0"]), library.Drive.ID) {
		t.Errorf("drive response = %d %s, want 200 with drive %s", statuses["0"], bodies["0"], library.Drive.ID)
	}
	if statuses["1"] != http.StatusNotFound {
		t.Errorf("unknown group response = %d, want 404", statuses["1"])
	}
	var channels struct {
		Value []struct{ ID, DisplayName, MembershipType string } `json:"value"`
	}
	if err := json.Unmarshal(bodies["2"], &channels); err != nil {
		t.Fatalf("decode channels: %v", err)
	}
	if len(channels.Value) != len(library.Channels) {
		t.Errorf("channels = %+v, want the %d private and shared channels without General", channels.Value, len(library.Channels))
	}
	for _, c := range channels.Value {
		if c.MembershipType == simtenant.MembershipStandard {
			t.Errorf("channel %q is standard, want it filtered out", c.DisplayName)
		}
	}

	stats := sim.Stats()
	if stats.Total(simtenant.RouteBatch) != 1 || stats.BatchItems != 3 {
		t.Errorf("batches, items = %d, %d, want 1 and 3", stats.Total(simtenant.RouteBatch), stats.BatchItems)
	}
	if got := stats.Count(simtenant.RouteDrive, http.StatusOK); got != 1 {
		t.Errorf("drive items answered 200 = %d, want 1", got)
	}
}

func TestBatchRejectsInvalidBatches(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = "/groups/" + libraryID() + "/drive"
	}
	if status, _, _, _ := postBatch(t, sim, token, tooMany...); status != http.StatusBadRequest {
		t.Errorf("batch of 21 returned status %d, want 400", status)
	}
	if status, _, _, _ := postBatch(t, sim, "", "/groups/"+libraryID()+"/drive"); status != http.StatusUnauthorized {
		t.Errorf("batch without a token returned status %d, want 401", status)
	}
}

func TestChannelSiteDrives(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	token := requestToken(t, sim, simtenant.GraphResource)
	library := libraryTeam(t)

	for _, c := range library.Channels {
		t.Run(c.DisplayName, func(t *testing.T) {
			folderURL := sim.GraphURL() + "/teams/" + library.ID + "/channels/" + url.PathEscape(c.ID) + "/filesFolder"
			status, _, body := send(t, sim, http.MethodGet, folderURL, token, nil)
			if c.Drive == nil {
				if status != http.StatusNotFound {
					t.Errorf("filesFolder of an unprovisioned site returned %d, want 404", status)
				}
				return
			}
			var folder struct {
				ParentReference struct{ DriveID string } `json:"parentReference"`
			}
			if status != http.StatusOK || json.Unmarshal(body, &folder) != nil || folder.ParentReference.DriveID != c.Drive.ID {
				t.Fatalf("filesFolder = %d %s, want 200 with drive %s", status, body, c.Drive.ID)
			}

			status, _, body = send(t, sim, http.MethodGet, sim.GraphURL()+"/drives/"+c.Drive.ID, token, nil)
			var drive struct {
				Quota struct{ Used int64 } `json:"quota"`
			}
			if status != http.StatusOK || json.Unmarshal(body, &drive) != nil || drive.Quota.Used != c.Drive.Quota.Used {
				t.Errorf("drive = %d %s, want 200 with %d bytes used", status, body, c.Drive.Quota.Used)
			}
		})
	}
}

func TestBatchItemsThrottledOneByOne(t *testing.T) {
	clock := newFakeClock()
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), Now: clock.Now})
	token := requestToken(t, sim, simtenant.GraphResource)
	sim.SetThrottle(1, 3, 0)

	urls := make([]string, 5)
	for i := range urls {
		urls[i] = "/groups/" + libraryID() + "/drive"
	}
	_, statuses, _, headers := postBatch(t, sim, token, urls...)
	ok, throttled := 0, 0
	for id, status := range statuses {
		switch status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			throttled++
			if headers[id]["Retry-After"] == "" {
				t.Errorf("throttled item %s has no Retry-After", id)
			}
		}
	}
	if ok != 3 || throttled != 2 {
		t.Errorf("items ok, throttled = %d, %d, want 3 and 2 for a burst of 3", ok, throttled)
	}
}

func TestConcurrencyCap(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	sim.SetConcurrencyCap(1, 1500*time.Millisecond)
	// A long latency keeps the first request in flight while the others
	// arrive.
	sim.SetLatency(2 * time.Second)

	statuses := make(chan int, 3)
	retryAfters := make(chan string, 3)
	for range 3 {
		go func() {
			status, header, _ := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups/"+libraryID()+"/drive", token, nil)
			statuses <- status
			retryAfters <- header.Get("Retry-After")
		}()
	}
	counts := map[int]int{}
	retryAfter := ""
	for range 3 {
		status := <-statuses
		counts[status]++
		if ra := <-retryAfters; status == http.StatusTooManyRequests {
			retryAfter = ra
		}
	}
	if counts[http.StatusOK] != 1 || counts[http.StatusTooManyRequests] != 2 {
		t.Errorf("statuses = %v, want one 200 and two 429 under a cap of 1", counts)
	}
	if retryAfter != "1.5" {
		t.Errorf("Retry-After = %q, want 1.5", retryAfter)
	}
}

func TestResourceBudget(t *testing.T) {
	clock := newFakeClock()
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), Now: clock.Now})
	token := requestToken(t, sim, simtenant.GraphResource)
	sim.SetResourceBudget(10)
	driveURL := sim.GraphURL() + "/groups/" + libraryID() + "/drive"

	var header http.Header
	for i := range 8 {
		status, h, _ := send(t, sim, http.MethodGet, driveURL, token, nil)
		if status != http.StatusOK {
			t.Fatalf("request %d returned status %d, want 200 within the budget", i+1, status)
		}
		header = h
	}
	if header.Get("RateLimit-Limit") != "10" || header.Get("RateLimit-Remaining") != "2" || header.Get("RateLimit-Reset") == "" {
		t.Errorf("RateLimit headers at 80%% = %q, %q, %q, want 10, 2 and a reset", header.Get("RateLimit-Limit"), header.Get("RateLimit-Remaining"), header.Get("RateLimit-Reset"))
	}

	// A list costs 2 units: 8 + 2 fills the budget, and the next is over.
	if status, _, _ := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", token, nil); status != http.StatusOK {
		t.Errorf("list within the budget returned status %d, want 200", status)
	}
	status, h, _ := send(t, sim, http.MethodGet, driveURL, token, nil)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("request over the budget = %d with Retry-After %q, want 429 with one", status, h.Get("Retry-After"))
	}
	if got := sim.Stats().BudgetThrottled; got != 1 {
		t.Errorf("BudgetThrottled = %d, want 1", got)
	}

	clock.Advance(61 * time.Second)
	if status, _, _ := send(t, sim, http.MethodGet, driveURL, token, nil); status != http.StatusOK {
		t.Errorf("request in the next minute returned status %d, want 200", status)
	}
}

func TestExpireTokens(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	driveURL := sim.GraphURL() + "/groups/" + libraryID() + "/drive"

	sim.ExpireTokens()
	status, _, body := send(t, sim, http.MethodGet, driveURL, token, nil)
	if status != http.StatusUnauthorized || !strings.Contains(string(body), "expired") {
		t.Errorf("expired token = %d %s, want 401 with an expiry message", status, body)
	}
	fresh := requestToken(t, sim, simtenant.GraphResource)
	if status, _, _ := send(t, sim, http.MethodGet, driveURL, fresh, nil); status != http.StatusOK {
		t.Errorf("new token returned status %d, want 200", status)
	}
}
