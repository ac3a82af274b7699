package main

import (
	"context"
	"io"
)

const serveSynopsis = `Runs the bot's webhook (POST /api/messages) for a real tenant. Settings come
from the environment (see the README's configuration table); --addr overrides
STORAGEBOT_ADDR.`

func runServe(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve [flags]", serveSynopsis, stderr)
	addr := fs.String("addr", "", "listen address, for example 127.0.0.1:3978 or :3978 (default from STORAGEBOT_ADDR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	c, err := loadConfig(env)
	if err != nil {
		return err
	}
	if *addr != "" {
		c.Addr = *addr
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
