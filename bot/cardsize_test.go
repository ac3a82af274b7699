package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/roles"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/simtenant"
)

// largeTenantTeams is the Team count of the scale case of the card tests.
const largeTenantTeams = 20_000

// validatorTimeout bounds one run of the Node card validator.
const validatorTimeout = 2 * time.Minute

// resultOf returns the scan that a complete, fault-free scan of groups
// would return: every Team with its drive's quota and channel sites.
func resultOf(groups []simtenant.Group) *scanner.Result {
	r := &scanner.Result{
		TenantID:   servedTenant,
		StartedAt:  time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 12, 4, 19, 1, 0, 0, time.UTC),
	}
	for _, g := range groups {
		if !g.IsTeam {
			continue
		}
		t := scanner.TeamUsage{Team: scanner.Team{ID: g.ID, DisplayName: g.DisplayName}, Attempts: 1}
		switch {
		case g.Drive == nil:
			t.Outcome = scanner.OutcomeNoDrive
		case g.Drive.Quota.IsZero():
			t.Outcome = scanner.OutcomeUnknown
		default:
			t.Outcome, t.Quota = scanner.OutcomeMeasured, g.Drive.Quota
			t.Sites = []scanner.SiteUsage{{Kind: scanner.SiteMain, Outcome: scanner.OutcomeMeasured, Quota: t.Quota}}
		}
		for _, c := range g.Channels {
			site := scanner.SiteUsage{Kind: scanner.SiteChannel, ChannelID: c.ID, ChannelName: c.DisplayName, MembershipType: c.MembershipType, Outcome: scanner.OutcomeNoDrive}
			if c.Drive != nil {
				site.Outcome, site.Quota = scanner.OutcomeMeasured, c.Drive.Quota
			}
			t.Sites = append(t.Sites, site)
		}
		r.Teams = append(r.Teams, t)
	}
	return r
}

// manyOwners lists 100 owners with names as long as Entra allows for
// every Team.
type manyOwners struct{ *fakeRoles }

func (manyOwners) Owners(context.Context, string) ([]roles.Owner, error) {
	owners := make([]roles.Owner, 100)
	for i := range owners {
		owners[i] = roles.Owner{ID: fmt.Sprint(i), DisplayName: strings.Repeat("<&>", 256/3)}
	}
	return owners, nil
}

// TestEveryCommandCardFits runs every command as an admin and as the owner
// of every Team, for the simulated school and for a tenant of 20,000
// Teams, and checks that each card is under cards.MaxCardBytes and passes
// the Adaptive Card renderer and schema checks.
func TestEveryCommandCardFits(t *testing.T) {
	tenants := map[string]*scanner.Result{
		"school": resultOf(simtenant.School()),
		"large":  resultOf(simtenant.Generate(largeTenantTeams, 7)),
	}
	dir := t.TempDir()
	var files []string

	for tenant, result := range tenants {
		if len(result.Teams) < simtenant.SchoolTeamCount {
			t.Fatalf("%s tenant has %d Teams, want at least %d", tenant, len(result.Teams), simtenant.SchoolTeamCount)
		}
		now := result.FinishedAt.Add(time.Minute)
		growth := Growth{Tenant: 1 << 40, Teams: map[string]int64{}}
		owned := map[string]bool{}
		for _, team := range result.Teams {
			growth.Teams[team.Team.ID] = 3 << 30
			owned[strings.ToLower(team.Team.ID)] = true
		}
		b, err := New(Config{
			TenantIDs: []string{servedTenant}, LocalDevelopment: true,
			Logger:      slog.New(slog.DiscardHandler),
			Source:      &progressSource{result: result},
			Roles:       manyOwners{allAdmins()},
			Connector:   newHarness(t, nil, nil).bot.connector,
			History:     &fakeHistory{fromDays: 31, now: now, growth: growth, scan: result},
			TenantQuota: 25 << 40,
			Export:      ExportConfig{Key: exportKey, BaseURL: "https://bot.example"},
			Now:         func() time.Time { return now },
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}

		admin := asker{userID: adminUser, admin: true}
		owner := asker{userID: ownerUser, owned: owned}
		requests := map[string]request{
			"summary":      {verb: "summary", asker: admin},
			"top":          {verb: "top", args: []string{"50"}, asker: admin},
			"top_page":     {verb: "top", args: []string{"50"}, offset: 100, asker: admin},
			"top_last":     {verb: "top", args: []string{"50"}, offset: len(result.Teams), asker: admin},
			"usage_choice": {verb: "usage", args: []string{"the"}, asker: admin},
			"usage_one":    {verb: "usage", teamID: result.Teams[0].Team.ID, asker: admin},
			"my_teams":     {verb: "my", args: []string{"teams"}, asker: owner},
			"owner_usage":  {verb: "usage", args: []string{"a"}, asker: owner},
			"refresh":      {verb: "refresh", asker: admin},
			"export":       {verb: "export", personal: true, tenantID: servedTenant, asker: admin},
			"help":         {verb: "help", asker: admin},
			"owner_help":   {verb: "help", asker: owner},
		}
		for name, req := range requests {
			t.Run(tenant+"/"+name, func(t *testing.T) {
				card := b.run(t.Context(), req, b.logger)
				raw, err := json.Marshal(card)
				if err != nil {
					t.Fatalf("marshal card: %v", err)
				}
				if len(raw) > cards.MaxCardBytes {
					t.Errorf("card is %d bytes, want at most %d", len(raw), cards.MaxCardBytes)
				}
				if text, _ := cards.PlainText(raw); strings.Contains(text, "failed") && strings.HasPrefix(text, "Scan failed") {
					t.Errorf("command failed:\n%s", text)
				}
				path := filepath.Join(dir, tenant+"_"+name+".json")
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					t.Fatalf("write card: %v", err)
				}
				files = append(files, path)
			})
		}
	}

	validateWithNode(t, files)
}

// validateWithNode runs testdata/node/validate-cards.js on files, or skips
// when Node.js or the npm modules are missing, unless
// STORAGEBOT_REQUIRE_NODE=1.
func validateWithNode(t *testing.T, files []string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "testdata", "node", "validate-cards.js"))
	if err != nil {
		t.Fatalf("resolve validator: %v", err)
	}
	_, nodeErr := exec.LookPath("node")
	_, modulesErr := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "adaptivecards"))
	if nodeErr != nil || modulesErr != nil {
		message := fmt.Sprintf("skip Adaptive Card validation: node: %v, modules: %v", nodeErr, modulesErr)
		if os.Getenv("STORAGEBOT_REQUIRE_NODE") == "1" {
			t.Fatal(message)
		}
		t.Skip(message)
	}

	ctx, cancel := context.WithTimeout(t.Context(), validatorTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", append([]string{script}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("validator failed: %v\n%s", err, out)
	}
	if got := strings.Count(string(out), "ok   "); got != len(files) {
		t.Errorf("validator passed %d cards, want %d\n%s", got, len(files), out)
	}
}
