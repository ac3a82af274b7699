package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/bot"
	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/connector"
	"github.com/storagebot/storagebot/digest"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/snapshot"
	"github.com/storagebot/storagebot/store"
)

const digestSynopsis = `Posts this period's weekly storage digest to every channel where the bot was
installed or where an admin sent "digest here", as a new thread, unless it was
already posted there in this period (by the running bot or an earlier run).
It reads the targets and the send log from the same store as "serve"
(STORAGEBOT_DB_PATH or DATABASE_URL, or --db). It uses the latest stored scan
while it is younger than STORAGEBOT_SCAN_TTL, and scans with the Graph
settings otherwise. --dry-run prints the digest card as JSON and posts nothing.`

// digestTimeout bounds "digest --now": a scan when the stored one is stale,
// and one post per target with the connector's retries.
const digestTimeout = 30 * time.Minute

// digestConfig is the digest and alert settings.
type digestConfig struct {
	Schedule *digest.Schedule
	CatchUp  time.Duration
	// Thresholds are percentages of the tenant quota.
	Thresholds []float64
	// ThresholdsSet is true when STORAGEBOT_ALERT_THRESHOLDS was set, so
	// that thresholds without a tenant quota are reported as a mistake
	// while the default is dropped silently.
	ThresholdsSet bool
}

// loadDigestConfig reads the digest settings and returns their problems.
func loadDigestConfig(c *digestConfig, get func(name, def string) string, env Env) []string {
	var problems []string

	spec := get("STORAGEBOT_DIGEST_CRON", digest.DefaultSpec)
	zone := get("STORAGEBOT_DIGEST_TZ", "UTC")
	schedule, err := digest.ParseSchedule(spec, zone)
	if err != nil {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_DIGEST_CRON=%q or STORAGEBOT_DIGEST_TZ=%q is invalid: %v", spec, zone, err))
		schedule, _ = digest.ParseSchedule(digest.DefaultSpec, "UTC")
	}
	c.Schedule = schedule

	catchUp := get("STORAGEBOT_DIGEST_CATCHUP", "24h")
	c.CatchUp, err = time.ParseDuration(catchUp)
	if err != nil || c.CatchUp < 2*time.Minute {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_DIGEST_CATCHUP=%q is invalid: want a duration of at least 2m, such as 24h", catchUp))
		c.CatchUp = digest.DefaultCatchUp
	}

	_, c.ThresholdsSet = env.Lookup("STORAGEBOT_ALERT_THRESHOLDS")
	thresholds := get("STORAGEBOT_ALERT_THRESHOLDS", "80,95")
	for _, field := range strings.Split(thresholds, ",") {
		field = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(field), "%"))
		if field == "" {
			continue
		}
		t, err := strconv.ParseFloat(field, 64)
		if err != nil || t <= 0 || t > 100 {
			problems = append(problems, fmt.Sprintf("STORAGEBOT_ALERT_THRESHOLDS=%q is invalid: want comma-separated percentages above 0 and at most 100, such as 80,95", thresholds))
			c.Thresholds = nil
			break
		}
		c.Thresholds = append(c.Thresholds, t)
	}
	return problems
}

// newDigest builds the digest service on the store, the snapshot source and
// the connector that serve uses. onSent, when not nil, counts each digest
// posted.
func newDigest(c Config, st store.Store, source digest.Source, conn *connector.Client, logger *slog.Logger, onSent func()) (*digest.Service, error) {
	thresholds := c.Digest.Thresholds
	if c.TenantQuota <= 0 {
		if c.Digest.ThresholdsSet && len(thresholds) > 0 {
			return nil, errors.New("STORAGEBOT_ALERT_THRESHOLDS needs STORAGEBOT_TENANT_QUOTA, the tenant's storage quota that the thresholds are percentages of")
		}
		thresholds = nil
	}
	return digest.New(digest.Config{
		Store:       st,
		Source:      source,
		Connector:   conn,
		Schedule:    c.Digest.Schedule,
		CatchUp:     c.Digest.CatchUp,
		Thresholds:  thresholds,
		TenantQuota: c.TenantQuota,
		Logger:      logger.With("component", "digest"),
		OnSent:      onSent,
	})
}

// digestCommand is the bot's "digest" command, for admins.
func digestCommand(service *digest.Service) bot.Command {
	return bot.Command{
		Verb:        "digest",
		Usage:       digest.CommandUsage,
		Description: digest.CommandDescription,
		AdminsOnly:  true,
		Run: func(ctx context.Context, req bot.CommandRequest) (cards.AdaptiveCard, error) {
			return service.HandleCommand(ctx, req.Args, req.Activity)
		},
	}
}

// digestInstalls registers the channel where the bot is installed in a Team
// as a digest target, and removes it when the bot is removed.
type digestInstalls struct {
	service *digest.Service
}

// Installed implements bot.InstallHandler. Installs outside a Team channel,
// such as a personal chat, are ignored.
func (d digestInstalls) Installed(ctx context.Context, a schema.Activity) error {
	_, err := d.service.AddTarget(ctx, a)
	if errors.Is(err, digest.ErrNotChannel) {
		return nil
	}
	return err
}

// Uninstalled implements bot.InstallHandler.
func (d digestInstalls) Uninstalled(ctx context.Context, a schema.Activity) error {
	_, err := d.service.RemoveTarget(ctx, a)
	if errors.Is(err, digest.ErrNotChannel) {
		return nil
	}
	return err
}

func runDigest(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("digest --now | --dry-run [flags]", digestSynopsis, stderr)
	now := fs.Bool("now", false, "post this period's digest now to every channel that has not got it")
	dryRun := fs.Bool("dry-run", false, "print the digest card as JSON instead of posting it")
	db := fs.String("db", "", "store to use instead of STORAGEBOT_DB_PATH and DATABASE_URL: a SQLite file path or a postgres:// URL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *now == *dryRun {
		return fmt.Errorf("%w: give exactly one of --now and --dry-run", errUsage)
	}

	c, err := loadConfig(env)
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(*db, "postgres://"), strings.HasPrefix(*db, "postgresql://"):
		c.DatabaseURL = *db
	case *db != "":
		c.DatabaseURL, c.DBPath = "", *db
	}
	if _, set := env.Lookup("STORAGEBOT_LOG_FORMAT"); !set {
		c.LogFormat = "text"
	}
	logger := newLogger(c, stderr)

	ctx, cancel := context.WithTimeout(ctx, digestTimeout)
	defer cancel()
	service, closeStore, err := openDigest(c, logger)
	if err != nil {
		return err
	}
	defer closeStore()

	if *dryRun {
		card, err := service.Preview(ctx)
		if err != nil {
			return err
		}
		encoded, err := json.MarshalIndent(card, "", "  ")
		if err != nil {
			return fmt.Errorf("encode digest card: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", encoded)
		return err
	}

	report, err := service.SendNow(ctx)
	if err != nil {
		return err
	}
	return printDigestReport(stdout, report)
}

// openDigest opens the store and builds the digest service for the
// command line. A scan is set up only when the stored one is too old, so
// posting a fresh digest needs no Graph credentials.
func openDigest(c Config, logger *slog.Logger) (*digest.Service, func(), error) {
	httpClient := &http.Client{Timeout: 60 * time.Second}
	st, err := openStore(c, logger)
	if err != nil {
		return nil, nil, err
	}
	closeStore := func() {
		if err := st.Close(); err != nil {
			logger.Warn("close store failed", "err", err)
		}
	}

	scan := func(ctx context.Context) (*scanner.Result, error) {
		tokens, err := graphTokens(c, httpClient)
		if err != nil {
			return nil, fmt.Errorf("scan for the digest, because the stored scan is older than STORAGEBOT_SCAN_TTL: %w", err)
		}
		s, err := newScanner(c, tokens, httpClient, logger)
		if err != nil {
			return nil, err
		}
		return s.Scan(ctx)
	}
	source, err := snapshot.New(snapshot.Config{
		Store:    st,
		Scan:     scan,
		TenantID: c.TenantID,
		TTL:      c.ScanTTL,
		Logger:   logger.With("component", "snapshot"),
	})
	if err != nil {
		closeStore()
		return nil, nil, err
	}

	ctokens, err := connectorTokens(c, httpClient)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	conn := connector.New(connector.Config{HTTPClient: httpClient, Tokens: ctokens, Logger: logger.With("component", "connector")})

	service, err := newDigest(c, st, source, conn, logger, nil)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return service, closeStore, nil
}

// printDigestReport writes one line per target and a summary. It returns
// an error when a post failed, so the exit status shows it.
func printDigestReport(w io.Writer, report digest.Report) error {
	period := report.Period.Format("Mon 2006-01-02 15:04 MST")
	if len(report.Results) == 0 {
		_, err := fmt.Fprintf(w, "No channel gets the digest: install the bot in a Team or send \"digest here\" in a channel first.\n")
		return err
	}

	var failed []error
	for _, r := range report.Results {
		line := fmt.Sprintf("%s: %s", r.Target.Name, r.Outcome)
		if r.Outcome == digest.Sent {
			line += " (activity " + r.ActivityID + ")"
		}
		if r.Err != nil {
			line += ": " + r.Err.Error()
		}
		if r.Outcome == digest.Failed {
			failed = append(failed, r.Err)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}

	var err error
	if report.Count(digest.Sent) == 0 && report.Count(digest.AlreadySent) > 0 {
		_, err = fmt.Fprintf(w, "Nothing posted: the digest was already posted for this period (%s).\n", period)
	} else {
		_, err = fmt.Fprintf(w, "Posted the digest for the period of %s to %d of %d channels.\n", period, report.Count(digest.Sent), len(report.Results))
	}
	if len(failed) > 0 {
		return fmt.Errorf("post digest to %d channels: %w", len(failed), errors.Join(failed...))
	}
	return err
}
