package scanner_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/storagebot/storagebot/entra"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/simtenant"
)

func TestScanSimulatedSchoolThrottled(t *testing.T) {
	sim, err := simtenant.Start(simtenant.Options{})
	if err != nil {
		t.Fatalf("start simulated tenant: %v", err)
	}
	t.Cleanup(sim.Close)
	// 200 requests a second with bursts of 10 keeps 8 workers throttled for
	// most of the scan, which therefore takes at least 535/200 = 2.7 s. The sim
	// and the scanner run on the real clock, because the pacer's spacing only
	// means something when time passes while requests are in flight.
	sim.SetThrottle(200, 10, 0)

	tokens, err := entra.New(entra.Config{
		AuthorityHost: sim.AuthorityHost(),
		TenantID:      simtenant.PlaygroundTenantID,
		ClientID:      simtenant.DefaultClientID,
		ClientSecret:  simtenant.DefaultClientSecret,
		Scope:         "https://graph.microsoft.com/.default",
		HTTPClient:    sim.HTTPClient(),
	})
	if err != nil {
		t.Fatalf("entra.New: %v", err)
	}
	s, err := scanner.New(scanner.Config{
		BaseURL:    sim.GraphURL(),
		Tokens:     tokens,
		HTTPClient: sim.HTTPClient(),
		TenantID:   simtenant.PlaygroundTenantID,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("scanner.New: %v", err)
	}

	result, err := s.Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	stats := sim.Stats()
	if stats.Throttled == 0 {
		t.Error("the sim throttled no request, so the test proves nothing about 429s")
	}
	if stats.TokensIssued != 1 {
		t.Errorf("tokens issued = %d, want 1 for the whole scan", stats.TokensIssued)
	}
	if len(result.Teams) != simtenant.SchoolTeamCount {
		t.Errorf("result has %d teams, want %d", len(result.Teams), simtenant.SchoolTeamCount)
	}

	byID := make(map[string]scanner.TeamUsage, len(result.Teams))
	for _, u := range result.Teams {
		if _, dup := byID[u.Team.ID]; dup {
			t.Errorf("team %s appears twice", u.Team.ID)
		}
		byID[u.Team.ID] = u
	}
	for _, g := range simtenant.School() {
		u, listed := byID[g.ID]
		if !g.IsTeam {
			if listed {
				t.Errorf("group %q is not a Team but was scanned", g.DisplayName)
			}
			continue
		}
		if !listed {
			t.Errorf("team %q (%s) lost", g.DisplayName, g.ID)
			continue
		}

		want := scanner.OutcomeMeasured
		switch {
		case g.Drive == nil:
			want = scanner.OutcomeNoDrive
		case g.Drive.Quota.IsZero():
			want = scanner.OutcomeUnknown
		}
		if u.Outcome != want {
			t.Errorf("team %q = %s (%s), want %s", g.DisplayName, u.Outcome, u.Reason, want)
		}
		if want == scanner.OutcomeMeasured && u.Quota != g.Drive.Quota {
			t.Errorf("team %q quota = %+v, want %+v", g.DisplayName, u.Quota, g.Drive.Quota)
		}
	}

	if result.Count(scanner.OutcomeFailed) != 0 {
		t.Errorf("failed teams = %d, want 0", result.Count(scanner.OutcomeFailed))
	}
	if got := stats.Count(simtenant.RouteDrive, http.StatusOK) + stats.Count(simtenant.RouteDrive, http.StatusNotFound); got != simtenant.SchoolTeamCount {
		t.Errorf("drive requests answered 200 or 404 = %d, want one per Team (%d)", got, simtenant.SchoolTeamCount)
	}
	if first := result.Teams[0].Team.DisplayName; first != "The Library" {
		t.Errorf("largest team = %q, want The Library", first)
	}
}

func TestScanSimulatedChannelSitesAndExpiredToken(t *testing.T) {
	sim, err := simtenant.Start(simtenant.Options{})
	if err != nil {
		t.Fatalf("start simulated tenant: %v", err)
	}
	t.Cleanup(sim.Close)

	tokens, err := entra.New(entra.Config{
		AuthorityHost: sim.AuthorityHost(),
		TenantID:      simtenant.PlaygroundTenantID,
		ClientID:      simtenant.DefaultClientID,
		ClientSecret:  simtenant.DefaultClientSecret,
		Scope:         "https://graph.microsoft.com/.default",
		HTTPClient:    sim.HTTPClient(),
	})
	if err != nil {
		t.Fatalf("entra.New: %v", err)
	}
	// The token expires early right after the first page of Teams, while
	// every batch is still to come.
	var once sync.Once
	s, err := scanner.New(scanner.Config{
		BaseURL:      sim.GraphURL(),
		Tokens:       tokens,
		HTTPClient:   sim.HTTPClient(),
		ChannelSites: true,
		Logger:       slog.New(slog.DiscardHandler),
		Progress: func(done, discovered int) {
			if discovered > 0 {
				once.Do(sim.ExpireTokens)
			}
		},
	})
	if err != nil {
		t.Fatalf("scanner.New: %v", err)
	}

	result, err := s.Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	if got := sim.Stats().TokensIssued; got != 2 {
		t.Errorf("tokens issued = %d, want 2: one refresh for every batch", got)
	}
	if got := result.Count(scanner.OutcomeFailed) + result.Count(scanner.OutcomeForbidden); got != 0 {
		t.Errorf("failed or forbidden teams = %d, want 0", got)
	}

	var library scanner.TeamUsage
	for _, u := range result.Teams {
		if u.Team.DisplayName == "The Library" && u.Quota.Used > library.Quota.Used {
			library = u
		}
	}
	var want simtenant.Group
	for _, g := range simtenant.School() {
		if g.ID == library.Team.ID {
			want = g
		}
	}
	if len(library.Sites) != 1+len(want.Channels) {
		t.Fatalf("The Library sites = %+v, want the main site and %d channel sites", library.Sites, len(want.Channels))
	}
	total := want.Drive.Quota.Used
	for i, c := range want.Channels {
		site := library.Sites[i+1]
		if site.ChannelID != c.ID || site.MembershipType != c.MembershipType {
			t.Errorf("site %d = %s %s, want channel %s %s", i+1, site.ChannelID, site.MembershipType, c.ID, c.MembershipType)
		}
		switch {
		case c.Drive == nil && site.Outcome != scanner.OutcomeNoDrive:
			t.Errorf("channel %q = %s, want no_drive for a site never provisioned", c.DisplayName, site.Outcome)
		case c.Drive != nil && (site.Outcome != scanner.OutcomeMeasured || site.Quota != c.Drive.Quota):
			t.Errorf("channel %q = %s %+v, want measured %+v", c.DisplayName, site.Outcome, site.Quota, c.Drive.Quota)
		case c.Drive != nil:
			total += c.Drive.Quota.Used
		}
	}
	if got := library.TotalUsed(); got != total {
		t.Errorf("The Library total = %d, want %d with its channel sites", got, total)
	}
	if first := result.Teams[0].Team.ID; first != library.Team.ID {
		t.Errorf("largest team = %s, want The Library", first)
	}
}
