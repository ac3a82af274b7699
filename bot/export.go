package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/scanner"
)

const (
	// exportPath is the route prefix of download links.
	exportPath = "/export/"
	// exportSuffix ends every download link, so that browsers save a
	// .csv file.
	exportSuffix = ".csv"

	// DefaultExportTTL is how long a download link works.
	DefaultExportTTL = 15 * time.Minute
	// MinExportKeyBytes is the shortest signing key accepted. RFC 2104
	// recommends a key at least as long as the hash output, 32 bytes for
	// SHA-256.
	MinExportKeyBytes = 32

	// exportClockSkew is how long a used link id is kept past the link's
	// expiry, for replicas whose clocks differ a little.
	exportClockSkew = time.Minute

	// exportLoadTimeout bounds reading the scan for one download.
	exportLoadTimeout = 20 * time.Second

	// maxExportLinkBytes bounds the link part of the path that is decoded.
	maxExportLinkBytes = 1024
)

// ErrNoHistory marks a History lookup for a time before the oldest scan.
var ErrNoHistory = errors.New("no scan that old")

// History reads past scans. An adapter over store.Store implements it.
type History interface {
	// Growth returns the change in used bytes from the newest scan that
	// finished at or before since to the latest scan. It returns an error
	// wrapping ErrNoHistory when no scan is that old.
	Growth(ctx context.Context, since time.Time) (Growth, error)
	// ScanAt returns the newest scan that finished at or before t, or an
	// error wrapping ErrNoHistory.
	ScanAt(ctx context.Context, t time.Time) (*scanner.Result, error)
}

// Growth is the change in used bytes between two scans.
type Growth struct {
	// Tenant is the change over all Teams.
	Tenant int64
	// Teams maps a Team id to its change. A Team that was not measured in
	// both scans is missing, unless it is new or gone.
	Teams map[string]int64
}

// ExportConfig configures the export command's download links, which the
// bot serves itself at GET /export/{link}.csv. A link carries the tenant
// id, the scan's finish time, its expiry and a random id, signed with
// HMAC-SHA256, and it works once.
type ExportConfig struct {
	// Key signs and checks links. Empty disables export. Replicas behind
	// one address must share it.
	Key []byte
	// BaseURL is the bot's public address, for example
	// https://storagebot.example.com, that links start with.
	BaseURL string
	// TTL is how long a link works (default DefaultExportTTL).
	TTL time.Duration
	// Uses, when set, records used link ids in a store that replicas
	// share. FirstUse reports whether id is new and keeps it until
	// expires. Nil keeps the ids in this process.
	Uses interface {
		FirstUse(ctx context.Context, id string, expires time.Time) (bool, error)
	}
}

// exportLink is the signed content of a download link.
type exportLink struct {
	TenantID string `json:"t"`
	// ScanMicros is the scan's FinishedAt in Unix microseconds, the
	// precision the store keeps.
	ScanMicros int64 `json:"s"`
	// Expires is the expiry in Unix seconds.
	Expires int64 `json:"e"`
	// ID is random and marks the link as used.
	ID string `json:"n"`
}

// Reasons a download is refused.
var (
	errLinkInvalid = errors.New("download link is invalid")
	errLinkForeign = errors.New("download link is for another tenant")
	errLinkExpired = errors.New("download link expired")
	errLinkUsed    = errors.New("download link was already used")
)

func (c ExportConfig) enabled() bool {
	return len(c.Key) > 0
}

// check rejects a key that is too short and a base URL that is not an
// absolute http or https URL.
func (c ExportConfig) check() error {
	if !c.enabled() {
		return nil
	}
	if len(c.Key) < MinExportKeyBytes {
		return fmt.Errorf("export key has %d bytes, want at least %d", len(c.Key), MinExportKeyBytes)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("export base URL %q is invalid: want an absolute http or https URL", c.BaseURL)
	}
	return nil
}

// newExportLink returns a signed link to the CSV of the scan that finished
// at scanned, for tenantID, and its expiry.
func (b *Bot) newExportLink(tenantID string, scanned time.Time) (string, time.Time, error) {
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		return "", time.Time{}, fmt.Errorf("create export link id: %w", err)
	}
	expires := b.now().Add(b.export.TTL).Truncate(time.Second)
	payload, err := json.Marshal(exportLink{
		TenantID:   strings.ToLower(strings.TrimSpace(tenantID)),
		ScanMicros: scanned.UnixMicro(),
		Expires:    expires.Unix(),
		ID:         hex.EncodeToString(random),
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode export link: %w", err)
	}

	token := base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(b.sign(payload))
	return strings.TrimRight(b.export.BaseURL, "/") + exportPath + token + exportSuffix, expires, nil
}

func (b *Bot) sign(payload []byte) []byte {
	mac := hmac.New(sha256.New, b.export.Key)
	mac.Write(payload)
	return mac.Sum(nil)
}

// parseExportLink checks the signature of the link part of a download path
// and decodes it. It does not check expiry, tenant or use.
func (b *Bot) parseExportLink(file string) (exportLink, error) {
	token, ok := strings.CutSuffix(file, exportSuffix)
	if !ok || len(token) > maxExportLinkBytes {
		return exportLink{}, errLinkInvalid
	}
	encodedPayload, encodedMAC, ok := strings.Cut(token, ".")
	if !ok {
		return exportLink{}, errLinkInvalid
	}
	payload, err := base64.RawURLEncoding.DecodeString(encodedPayload)
	if err != nil {
		return exportLink{}, errLinkInvalid
	}
	mac, err := base64.RawURLEncoding.DecodeString(encodedMAC)
	if err != nil || !hmac.Equal(mac, b.sign(payload)) {
		return exportLink{}, errLinkInvalid
	}

	var link exportLink
	if err := json.Unmarshal(payload, &link); err != nil || link.ID == "" {
		return exportLink{}, errLinkInvalid
	}
	return link, nil
}

// handleExport serves the CSV of a download link once. It responds 403 to
// a link that is not signed with this bot's key or names a tenant the bot
// does not serve, and 410 to a link that expired or was used. The link
// itself is never logged, because it works as a password until used.
func (b *Bot) handleExport(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("X-Content-Type-Options", "nosniff")

	link, err := b.checkExportLink(c.Request.Context(), c.Param("file"))
	if err != nil {
		b.refuseExport(c, link, err)
		return
	}
	logger := b.logger.With("export_id", link.ID, "tenant_id", link.TenantID)

	ctx, cancel := context.WithTimeout(c.Request.Context(), exportLoadTimeout)
	defer cancel()
	result, err := b.exportScan(ctx, time.UnixMicro(link.ScanMicros))
	if err != nil {
		logger.Error("load scan for export failed", "err", err)
		c.String(http.StatusServiceUnavailable, "The scan could not be read. Send export to the bot again for a new link.\n")
		return
	}
	if result.TenantID != "" && !strings.EqualFold(result.TenantID, link.TenantID) {
		b.refuseExport(c, link, errLinkForeign)
		return
	}

	var csv bytes.Buffer
	if err := scanner.WriteCSV(&csv, result); err != nil {
		logger.Error("write export CSV failed", "err", err)
		c.String(http.StatusInternalServerError, "The CSV could not be written. Send export to the bot again for a new link.\n")
		return
	}
	name := "storagebot-" + result.FinishedAt.UTC().Format("20060102-1504") + ".csv"
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", csv.Bytes())
	logger.Info("served export", "teams", len(result.Teams), "bytes", csv.Len())
}

// checkExportLink verifies the signature, the tenant and the expiry of a
// link and then records its use.
func (b *Bot) checkExportLink(ctx context.Context, file string) (exportLink, error) {
	link, err := b.parseExportLink(file)
	if err != nil {
		return exportLink{}, err
	}
	if !b.servesTenant(link.TenantID) {
		return link, errLinkForeign
	}
	expires := time.Unix(link.Expires, 0)
	if !b.now().Before(expires) {
		return link, errLinkExpired
	}

	first, err := b.firstExportUse(ctx, link.ID, expires)
	if err != nil {
		return link, err
	}
	if !first {
		return link, errLinkUsed
	}
	return link, nil
}

// firstExportUse records a link id in the shared store when one is
// configured, else in this process.
func (b *Bot) firstExportUse(ctx context.Context, id string, expires time.Time) (bool, error) {
	if b.export.Uses == nil {
		return b.exportUses.add(id), nil
	}
	first, err := b.export.Uses.FirstUse(ctx, id, expires.Add(exportClockSkew))
	if err != nil {
		return false, fmt.Errorf("record use of export link %s: %w", id, err)
	}
	return first, nil
}

// refuseExport answers a download that checkExportLink refused.
func (b *Bot) refuseExport(c *gin.Context, link exportLink, err error) {
	logger := b.logger.With("export_id", link.ID, "tenant_id", link.TenantID)
	switch {
	case errors.Is(err, errLinkInvalid):
		logger.Warn("rejected export download: invalid link")
		c.String(http.StatusForbidden, "This download link is invalid.\n")
	case errors.Is(err, errLinkForeign):
		logger.Warn("rejected export download: tenant not served")
		c.String(http.StatusForbidden, "This download link is not for this bot's organization.\n")
	case errors.Is(err, errLinkExpired):
		logger.Info("rejected export download: link expired")
		c.String(http.StatusGone, "This download link has expired. Send export to the bot again for a new link.\n")
	case errors.Is(err, errLinkUsed):
		logger.Info("rejected export download: link already used")
		c.String(http.StatusGone, "This download link was already used. Send export to the bot again for a new link.\n")
	default:
		logger.Error("check export link failed", "err", err)
		c.String(http.StatusServiceUnavailable, "The download could not be checked. Try again in a minute.\n")
	}
}

// exportScan returns the scan that finished at scanned: from History when
// it is set, else the Source's latest scan, which is newer when a scan
// finished after the link was made.
func (b *Bot) exportScan(ctx context.Context, scanned time.Time) (*scanner.Result, error) {
	if b.history == nil {
		return b.result(ctx)
	}
	result, err := b.history.ScanAt(ctx, scanned)
	if err != nil {
		return nil, fmt.Errorf("read scan of %s: %w", scanned.UTC().Format(time.RFC3339Nano), err)
	}
	return result, nil
}
