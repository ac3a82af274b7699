package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env looks up settings. The real one reads the process environment; tests
// pass a map so that no test depends on the machine's variables.
type Env interface {
	Lookup(name string) (string, bool)
}

type osEnv struct{}

func (osEnv) Lookup(name string) (string, bool) { return os.LookupEnv(name) }

type mapEnv map[string]string

func (m mapEnv) Lookup(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// setting is one row of the configuration table that the README documents.
type setting struct {
	name, def, meaning string
}

// settings lists every environment variable storagebot reads. The README's
// configuration table is written from the same list.
var settings = []setting{
	{"MicrosoftAppId", "", "The bot's Entra app (client) id. Empty turns inbound auth off, which is allowed only on a loopback address."},
	{"MicrosoftAppPassword", "", "The bot app's client secret, used for Bot Connector tokens and, unless AZURE_CLIENT_ID is set, for Graph."},
	{"MicrosoftAppTenantId", "", "The tenant the bot belongs to and serves."},
	{"MicrosoftAppType", "MultiTenant", "How the bot gets Bot Connector tokens: MultiTenant (authority botframework.com), SingleTenant (authority MicrosoftAppTenantId) or UserAssignedMSI (the managed identity whose client id is MicrosoftAppId; no password)."},
	{"STORAGEBOT_APP_CERTIFICATE_PATH", "", "PEM file with the bot app's certificate and private key, used instead of MicrosoftAppPassword for Bot Connector tokens."},
	{"STORAGEBOT_APP_CERTIFICATE_PASSWORD", "", "Password of the private key in STORAGEBOT_APP_CERTIFICATE_PATH, if it is encrypted."},
	{"STORAGEBOT_ADMIN_IDS", "", "Comma-separated Entra object ids of users who see tenant-wide storage."},
	{"STORAGEBOT_ADMIN_GROUP_ID", "", "Object id of an Entra group whose members, direct or through nested groups, see tenant-wide storage. Team owners see only their own Teams; everyone else is refused."},
	{"BotOpenIdMetadata", "https://login.botframework.com/v1/.well-known/openidconfiguration", "OpenID metadata URL for validating the Bot Connector's tokens; https, except for a loopback host."},
	{"STORAGEBOT_TENANT_IDS", "MicrosoftAppTenantId", "Comma-separated tenant ids whose users are served; everyone else is refused."},
	{"STORAGEBOT_ADDR", "127.0.0.1:3978", "Listen address of the webhook (POST /api/messages)."},
	{"GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0", "Microsoft Graph base URL."},
	{"GRAPH_TOKEN", "", "A ready Graph bearer token (for example from `az account get-access-token`); skips MSAL."},
	{"AZURE_TENANT_ID", "MicrosoftAppTenantId", "Tenant for the Graph app-only token."},
	{"AZURE_CLIENT_ID", "MicrosoftAppId", "App (client) id for the Graph app-only token."},
	{"AZURE_CLIENT_SECRET", "MicrosoftAppPassword", "Client secret for the Graph app-only token."},
	{"AZURE_CLIENT_CERTIFICATE_PATH", "", "PEM file with a certificate and its private key, used instead of a client secret."},
	{"AZURE_CLIENT_CERTIFICATE_PASSWORD", "", "Password of the private key in AZURE_CLIENT_CERTIFICATE_PATH, if it is encrypted."},
	{"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com", "Entra authority host, for national clouds."},
	{"STORAGEBOT_SCAN_CONCURRENCY", "32", "Graph JSON batches, each of up to 20 lookups, in flight at once during a scan (1 to 64)."},
	{"STORAGEBOT_SCAN_CHANNEL_SITES", "true", "Also measure the SharePoint sites of private and shared channels and count them in their Team's total (true or false); costs two more Graph round trips per scan."},
	{"STORAGEBOT_SCAN_MAX_ATTEMPTS", "6", "Attempts per Graph request before a Team is reported as failed."},
	{"STORAGEBOT_SCAN_TTL", "15m", "How long a complete scan is reused before chat commands trigger a new one."},
	{"STORAGEBOT_DB_PATH", "$XDG_STATE_HOME/storagebot/storagebot.db", "SQLite file for the scan history and the state replicas share, created when missing. Without XDG_STATE_HOME it is ~/.local/state/storagebot/storagebot.db, and without HOME ./storagebot.db. Ignored when DATABASE_URL is set."},
	{"DATABASE_URL", "", "PostgreSQL URL, for example postgres://storagebot@db.example.com:5432/storagebot, for several replicas that share one store. Overrides STORAGEBOT_DB_PATH."},
	{"STORAGEBOT_KEEP_ALL_SCANS", "720h", "How long every completed scan is kept (30 days)."},
	{"STORAGEBOT_KEEP_WEEKLY_SCANS", "8760h", "How long the last scan of each ISO week is kept (1 year); at least STORAGEBOT_KEEP_ALL_SCANS."},
	{"STORAGEBOT_DIGEST_CRON", "0 8 * * 1", "When the weekly digest is posted: a five-field cron spec (minute hour day-of-month month day-of-week) or a descriptor such as @weekly, read in STORAGEBOT_DIGEST_TZ. The default is Mondays at 08:00."},
	{"STORAGEBOT_DIGEST_TZ", "UTC", "IANA time zone of STORAGEBOT_DIGEST_CRON, for example Europe/London; daylight saving time is followed."},
	{"STORAGEBOT_DIGEST_CATCHUP", "24h", "How late a digest missed while the bot was down is still posted when it starts again (at least 2m)."},
	{"STORAGEBOT_ALERT_THRESHOLDS", "80,95", "Comma-separated percentages of STORAGEBOT_TENANT_QUOTA; the tenant's used share rising past one posts an alert to the digest channels. Needs STORAGEBOT_TENANT_QUOTA; without it only Team quota states (nearing, critical, exceeded) are announced."},
	{"STORAGEBOT_LOG_FORMAT", "json", "Log format on stderr: json or text."},
	{"STORAGEBOT_LOG_LEVEL", "info", "Log level: debug, info, warn or error."},
	{"STORAGEBOT_TENANT_QUOTA", "", "The tenant's SharePoint storage quota in binary units, for example 25TiB, which Microsoft Graph does not report; the summary command shows the share of it that Teams use."},
	{"STORAGEBOT_PUBLIC_URL", "http://STORAGEBOT_ADDR", "The bot's public base URL, for example https://storagebot.example.com, that export download links start with."},
	{"STORAGEBOT_EXPORT_KEY", "", "Secret of at least 32 bytes that signs export download links; replicas must share it. When unset, each process draws a random key, so links stop working when the process restarts and work only on the replica that made them."},
	{"STORAGEBOT_EXPORT_LINK_TTL", "15m", "How long an export download link works; each link also works only once."},
}

// Config is every setting of the serve and scan commands, read once.
type Config struct {
	AppID       string
	AppPassword string
	AppTenantID string
	// AppType is MultiTenant, SingleTenant or UserAssignedMSI.
	AppType            string
	AppCertificatePath string
	AppCertificatePass string
	// AdminIDs and AdminGroupID select the users who see tenant-wide data.
	AdminIDs     []string
	AdminGroupID string
	// OpenIDMetadata is the Bot Framework OpenID metadata URL.
	OpenIDMetadata string
	TenantIDs      []string
	Addr           string

	GraphURL        string
	GraphToken      string
	TenantID        string
	ClientID        string
	ClientSecret    string
	CertificatePath string
	CertificatePass string
	AuthorityHost   string

	ScanConcurrency int
	// ScanChannelSites makes scans measure private and shared channel sites.
	ScanChannelSites bool
	ScanMaxAttempts  int
	ScanTTL          time.Duration

	// DBPath is the SQLite file, used when DatabaseURL is empty.
	DBPath string
	// DatabaseURL is a PostgreSQL URL.
	DatabaseURL     string
	KeepAllScans    time.Duration
	KeepWeeklyScans time.Duration

	// Digest holds the digest and alert settings.
	Digest digestConfig

	LogFormat string
	LogLevel  slog.Level

	// TenantQuota is the tenant's storage quota in bytes, 0 when unset.
	TenantQuota int64
	// PublicURL is the base of export download links; empty means the
	// listen address (see publicURL).
	PublicURL string
	// ExportKey signs export links; empty means a random key per process.
	ExportKey     []byte
	ExportLinkTTL time.Duration
}

// loadConfig reads the environment. Problems are collected so that the
// operator sees all of them at once.
func loadConfig(env Env) (Config, error) {
	get := func(name, def string) string {
		if v, ok := env.Lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}

	var problems []string
	c := Config{
		AppID:          get("MicrosoftAppId", ""),
		AppPassword:    get("MicrosoftAppPassword", ""),
		AppTenantID:    get("MicrosoftAppTenantId", ""),
		OpenIDMetadata: get("BotOpenIdMetadata", "https://login.botframework.com/v1/.well-known/openidconfiguration"),
		Addr:           get("STORAGEBOT_ADDR", "127.0.0.1:3978"),
		GraphURL:       get("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0"),
		GraphToken:     get("GRAPH_TOKEN", ""),
	}
	c.AppType = appType(get("MicrosoftAppType", appTypeMultiTenant))
	c.AppCertificatePath = get("STORAGEBOT_APP_CERTIFICATE_PATH", "")
	c.AppCertificatePass = get("STORAGEBOT_APP_CERTIFICATE_PASSWORD", "")
	c.AdminIDs = splitList(get("STORAGEBOT_ADMIN_IDS", ""))
	c.AdminGroupID = get("STORAGEBOT_ADMIN_GROUP_ID", "")
	problems = append(problems, checkBotSettings(c)...)

	c.TenantID = get("AZURE_TENANT_ID", c.AppTenantID)
	c.ClientID = get("AZURE_CLIENT_ID", c.AppID)
	c.ClientSecret = get("AZURE_CLIENT_SECRET", "")
	if c.ClientSecret == "" && c.ClientID == c.AppID {
		c.ClientSecret = c.AppPassword
	}
	c.CertificatePath = get("AZURE_CLIENT_CERTIFICATE_PATH", "")
	c.CertificatePass = get("AZURE_CLIENT_CERTIFICATE_PASSWORD", "")
	c.AuthorityHost = get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")

	if ids := get("STORAGEBOT_TENANT_IDS", ""); ids != "" {
		for _, id := range strings.Split(ids, ",") {
			if id = strings.TrimSpace(id); id != "" {
				c.TenantIDs = append(c.TenantIDs, id)
			}
		}
	} else if c.AppTenantID != "" {
		c.TenantIDs = []string{c.AppTenantID}
	} else if c.TenantID != "" {
		c.TenantIDs = []string{c.TenantID}
	}

	intSetting := func(name string, def, min, max int) int {
		raw := get(name, strconv.Itoa(def))
		n, err := strconv.Atoi(raw)
		if err != nil || n < min || n > max {
			problems = append(problems, fmt.Sprintf("%s=%q is invalid: want a whole number from %d to %d", name, raw, min, max))
			return def
		}
		return n
	}
	c.ScanConcurrency = intSetting("STORAGEBOT_SCAN_CONCURRENCY", 32, 1, 64)
	channelSites := get("STORAGEBOT_SCAN_CHANNEL_SITES", "true")
	if b, err := strconv.ParseBool(channelSites); err == nil {
		c.ScanChannelSites = b
	} else {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_SCAN_CHANNEL_SITES=%q is invalid: want true or false", channelSites))
	}
	c.ScanMaxAttempts = intSetting("STORAGEBOT_SCAN_MAX_ATTEMPTS", 6, 1, 20)

	ttl := get("STORAGEBOT_SCAN_TTL", "15m")
	d, err := time.ParseDuration(ttl)
	if err != nil || d < 0 {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_SCAN_TTL=%q is invalid: want a duration such as 15m or 1h", ttl))
		d = 15 * time.Minute
	}
	c.ScanTTL = d

	c.DBPath = get("STORAGEBOT_DB_PATH", defaultDBPath(env))
	c.DatabaseURL = get("DATABASE_URL", "")
	retention := func(name, def string) time.Duration {
		raw := get(name, def)
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("%s=%q is invalid: want a positive duration in hours, such as %s", name, raw, def))
			d, _ = time.ParseDuration(def)
		}
		return d
	}
	c.KeepAllScans = retention("STORAGEBOT_KEEP_ALL_SCANS", "720h")
	c.KeepWeeklyScans = retention("STORAGEBOT_KEEP_WEEKLY_SCANS", "8760h")
	if c.KeepWeeklyScans < c.KeepAllScans {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_KEEP_WEEKLY_SCANS=%s is shorter than STORAGEBOT_KEEP_ALL_SCANS=%s: weekly scans must be kept at least as long as all scans", c.KeepWeeklyScans, c.KeepAllScans))
	}

	problems = append(problems, loadDigestConfig(&c.Digest, get, env)...)

	quota := get("STORAGEBOT_TENANT_QUOTA", "")
	if quota != "" {
		q, err := parseBinaryBytes(quota)
		if err != nil {
			problems = append(problems, fmt.Sprintf("STORAGEBOT_TENANT_QUOTA=%q is invalid: %v", quota, err))
		}
		c.TenantQuota = q
	}
	c.PublicURL = strings.TrimRight(get("STORAGEBOT_PUBLIC_URL", ""), "/")
	if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_PUBLIC_URL=%q is invalid: want an absolute URL such as https://storagebot.example.com", c.PublicURL))
	}
	if key := get("STORAGEBOT_EXPORT_KEY", ""); key != "" {
		if len(key) < minExportKeyBytes {
			problems = append(problems, fmt.Sprintf("STORAGEBOT_EXPORT_KEY is too short: it has %d bytes, want at least %d, for example from `openssl rand -hex 32`", len(key), minExportKeyBytes))
		}
		c.ExportKey = []byte(key)
	}
	linkTTL := get("STORAGEBOT_EXPORT_LINK_TTL", "15m")
	c.ExportLinkTTL, err = time.ParseDuration(linkTTL)
	if err != nil || c.ExportLinkTTL <= 0 {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_EXPORT_LINK_TTL=%q is invalid: want a positive duration such as 15m", linkTTL))
		c.ExportLinkTTL = 15 * time.Minute
	}

	c.LogFormat = strings.ToLower(get("STORAGEBOT_LOG_FORMAT", "json"))
	if c.LogFormat != "json" && c.LogFormat != "text" {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_LOG_FORMAT=%q is invalid: want json or text", c.LogFormat))
		c.LogFormat = "json"
	}
	level := get("STORAGEBOT_LOG_LEVEL", "info")
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		problems = append(problems, fmt.Sprintf("STORAGEBOT_LOG_LEVEL=%q is invalid: want debug, info, warn or error", level))
	}

	if len(problems) > 0 {
		return c, &configError{problems: problems}
	}
	return c, nil
}

// configError lists every invalid setting, one line each.
type configError struct {
	problems []string
}

func (e *configError) Error() string {
	if len(e.problems) == 1 {
		return "invalid configuration: " + e.problems[0]
	}
	return "invalid configuration:\n  " + strings.Join(e.problems, "\n  ")
}

// isLoopback reports whether addr ("host:port") can only be reached from this
// machine. An empty host means every interface, so it is not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newLogger returns the process logger on w in the configured format.
func newLogger(c Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Values of MicrosoftAppType, as every Bot Framework SDK spells them.
const (
	appTypeMultiTenant     = "MultiTenant"
	appTypeSingleTenant    = "SingleTenant"
	appTypeUserAssignedMSI = "UserAssignedMSI"
)

// appType returns the canonical spelling of a MicrosoftAppType value, which
// the SDKs compare without regard to case, or raw when it is none.
func appType(raw string) string {
	for _, known := range []string{appTypeMultiTenant, appTypeSingleTenant, appTypeUserAssignedMSI} {
		if strings.EqualFold(raw, known) {
			return known
		}
	}
	return raw
}

// checkBotSettings returns one line per problem with the bot's identity
// settings, so that the process stops before it serves anything.
func checkBotSettings(c Config) []string {
	var problems []string
	switch c.AppType {
	case appTypeMultiTenant:
	case appTypeSingleTenant, appTypeUserAssignedMSI:
		if c.AppTenantID == "" {
			problems = append(problems, fmt.Sprintf("MicrosoftAppType=%s requires MicrosoftAppTenantId: set it to the bot's tenant id", c.AppType))
		}
	default:
		problems = append(problems, fmt.Sprintf("MicrosoftAppType=%q is invalid: want MultiTenant, SingleTenant or UserAssignedMSI", c.AppType))
	}
	if c.AppType == appTypeUserAssignedMSI && (c.AppPassword != "" || c.AppCertificatePath != "") {
		problems = append(problems, "MicrosoftAppType=UserAssignedMSI takes no MicrosoftAppPassword or STORAGEBOT_APP_CERTIFICATE_PATH: remove them, the managed identity needs no credential")
	}

	if err := checkMetadataURL(c.OpenIDMetadata); err != nil {
		problems = append(problems, fmt.Sprintf("BotOpenIdMetadata=%q is invalid: %v", c.OpenIDMetadata, err))
	}
	return problems
}

// checkMetadataURL accepts an https URL, or http on a loopback host only,
// because the signing keys must not travel in clear text over a network.
func checkMetadataURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("want an absolute https URL")
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" && isLoopback(net.JoinHostPort(u.Hostname(), "0")) {
		return nil
	}
	return errors.New("want https (http is allowed only for a loopback host)")
}

// minExportKeyBytes is the shortest STORAGEBOT_EXPORT_KEY, as
// bot.MinExportKeyBytes requires.
const minExportKeyBytes = 32

// binaryByteUnits are the suffixes parseBinaryBytes accepts, 1024 apart.
var binaryByteUnits = []struct {
	suffix string
	size   float64
}{
	{"EiB", 1 << 60}, {"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1},
}

// parseBinaryBytes reads a size such as "25TiB", "1.5 PiB" or "1024" (bytes)
// in binary units. Decimal units such as TB are rejected rather than
// guessed, because SharePoint reports storage in binary units.
func parseBinaryBytes(raw string) (int64, error) {
	number, size := strings.TrimSpace(raw), 1.0
	for _, u := range binaryByteUnits {
		if n, ok := strings.CutSuffix(number, u.suffix); ok {
			number, size = strings.TrimSpace(n), u.size
			break
		}
	}
	value, err := strconv.ParseFloat(number, 64)
	if err != nil || !(value > 0) || value*size >= 1<<63 {
		return 0, errors.New("want a positive size in binary units such as 25TiB or 512GiB")
	}
	return int64(value * size), nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(raw string) []string {
	var out []string
	for _, item := range strings.Split(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
