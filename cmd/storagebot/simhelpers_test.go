package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/storagebot/storagebot/entra"
	"github.com/storagebot/storagebot/simtenant"
)

// writeSimCA writes the simulated tenant's TLS certificate into dir, for a
// child process to trust through SSL_CERT_FILE, and returns its path.
func writeSimCA(t *testing.T, sim *simtenant.Tenant, dir string) string {
	t.Helper()
	caFile := filepath.Join(dir, "sim-ca.pem")
	if err := os.WriteFile(caFile, sim.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile
}

// simGraphToken gets a Graph token from the simulated tenant's Entra with
// MSAL, as an admin would from `az account get-access-token`.
func simGraphToken(ctx context.Context, t *testing.T, sim *simtenant.Tenant) string {
	t.Helper()
	tokens, err := entra.New(entra.Config{
		AuthorityHost: sim.AuthorityHost(),
		TenantID:      simtenant.PlaygroundTenantID,
		ClientID:      simtenant.DefaultClientID,
		ClientSecret:  simtenant.DefaultClientSecret,
		Scope:         graphScope,
		HTTPClient:    sim.HTTPClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.Token(ctx)
	if err != nil {
		t.Fatalf("get a token from the simulated authority: %v", err)
	}
	return token
}
