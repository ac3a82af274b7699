package entra

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// loopbackOnlyClient refuses to dial anything but a loopback IP, so that a
// wrong source detection can never reach the real instance metadata service.
func loopbackOnlyClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("test client dials loopback only, not %s", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

// identityRequest is one request the fake identity endpoint received.
type identityRequest struct {
	header, clientID, resource string
}

// fakeIdentityEndpoint serves App Service's managed identity protocol
// (IDENTITY_ENDPOINT with the X-IDENTITY-HEADER secret) on 127.0.0.1 and
// points MSAL at it through the environment.
func fakeIdentityEndpoint(t *testing.T, status int) (*[]identityRequest, *sync.Mutex) {
	t.Helper()
	var (
		mu       sync.Mutex
		requests []identityRequest
	)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, identityRequest{
			header:   r.Header.Get("X-IDENTITY-HEADER"),
			clientID: r.URL.Query().Get("client_id"),
			resource: r.URL.Query().Get("resource"),
		})
		mu.Unlock()

		w.Header().Set("Content-Type", "application/json")
		if status != http.StatusOK {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":"invalid_request","error_description":"Identity not found"}`)
			return
		}
		expires := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
		fmt.Fprintf(w, `{"access_token":"mi-token-%s","expires_on":%q,"resource":%q,"token_type":"Bearer","client_id":%q}`,
			r.URL.Query().Get("client_id"), expires, r.URL.Query().Get("resource"), r.URL.Query().Get("client_id"))
	}))
	t.Cleanup(server.Close)

	t.Setenv("IDENTITY_ENDPOINT", server.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", "test-identity-header")
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	t.Setenv("MSI_ENDPOINT", "")
	t.Setenv("IMDS_ENDPOINT", "")
	return &requests, &mu
}

func TestManagedIdentityToken(t *testing.T) {
	requests, mu := fakeIdentityEndpoint(t, http.StatusOK)
	// MSAL's managed identity cache is process-wide, so the client id is
	// unique to this test.
	const clientID = "11111111-2222-3333-4444-000000000001"

	source, err := NewManagedIdentity(ManagedIdentityConfig{
		ClientID:   clientID,
		Scope:      "https://api.botframework.com/.default",
		HTTPClient: loopbackOnlyClient(),
	})
	if err != nil {
		t.Fatalf("NewManagedIdentity: %v", err)
	}

	for range 2 {
		token, err := source.Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if token != "mi-token-"+clientID {
			t.Errorf("token = %q, want the endpoint's token", token)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(*requests) != 1 {
		t.Fatalf("identity endpoint received %d requests, want 1 (the second Token comes from the cache)", len(*requests))
	}
	got := (*requests)[0]
	if got.header != "test-identity-header" {
		t.Errorf("X-IDENTITY-HEADER = %q, want the host's secret", got.header)
	}
	if got.clientID != clientID {
		t.Errorf("client_id = %q, want %q", got.clientID, clientID)
	}
	if got.resource != "https://api.botframework.com" {
		t.Errorf("resource = %q, want https://api.botframework.com without /.default", got.resource)
	}
}

func TestManagedIdentityErrorTyped(t *testing.T) {
	fakeIdentityEndpoint(t, http.StatusBadRequest)
	const clientID = "11111111-2222-3333-4444-000000000002"

	source, err := NewManagedIdentity(ManagedIdentityConfig{ClientID: clientID, Scope: "https://api.botframework.com/.default", HTTPClient: loopbackOnlyClient()})
	if err != nil {
		t.Fatalf("NewManagedIdentity: %v", err)
	}
	_, err = source.Token(t.Context())

	var tokenErr *Error
	if !errors.As(err, &tokenErr) {
		t.Fatalf("Token error = %v, want an *Error", err)
	}
	if tokenErr.StatusCode != http.StatusBadRequest || tokenErr.ClientID != clientID {
		t.Errorf("error = %+v, want HTTP 400 for %s", tokenErr, clientID)
	}
}

func TestNewManagedIdentityRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ManagedIdentityConfig
	}{
		{name: "missing client id", cfg: ManagedIdentityConfig{Scope: "https://api.botframework.com/.default"}},
		{name: "missing scope", cfg: ManagedIdentityConfig{ClientID: "11111111-2222-3333-4444-000000000003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewManagedIdentity(tt.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewManagedIdentity error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
