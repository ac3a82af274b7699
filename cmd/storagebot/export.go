package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/storagebot/storagebot/bot"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/store"
)

// exportUsePrefix keeps export link ids apart from activity ids in the
// store's table of seen ids.
const exportUsePrefix = "export:"

// exportConfig returns the export settings of c. Without
// STORAGEBOT_EXPORT_KEY it draws a random key, so links stop working when
// the process restarts and work only on the replica that made them.
func exportConfig(c Config, st store.Store, logger *slog.Logger) bot.ExportConfig {
	key := c.ExportKey
	if len(key) == 0 {
		key = make([]byte, bot.MinExportKeyBytes)
		rand.Read(key)
		logger.Info("STORAGEBOT_EXPORT_KEY is unset: export links use a random key of this process")
	}
	return bot.ExportConfig{
		Key:     key,
		BaseURL: publicURL(c),
		TTL:     c.ExportLinkTTL,
		Uses:    exportUses{store: st, now: time.Now},
	}
}

// publicURL returns STORAGEBOT_PUBLIC_URL or, when it is unset, the listen
// address, with localhost for an address that names no host.
func publicURL(c Config) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "http://" + c.Addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// exportUses records used export link ids in the store, so that a link
// works once across replicas.
type exportUses struct {
	store store.Store
	now   func() time.Time
}

func (u exportUses) FirstUse(ctx context.Context, id string, expires time.Time) (bool, error) {
	now := u.now()
	ttl := expires.Sub(now)
	if ttl <= 0 {
		ttl = time.Second
	}
	return u.store.SeenActivity(ctx, exportUsePrefix+id, now, ttl)
}

// history adapts the store's scan history to bot.History.
type history struct {
	store store.Store
}

func (h history) Growth(ctx context.Context, since time.Time) (bot.Growth, error) {
	g, err := h.store.Growth(ctx, since)
	if errors.Is(err, store.ErrNotFound) {
		return bot.Growth{}, fmt.Errorf("growth since %s: %w", since.UTC().Format(time.RFC3339), bot.ErrNoHistory)
	}
	if err != nil {
		return bot.Growth{}, err
	}
	return bot.Growth{Tenant: g.Tenant, Teams: g.Teams}, nil
}

func (h history) ScanAt(ctx context.Context, t time.Time) (*scanner.Result, error) {
	r, err := h.store.ScanAt(ctx, t)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("scan at %s: %w", t.UTC().Format(time.RFC3339), bot.ErrNoHistory)
	}
	return r, err
}
