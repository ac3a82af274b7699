package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

const healthcheckSynopsis = `Asks a running storagebot serve on this machine for GET /healthz and exits 0
when it answers 200. The container image uses it as its health check, since
the image has no shell or curl.`

func runHealthcheck(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("healthcheck [flags]", healthcheckSynopsis, stderr)
	addr := fs.String("addr", "", "address of the server (default from STORAGEBOT_ADDR, with an empty host read as 127.0.0.1)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	target := *addr
	if target == "" {
		c, err := loadConfig(env)
		if err != nil {
			return err
		}
		target = c.Addr
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("%w: address %q is invalid: %v", errUsage, target, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build health request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d, want 200", url, resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
