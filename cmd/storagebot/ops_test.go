package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/storagebot/storagebot/scanner"
	"github.com/storagebot/storagebot/store"
)

// pingStore is a store whose Ping returns err. Its other methods are not
// used by the readiness check.
type pingStore struct {
	store.Store
	err error
}

func (s pingStore) Ping(context.Context) error { return s.err }

type tokenFunc func(ctx context.Context) (string, error)

func (f tokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

func TestReadyz(t *testing.T) {
	down := errors.New("dial tcp 127.0.0.1:5432: connection refused")
	tests := []struct {
		name       string
		storeErr   error
		tokenErr   error
		wantStatus int
		wantBody   string
	}{
		{"ready", nil, nil, http.StatusOK, "ok\n"},
		{"store down", down, nil, http.StatusServiceUnavailable, "not ready: store unreachable\n"},
		{"no token", nil, errors.New("AADSTS7000222: expired secret"), http.StatusServiceUnavailable, "not ready: no Graph token\n"},
		{"both", down, errors.New("timeout"), http.StatusServiceUnavailable, "not ready: store unreachable, no Graph token\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := &readiness{
				store:  pingStore{err: tt.storeErr},
				tokens: tokenFunc(func(context.Context) (string, error) { return "secret-token", tt.tokenErr }),
				logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}
			gin.SetMode(gin.TestMode)
			engine := gin.New()
			engine.GET("/readyz", r.handle)

			for range 2 {
				rec := httptest.NewRecorder()
				engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
					t.Errorf("GET /readyz = %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
				}
			}

			if tt.wantStatus == http.StatusOK {
				if logs.Len() != 0 {
					t.Errorf("logs = %q, want none while the state stays ready", logs.String())
				}
				return
			}
			if n := strings.Count(logs.String(), `msg="not ready"`); n != 1 {
				t.Errorf("logged %d not-ready lines for two failed probes, want 1:\n%s", n, logs.String())
			}
			if strings.Contains(logs.String(), "secret-token") {
				t.Error("the log shows the token")
			}
		})
	}
}

// A scan that the guard wraps ends when the guard is canceled, and cancel
// waits for it to return.
func TestScanGuardCancelsRunningScan(t *testing.T) {
	guard := newScanGuard()
	started := make(chan struct{}, 1)
	scan := guard.wrap(func(ctx context.Context) (*scanner.Result, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})

	done := make(chan error, 1)
	go func() {
		_, err := scan(context.Background())
		done <- err
	}()
	<-started
	if err := guard.cancel(t.Context()); err != nil {
		t.Fatalf("cancel: %v", err)
	}

	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("scan returned %v, want context.Canceled", err)
		}
	default:
		t.Error("cancel returned before the scan did")
	}

	if _, err := scan(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("a scan started after cancel returned %v, want context.Canceled", err)
	}
}
