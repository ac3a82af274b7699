package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/storagebot/storagebot/bot"
	"github.com/storagebot/storagebot/cards"
	"github.com/storagebot/storagebot/digest"
	"github.com/storagebot/storagebot/manifest"
)

const manifestSynopsis = `Writes the Teams app package: a zip with manifest.json, color.png and
outline.png at its root, for upload in the Teams admin center. The bot can be
installed in personal chats and in teams, and its command menu lists the chat
commands of this build. The developer URLs are placeholders under
storagebot.example.com unless the flags set them.`

func runManifest(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs := newFlagSet("manifest --app-id <id> [flags]", manifestSynopsis, stderr)
	appID := fs.String("app-id", "", "the bot's Microsoft App ID, the Application (client) ID of its Entra app registration (default from MicrosoftAppId)")
	out := fs.String("out", "storagebot.zip", "file to write the app package to, or - for standard output")
	appVersion := fs.String("version", manifest.DefaultVersion, "app version MAJOR.MINOR.PATCH; raise it for every package you upload again")
	developer := fs.String("developer", manifest.DefaultDeveloperName, "developer name shown in Teams")
	website := fs.String("website-url", manifest.DefaultWebsiteURL, "developer website, an https URL")
	privacy := fs.String("privacy-url", manifest.DefaultPrivacyURL, "privacy statement, an https URL")
	terms := fs.String("terms-url", manifest.DefaultTermsOfUseURL, "terms of use, an https URL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	if *appID == "" {
		if id, ok := env.Lookup("MicrosoftAppId"); ok {
			*appID = strings.TrimSpace(id)
		}
	}
	if *appID == "" {
		return fmt.Errorf("%w: missing --app-id: set it, or MicrosoftAppId, to the Application (client) ID of the bot's app registration", errUsage)
	}

	pkg, err := manifest.Build(manifest.Options{
		AppID:         *appID,
		Version:       *appVersion,
		DeveloperName: *developer,
		WebsiteURL:    *website,
		PrivacyURL:    *privacy,
		TermsOfUseURL: *terms,
		Commands:      manifestCommands(),
	})
	var optErr *manifest.OptionError
	if errors.As(err, &optErr) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err != nil {
		return err
	}

	if *out == "-" {
		_, err := stdout.Write(pkg)
		return err
	}
	if err := os.WriteFile(*out, pkg, 0o644); err != nil {
		return fmt.Errorf("write app package: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s (%d bytes) for app id %s\n", *out, len(pkg), *appID)
	return nil
}

// manifestCommands returns the Teams command menu built from the bot's
// command table: each title is the command word, which Teams puts into the
// compose box, and the description ends with the usage when the command
// takes more than its word.
func manifestCommands() []manifest.Command {
	var out []manifest.Command
	// The digest command is registered by serve on top of the bot's own
	// table, so it is added here the same way.
	table := append(bot.Commands(), cards.Command{Usage: digest.CommandUsage, Description: digest.CommandDescription})
	for _, c := range table {
		verb, _, _ := strings.Cut(c.Usage, " ")
		description := c.Description
		if c.Usage != verb {
			description = strings.TrimSpace(description) + " Usage: " + c.Usage
		}
		out = append(out, manifest.Command{Title: verb, Description: description})
	}
	return out
}
