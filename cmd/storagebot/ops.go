package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/entra"
	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/store"
)

// readyTimeout bounds one readiness check: the store ping and the Graph
// token together. Container probes usually give up after a few seconds.
const readyTimeout = 5 * time.Second

// withTransport returns a copy of client whose transport is wrap applied to
// client's transport, so that one kind of outbound call can be counted
// apart from the others.
func withTransport(client *http.Client, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	wrapped := *client
	wrapped.Transport = wrap(client.Transport)
	return &wrapped
}

// scanGuard ends running scans when the server stops. A scan runs under
// the snapshot source's own timeout, apart from any request, so shutting
// down the HTTP server alone would leave it running.
type scanGuard struct {
	stopped context.Context
	stop    context.CancelFunc
	running sync.WaitGroup
}

func newScanGuard() *scanGuard {
	g := &scanGuard{}
	g.stopped, g.stop = context.WithCancel(context.Background())
	return g
}

// wrap returns scan made to end when the guard stops, and counted, so that
// wait can wait for it.
func (g *scanGuard) wrap(scan func(ctx context.Context) (*scanner.Result, error)) func(ctx context.Context) (*scanner.Result, error) {
	return func(ctx context.Context) (*scanner.Result, error) {
		g.running.Add(1)
		defer g.running.Done()

		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		unregister := context.AfterFunc(g.stopped, cancel)
		defer unregister()
		return scan(ctx)
	}
}

// cancel stops every running scan and every scan started later, then waits
// until they have returned or ctx ends.
func (g *scanGuard) cancel(ctx context.Context) error {
	g.stop()
	done := make(chan struct{})
	go func() {
		g.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readiness serves GET /readyz: 200 when the store responds to a ping and a
// Graph token can be had, from MSAL's cache or from Entra, and 503 otherwise.
// The body names each failed check, and the errors go to the log, once per
// change of state, because probes repeat every few seconds.
type readiness struct {
	store  store.Store
	tokens entra.TokenSource
	logger *slog.Logger

	mu           sync.Mutex
	lastProblems []string
}

func (r *readiness) handle(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()

	var problems []string
	var errs []error
	if err := r.store.Ping(ctx); err != nil {
		problems = append(problems, "store unreachable")
		errs = append(errs, err)
	}
	if _, err := r.tokens.Token(ctx); err != nil {
		problems = append(problems, "no Graph token")
		errs = append(errs, fmt.Errorf("get Graph token: %w", err))
	}
	r.logChange(problems, errors.Join(errs...))

	if len(problems) > 0 {
		c.String(http.StatusServiceUnavailable, "not ready: %s\n", strings.Join(problems, ", "))
		return
	}
	c.String(http.StatusOK, "ok\n")
}

// logChange logs the readiness state when it differs from the last check.
func (r *readiness) logChange(problems []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Equal(problems, r.lastProblems) {
		return
	}
	r.lastProblems = problems
	if len(problems) == 0 {
		r.logger.Info("ready")
		return
	}
	r.logger.Warn("not ready", "problems", problems, "err", err)
}
