package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/storagebot/storagebot/entra"
)

const (
	// checkTimeout bounds each connectivity check of serve --check.
	checkTimeout = 30 * time.Second

	// maxMetadataBody bounds the OpenID metadata and key set documents that
	// serve --check reads. Both are a few kilobytes.
	maxMetadataBody = 1 << 20
)

// errCheckFailed is returned by serve --check after it printed its problems.
var errCheckFailed = errors.New("configuration check failed")

// serveProblems returns one line per setting that serve cannot start with,
// beyond the value checks of loadConfig.
func serveProblems(c Config) []string {
	var problems []string
	if c.AppID == "" && !isLoopback(c.Addr) {
		problems = append(problems, fmt.Sprintf("missing MicrosoftAppId: inbound auth can be off only on a loopback address, and STORAGEBOT_ADDR is %q; set MicrosoftAppId or listen on 127.0.0.1", c.Addr))
	}
	if len(c.TenantIDs) == 0 {
		problems = append(problems, "missing tenant: set MicrosoftAppTenantId or STORAGEBOT_TENANT_IDS to the tenant the bot serves")
	}
	if c.GraphToken == "" && (c.TenantID == "" || c.ClientID == "" || c.ClientSecret == "" && c.CertificatePath == "") {
		problems = append(problems, "missing Graph credentials: set GRAPH_TOKEN, or AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (the Microsoft* bot settings are used when these are empty)")
	}
	if c.AppID != "" && c.AppType != appTypeUserAssignedMSI && c.AppPassword == "" && c.AppCertificatePath == "" {
		problems = append(problems, "missing MicrosoftAppPassword: the bot needs it, or STORAGEBOT_APP_CERTIFICATE_PATH, to send replies when MicrosoftAppId is set")
	}
	return problems
}

// checkServe validates the configuration as serve reads it, then tests what
// it can reach. It opens, migrates and closes the store, gets a Graph token,
// and gets a Bot Connector token when MicrosoftAppId is set. With inbound
// auth on it also fetches the Bot Framework OpenID metadata and its keys. It
// returns one line per problem, naming the setting to fix.
//
// NOTE: a GRAPH_TOKEN is taken as it is: only a Graph request would show
// whether it is valid, and serve --check sends none.
func checkServe(ctx context.Context, c Config, loadErr error, httpClient *http.Client, logger *slog.Logger) []string {
	var problems []string
	var cfgErr *configError
	switch {
	case errors.As(loadErr, &cfgErr):
		problems = append(problems, cfgErr.problems...)
	case loadErr != nil:
		problems = append(problems, loadErr.Error())
	}
	problems = append(problems, serveProblems(c)...)

	if st, err := openStore(c, logger); err != nil {
		problems = append(problems, err.Error())
	} else if err := st.Close(); err != nil {
		problems = append(problems, fmt.Sprintf("close the store: %v", err))
	}

	if tokens, err := graphTokens(c, httpClient); err != nil {
		problems = append(problems, err.Error())
	} else if err := checkToken(ctx, tokens); err != nil {
		problems = append(problems, fmt.Sprintf("get a Graph token (AZURE_* or Microsoft* settings): %v", err))
	}

	if tokens, err := connectorTokens(c, httpClient); err != nil {
		problems = append(problems, err.Error())
	} else if tokens != nil {
		if err := checkToken(ctx, tokens); err != nil {
			problems = append(problems, fmt.Sprintf("get a Bot Connector token (MicrosoftAppId, MicrosoftAppType and its credential): %v", err))
		}
	}

	if c.AppID != "" {
		if err := checkMetadata(ctx, httpClient, c.OpenIDMetadata); err != nil {
			problems = append(problems, fmt.Sprintf("BotOpenIdMetadata: %v", err))
		}
	}

	// A missing credential is found both by the settings check and by the
	// attempt to build its token source: report it once.
	seen := make(map[string]bool, len(problems))
	unique := problems[:0]
	for _, p := range problems {
		if !seen[p] {
			seen[p] = true
			unique = append(unique, p)
		}
	}
	return unique
}

func checkToken(ctx context.Context, tokens entra.TokenSource) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	_, err := tokens.Token(ctx)
	return err
}

// checkMetadata fetches the OpenID metadata document and the key set that
// its jwks_uri names, as the webhook's token validation does, and checks
// that the key set has at least one key.
func checkMetadata(ctx context.Context, client *http.Client, metadataURL string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()

	var metadata struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, metadataURL, &metadata); err != nil {
		return err
	}
	if metadata.JWKSURI == "" {
		return fmt.Errorf("metadata at %s has no jwks_uri", metadataURL)
	}
	if err := checkMetadataURL(metadata.JWKSURI); err != nil {
		return fmt.Errorf("jwks_uri %q is invalid: %w", metadata.JWKSURI, err)
	}

	var keySet struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, client, metadata.JWKSURI, &keySet); err != nil {
		return err
	}
	if len(keySet.Keys) == 0 {
		return fmt.Errorf("key set at %s has no keys", metadata.JWKSURI)
	}
	return nil
}

// getJSON decodes the 200 response to GET rawURL into out.
func getJSON(ctx context.Context, client *http.Client, rawURL string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("build request for %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBody))
	if err != nil {
		return fmt.Errorf("read %s: %w", rawURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: HTTP %d, want 200", rawURL, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode %s: %w", rawURL, err)
	}
	return nil
}

// runCheck prints each problem of checkServe on its own line to stderr, or
// "configuration OK" to stdout.
func runCheck(ctx context.Context, c Config, loadErr error, httpClient *http.Client, stdout, stderr io.Writer) error {
	logger := slog.New(slog.DiscardHandler)
	problems := checkServe(ctx, c, loadErr, httpClient, logger)
	if len(problems) == 0 {
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	return fmt.Errorf("%w: %d problems", errCheckFailed, len(problems))
}
