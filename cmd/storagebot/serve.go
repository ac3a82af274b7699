package main

import (
	"context"
	"io"
	"net/http"
)

const serveSynopsis = `Runs the bot's webhook (POST /api/messages) for a real tenant, with GET
/healthz, /readyz and /metrics beside it. Settings come from the environment
(see the README's configuration table); --addr overrides STORAGEBOT_ADDR.
With --check it validates the settings, opens and migrates the store, gets a
Graph and a Bot Connector token and fetches the OpenID metadata, prints one
line per problem or "configuration OK", and exits.`

func runServe(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve [flags]", serveSynopsis, stderr)
	addr := fs.String("addr", "", "listen address, for example 127.0.0.1:3978 or :3978 (default from STORAGEBOT_ADDR)")
	check := fs.Bool("check", false, "check the configuration and the connections to the store, Entra and the OpenID metadata, then exit: status 0 when all pass, 1 otherwise")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	c, err := loadConfig(env)
	if *addr != "" {
		c.Addr = *addr
	}
	if *check {
		return runCheck(ctx, c, err, &http.Client{Timeout: checkTimeout}, stdout, stderr)
	}
	if err != nil {
		return err
	}
	logger := newLogger(c, stderr)

	a, err := startApp(c, nil, logger)
	if err != nil {
		return err
	}
	if c.AppID == "" {
		logger.Warn("inbound authentication is off because MicrosoftAppId is empty; this is for local development only", "addr", c.Addr)
	}
	return a.wait(ctx)
}
