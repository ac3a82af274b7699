package simtenant_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/simtenant"
)

const teamsFilter = "resourceProvisioningOptions/Any(x:x eq 'Team')"

type groupsPage struct {
	Context  string           `json:"@odata.context"`
	NextLink string           `json:"@odata.nextLink"`
	Value    []map[string]any `json:"value"`
}

type graphErrorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

func groupsURL(sim *simtenant.Tenant, query url.Values) string {
	return sim.GraphURL() + "/groups?" + query.Encode()
}

func decodeGraphError(t *testing.T, body []byte) graphErrorBody {
	t.Helper()
	var e graphErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decode Graph error %s: %v", body, err)
	}
	return e
}

// listAllTeams follows @odata.nextLink from the first page of Teams and
// returns every page.
func listAllTeams(t *testing.T, sim *simtenant.Tenant, token, top string) []groupsPage {
	t.Helper()
	query := url.Values{"$filter": {teamsFilter}, "$select": {"id,displayName"}}
	if top != "" {
		query.Set("$top", top)
	}
	next := groupsURL(sim, query)

	var pages []groupsPage
	for range 1000 {
		status, _, body := send(t, sim, http.MethodGet, next, token, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s returned status %d: %s", next, status, body)
		}
		var page groupsPage
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decode page %d: %v", len(pages)+1, err)
		}
		pages = append(pages, page)
		if page.NextLink == "" {
			return pages
		}
		next = page.NextLink
	}
	t.Fatal("listing did not end after 1000 pages")
	return nil
}

func TestGraphListTeamsPaging(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	token := requestToken(t, sim, simtenant.GraphResource)

	wantTeams := map[string]string{}
	for _, g := range simtenant.School() {
		if g.IsTeam {
			wantTeams[g.ID] = g.DisplayName
		}
	}

	tests := []struct {
		top      string
		pageSize int
	}{
		{"", 100},
		{"1", 1},
		{"7", 7},
		{"100", 100},
		{"999", 999},
	}
	for _, tt := range tests {
		t.Run("top="+tt.top, func(t *testing.T) {
			pages := listAllTeams(t, sim, token, tt.top)

			if want := (len(wantTeams) + tt.pageSize - 1) / tt.pageSize; len(pages) != want {
				t.Errorf("got %d pages, want %d", len(pages), want)
			}
			seen := map[string]int{}
			for i, page := range pages {
				if len(page.Value) > tt.pageSize {
					t.Errorf("page %d has %d groups, above the page size %d", i+1, len(page.Value), tt.pageSize)
				}
				if page.Context != sim.GraphURL()+"/$metadata#groups(id,displayName)" {
					t.Errorf("page %d has @odata.context %q", i+1, page.Context)
				}
				if page.NextLink != "" && !strings.HasPrefix(page.NextLink, sim.GraphURL()+"/groups?") {
					t.Errorf("page %d has a nextLink that is not an absolute Graph URL: %q", i+1, page.NextLink)
				}
				for _, g := range page.Value {
					id, _ := g["id"].(string)
					seen[id]++
					if name, ok := wantTeams[id]; !ok {
						t.Errorf("listed group %q (%v) is not a Team", id, g["displayName"])
					} else if g["displayName"] != name {
						t.Errorf("group %s has displayName %v, want %q", id, g["displayName"], name)
					}
					if len(g) != 2 {
						t.Errorf("group %s has properties %v, want only id and displayName", id, g)
					}
				}
			}
			for id := range wantTeams {
				if seen[id] != 1 {
					t.Errorf("Team %s listed %d times, want once", id, seen[id])
				}
			}
		})
	}
}

func TestGraphListAllGroups(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)

	status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /groups returned status %d: %s", status, body)
	}
	var page groupsPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("decode page: %v", err)
	}

	if len(page.Value) != len(smallDirectory()) {
		t.Errorf("unfiltered list has %d groups, want all %d", len(page.Value), len(smallDirectory()))
	}
	for _, g := range page.Value {
		options, ok := g["resourceProvisioningOptions"].([]any)
		if !ok {
			t.Fatalf("group %v has no resourceProvisioningOptions", g)
		}
		isTeam := len(options) == 1 && options[0] == "Team"
		if g["displayName"] == "Finance Office" && isTeam {
			t.Error("Finance Office is listed as a Team")
		}
		if g["displayName"] == "The Library" && !isTeam {
			t.Error("The Library is not listed as a Team")
		}
	}
}

func TestGraphListQueryErrors(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)

	tests := []struct {
		name     string
		query    url.Values
		wantCode string
	}{
		{"other filter", url.Values{"$filter": {"displayName eq 'The Library'"}}, "Request_UnsupportedQuery"},
		{"filter on another value", url.Values{"$filter": {"resourceProvisioningOptions/Any(x:x eq 'Yammer')"}}, "Request_UnsupportedQuery"},
		{"top zero", url.Values{"$top": {"0"}}, "Request_BadRequest"},
		{"top above maximum", url.Values{"$top": {"1000"}}, "Request_BadRequest"},
		{"top not a number", url.Values{"$top": {"ten"}}, "Request_BadRequest"},
		{"unknown property", url.Values{"$select": {"id,quota"}}, "Request_BadRequest"},
		{"forged skip token", url.Values{"$skiptoken": {"b2Zmc2V0OjU"}}, "Directory_ExpiredPageToken"},
		{"unsupported option", url.Values{"$orderby": {"displayName"}}, "Request_UnsupportedQuery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := send(t, sim, http.MethodGet, groupsURL(sim, tt.query), token, nil)

			if status != http.StatusBadRequest {
				t.Errorf("returned status %d, want 400", status)
			}
			e := decodeGraphError(t, body)
			if e.Error.Code != tt.wantCode {
				t.Errorf("error code %q, want %q", e.Error.Code, tt.wantCode)
			}
			if id := header.Get("request-id"); id == "" || e.Error.InnerError.RequestID != id {
				t.Errorf("innerError request-id %q does not match the header %q", e.Error.InnerError.RequestID, id)
			}
		})
	}
}

func TestGraphFilterSpellings(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)

	for _, filter := range []string{teamsFilter, "resourceProvisioningOptions/any(t: t eq 'Team')"} {
		t.Run(filter, func(t *testing.T) {
			for _, key := range []string{"$filter", "filter"} {
				status, _, body := send(t, sim, http.MethodGet, groupsURL(sim, url.Values{key: {filter}}), token, nil)
				if status != http.StatusOK {
					t.Fatalf("%s returned status %d: %s", key, status, body)
				}
				var page groupsPage
				if err := json.Unmarshal(body, &page); err != nil {
					t.Fatalf("decode page: %v", err)
				}
				if len(page.Value) != 3 {
					t.Errorf("%s listed %d groups, want the 3 Teams", key, len(page.Value))
				}
			}
		})
	}
}

func TestGraphAuthentication(t *testing.T) {
	clock := newFakeClock()
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), Now: clock.Now})
	other := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	graphToken := requestToken(t, sim, simtenant.GraphResource)

	tests := []struct {
		name        string
		token       string
		advance     time.Duration
		wantMessage string
	}{
		{"missing token", "", 0, "Access token is empty."},
		{"not a JWT", "not-a-token", 0, "Access token validation failure."},
		{"bot connector audience", requestToken(t, sim, simtenant.BotFrameworkResource), 0, "Access token validation failure. Invalid audience."},
		{"issued by another sim", requestToken(t, other, simtenant.GraphResource), 0, "Access token validation failure."},
		{"expired", graphToken, 2 * time.Hour, "Access token has expired or is not yet valid."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)

			status, header, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", tt.token, nil)

			if status != http.StatusUnauthorized {
				t.Errorf("returned status %d, want 401", status)
			}
			e := decodeGraphError(t, body)
			if e.Error.Code != "InvalidAuthenticationToken" {
				t.Errorf("error code %q, want InvalidAuthenticationToken", e.Error.Code)
			}
			if e.Error.Message != tt.wantMessage {
				t.Errorf("error message %q, want %q", e.Error.Message, tt.wantMessage)
			}
			if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("WWW-Authenticate is %q, want a Bearer challenge", header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGraphDrive(t *testing.T) {
	sim := startTenant(t, simtenant.Options{})
	token := requestToken(t, sim, simtenant.GraphResource)

	byName := map[string]simtenant.Group{}
	for _, g := range simtenant.School() {
		if _, seen := byName[g.DisplayName]; !seen || g.Drive != nil && g.Drive.Quota.Used > byName[g.DisplayName].Drive.Quota.Used {
			byName[g.DisplayName] = g
		}
	}

	tests := []struct {
		name       string
		groupID    string
		wantStatus int
		wantCode   string
	}{
		{"measured", byName["The Library"].ID, http.StatusOK, ""},
		{"upper-case id", strings.ToUpper(byName["The Library"].ID), http.StatusOK, ""},
		{"all-zero quota", byName["Old Intranet Migration"].ID, http.StatusOK, ""},
		{"site not provisioned", byName["Sports Day Planning"].ID, http.StatusNotFound, "itemNotFound"},
		{"unknown group", "3c1e9f70-0000-4000-8000-000000000000", http.StatusNotFound, "Request_ResourceNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups/"+tt.groupID+"/drive", token, nil)

			if status != tt.wantStatus {
				t.Fatalf("returned status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if tt.wantCode != "" {
				if e := decodeGraphError(t, body); e.Error.Code != tt.wantCode {
					t.Errorf("error code %q, want %q", e.Error.Code, tt.wantCode)
				}
				return
			}

			var drive struct {
				ID        string        `json:"id"`
				DriveType string        `json:"driveType"`
				Name      string        `json:"name"`
				WebURL    string        `json:"webUrl"`
				Quota     scanner.Quota `json:"quota"`
			}
			if err := json.Unmarshal(body, &drive); err != nil {
				t.Fatalf("decode drive: %v", err)
			}
			var want *simtenant.Drive
			for _, g := range simtenant.School() {
				if strings.EqualFold(g.ID, tt.groupID) {
					want = g.Drive
				}
			}
			if drive.ID != want.ID {
				t.Errorf("drive id is %q, want %q", drive.ID, want.ID)
			}
			if drive.DriveType != "documentLibrary" {
				t.Errorf("driveType is %q, want documentLibrary", drive.DriveType)
			}
			if drive.Name != "Documents" {
				t.Errorf("drive name is %q, want Documents", drive.Name)
			}
			if drive.WebURL != want.WebURL {
				t.Errorf("webUrl is %q, want %q", drive.WebURL, want.WebURL)
			}
			if drive.Quota != want.Quota {
				t.Errorf("quota is %+v, want %+v", drive.Quota, want.Quota)
			}
		})
	}
}

func TestGraphUnknownSegment(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})

	status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/sites/root", "", nil)

	if status != http.StatusBadRequest {
		t.Errorf("returned status %d, want 400", status)
	}
	e := decodeGraphError(t, body)
	if e.Error.Code != "BadRequest" {
		t.Errorf("error code %q, want BadRequest", e.Error.Code)
	}
	if !strings.Contains(e.Error.Message, "'sites'") {
		t.Errorf("error message %q does not name the segment 'sites'", e.Error.Message)
	}
	if n := sim.Stats().Count(simtenant.RouteOther, http.StatusBadRequest); n != 1 {
		t.Errorf("Stats counts %d unmatched 400s, want 1", n)
	}
}

func TestGraphThrottle(t *testing.T) {
	tests := []struct {
		name           string
		rps            float64
		burst          int
		retryAfter     time.Duration
		wantRetryAfter string
		refill         time.Duration
	}{
		{"computed fractional wait", 4, 2, 0, "0.25", 250 * time.Millisecond},
		{"computed whole wait", 0.5, 1, 0, "2", 2 * time.Second},
		{"fixed wait", 4, 2, 1500 * time.Millisecond, "1.5", 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), Now: clock.Now})
			token := requestToken(t, sim, simtenant.GraphResource)
			driveURL := sim.GraphURL() + "/groups/" + libraryID() + "/drive"
			sim.SetThrottle(tt.rps, tt.burst, tt.retryAfter)

			for i := range tt.burst {
				if status, _, body := send(t, sim, http.MethodGet, driveURL, token, nil); status == http.StatusTooManyRequests {
					t.Fatalf("request %d of the burst returned status 429: %s", i+1, body)
				}
			}
			status, header, body := send(t, sim, http.MethodGet, driveURL, token, nil)
			if status != http.StatusTooManyRequests {
				t.Fatalf("request after the burst returned status %d, want 429", status)
			}
			if got := header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After is %q, want %q", got, tt.wantRetryAfter)
			}
			if e := decodeGraphError(t, body); e.Error.Code != "TooManyRequests" {
				t.Errorf("error code %q, want TooManyRequests", e.Error.Code)
			}

			clock.Advance(tt.refill)
			if status, _, body := send(t, sim, http.MethodGet, driveURL, token, nil); status == http.StatusTooManyRequests {
				t.Errorf("request after the refill returned status 429: %s", body)
			}

			stats := sim.Stats()
			if stats.Throttled != 1 {
				t.Errorf("Stats.Throttled is %d, want 1", stats.Throttled)
			}
			if got := stats.Count(simtenant.RouteDrive, http.StatusTooManyRequests); got != 1 {
				t.Errorf("Stats counts %d drive 429s, want 1", got)
			}
		})
	}
}

func TestGraphThrottleOff(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory(), Now: newFakeClock().Now})
	token := requestToken(t, sim, simtenant.GraphResource)
	sim.SetThrottle(1, 1, 0)
	sim.SetThrottle(0, 0, 0)

	for i := range 5 {
		if status, _, _ := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", token, nil); status != http.StatusOK {
			t.Fatalf("request %d returned status %d with the throttle off", i+1, status)
		}
	}
}

func TestGraphFaults(t *testing.T) {
	tests := []struct {
		name       string
		fraction   float64
		status     int
		wantStatus int
		wantCode   string
	}{
		{"service unavailable", 1, http.StatusServiceUnavailable, http.StatusServiceUnavailable, "serviceNotAvailable"},
		{"internal error", 1, http.StatusInternalServerError, http.StatusInternalServerError, "generalException"},
		{"off", 0, http.StatusServiceUnavailable, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
			token := requestToken(t, sim, simtenant.GraphResource)
			sim.SetFaults(tt.fraction, tt.status)

			status, _, body := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups/"+libraryID()+"/drive", token, nil)

			if status != tt.wantStatus {
				t.Fatalf("returned status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if tt.wantCode != "" {
				if e := decodeGraphError(t, body); e.Error.Code != tt.wantCode {
					t.Errorf("error code %q, want %q", e.Error.Code, tt.wantCode)
				}
			}
			if status, _, _ := send(t, sim, http.MethodGet, sim.GraphURL()+"/groups", token, nil); status != http.StatusOK {
				t.Errorf("GET /groups returned status %d, want faults only on drives", status)
			}
		})
	}
}

func TestGraphFaultFraction(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	sim.SetFaults(0.5, http.StatusServiceUnavailable)
	const requests = 200

	for range requests {
		send(t, sim, http.MethodGet, sim.GraphURL()+"/groups/"+libraryID()+"/drive", token, nil)
	}

	faults := sim.Stats().Faults
	if faults < requests/4 || faults > requests*3/4 {
		t.Errorf("%d of %d drive requests failed, want about half", faults, requests)
	}
	if got := sim.Stats().Count(simtenant.RouteDrive, http.StatusServiceUnavailable); got != faults {
		t.Errorf("Stats counts %d drive 503s and %d faults", got, faults)
	}
}

func TestGraphLatencyHonoursCancel(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	sim.SetLatency(time.Hour)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sim.GraphURL()+"/groups", nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)

	resp, err := sim.HTTPClient().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("request with an hour of latency returned %v, want the context deadline", err)
	}
}

func TestGraphConcurrentDrives(t *testing.T) {
	sim := startTenant(t, simtenant.Options{Groups: smallDirectory()})
	token := requestToken(t, sim, simtenant.GraphResource)
	driveURL := sim.GraphURL() + "/groups/" + libraryID() + "/drive"
	const workers, perWorker = 8, 25

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, driveURL, nil)
				if err != nil {
					t.Errorf("build request: %v", err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := sim.HTTPClient().Do(req)
				if err != nil {
					t.Errorf("GET drive: %v", err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Go(func() {
		for i := range perWorker {
			sim.SetFaults(float64(i%2)/2, http.StatusServiceUnavailable)
			sim.SetThrottle(float64(i%3)*1000, 100, 0)
			sim.SetLatency(0)
		}
	})
	wg.Wait()

	stats := sim.Stats()
	if got := stats.Total(simtenant.RouteDrive); got != workers*perWorker {
		t.Errorf("Stats counts %d drive requests, want %d", got, workers*perWorker)
	}
	delivered := stats.Count(simtenant.RouteDrive, http.StatusOK) + stats.Faults + stats.Throttled
	if delivered != workers*perWorker {
		t.Errorf("%d responses with 200, %d faults and %d throttled do not add up to %d", delivered-stats.Faults-stats.Throttled, stats.Faults, stats.Throttled, workers*perWorker)
	}
}

func BenchmarkGraphDrive(b *testing.B) {
	sim, err := simtenant.Start(simtenant.Options{Groups: simtenant.Generate(20_000, 1)})
	if err != nil {
		b.Fatalf("start simulated tenant: %v", err)
	}
	defer sim.Close()
	groups := simtenant.Generate(20_000, 1)
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {simtenant.DefaultClientID},
		"client_secret": {simtenant.DefaultClientSecret}, "scope": {simtenant.GraphResource + "/.default"},
	}
	resp, err := sim.HTTPClient().PostForm(sim.AuthorityHost()+"/"+sim.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		b.Fatalf("request token: %v", err)
	}
	var token struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&token)
	resp.Body.Close()
	if err != nil {
		b.Fatalf("decode token: %v", err)
	}

	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req, err := http.NewRequest(http.MethodGet, sim.GraphURL()+"/groups/"+groups[i%len(groups)].ID+"/drive", nil)
			if err != nil {
				b.Errorf("build request: %v", err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+token.AccessToken)
			resp, err := sim.HTTPClient().Do(req)
			if err != nil {
				b.Errorf("GET drive: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			i++
		}
	})
}
