package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/storagebot/storagebot/scanner"
)

const scanSynopsis = `Scans every Team of a tenant once through Microsoft Graph and prints one row
per Team, largest first. Teams that could not be measured are listed too, with
the reason. Credentials come from --token / GRAPH_TOKEN, or from the AZURE_*
(or Microsoft*) settings for an app-only token.`

func runScan(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("scan [flags]", scanSynopsis, stderr)
	graphURL := fs.String("graph-url", "", "Graph base URL (default from GRAPH_BASE_URL, else https://graph.microsoft.com/v1.0)")
	token := fs.String("token", "", "Graph bearer token (default from GRAPH_TOKEN); prefer GRAPH_TOKEN, since flags are visible to other users of the machine")
	format := fs.String("format", "table", "output format: csv, json or table")
	concurrency := fs.Int("concurrency", 0, "Graph JSON batches (each of up to 20 drive lookups) in flight at once, 1 to 64 (default from STORAGEBOT_SCAN_CONCURRENCY, else 32)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up on the whole scan after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	write, ok := map[string]func(io.Writer, *scanner.Result) error{
		"csv":   scanner.WriteCSV,
		"json":  scanner.WriteJSON,
		"table": scanner.WriteTable,
	}[*format]
	if !ok {
		return fmt.Errorf("%w: --format %q is invalid: want csv, json or table", errUsage, *format)
	}
	if *concurrency != 0 && (*concurrency < 1 || *concurrency > 64) {
		return fmt.Errorf("%w: --concurrency %d is invalid: want 1 to 64", errUsage, *concurrency)
	}

	c, err := loadConfig(env)
	if err != nil {
		return err
	}
	if *graphURL != "" {
		c.GraphURL = *graphURL
	}
	if *token != "" {
		c.GraphToken = *token
	}
	if *concurrency != 0 {
		c.ScanConcurrency = *concurrency
	}
	if _, set := env.Lookup("STORAGEBOT_LOG_FORMAT"); !set {
		c.LogFormat = "text"
	}
	logger := newLogger(c, stderr)

	tokens, err := graphTokens(c, nil)
	if err != nil {
		return err
	}
	s, err := newScanner(c, tokens, nil, logger)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	result, err := s.Scan(ctx)
	if err != nil {
		return err
	}
	return write(stdout, result)
}
