// Package manifest owns the Teams app package: the zip of manifest.json and
// the two icons that an admin uploads to Teams to install storagebot.
package manifest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// The manifest follows schema v1.30, the newest numbered schema bundled in
// npm @microsoft/app-manifest 1.1.2 (build/json-schemas/teams/v1.0 to v1.30,
// without v1.18, plus vDevPreview). The limits below are that schema's.
const (
	SchemaURL       = "https://developer.microsoft.com/json-schemas/teams/v1.30/MicrosoftTeams.schema.json"
	ManifestVersion = "1.30"

	maxShortName        = 30
	maxFullName         = 100
	maxShortDescription = 80
	maxFullDescription  = 4000
	maxDeveloperName    = 32
	maxURL              = 2048
	maxVersion          = 256
	maxValidDomains     = 100
	maxDomain           = 2048
	maxCommands         = 12
	maxCommandTitle     = 128
	maxCommandDesc      = 4000
)

// Default values for every optional Options field. The developer URLs are
// placeholders under storagebot.example.com, a subdomain of example.com,
// which RFC 2606 reserves for documentation: replace them before publishing.
const (
	DefaultVersion          = "1.0.0"
	DefaultShortName        = "storagebot"
	DefaultFullName         = "storagebot: SharePoint storage by Team"
	DefaultShortDescription = "Shows which Teams use the most SharePoint storage."
	DefaultFullDescription  = "storagebot lists every Team in your Microsoft 365 tenant through " +
		"Microsoft Graph, reads the storage quota of each Team's SharePoint site and ranks the Teams " +
		"by the storage they use. Ask it \"top 10 teams\" or \"usage <team name>\" in a personal chat, " +
		"or @mention it in a channel. Teams it could not measure are listed with the reason."
	DefaultDeveloperName = "storagebot"
	DefaultWebsiteURL    = "https://storagebot.example.com/"
	DefaultPrivacyURL    = "https://storagebot.example.com/privacy"
	DefaultTermsOfUseURL = "https://storagebot.example.com/terms"
	// DefaultAccentColor is the Teams brand purple, also the background of
	// color.png.
	DefaultAccentColor = "#5B5FC7"
)

// File names inside the app package. Teams reads them from the zip root.
const (
	manifestFile = "manifest.json"
	colorFile    = "color.png"
	outlineFile  = "outline.png"
)

// botScopes are where storagebot can be installed: a personal chat with one
// admin, and a team, where it answers in channels when @mentioned.
var botScopes = []string{"personal", "team"}

// The patterns are the schema's definitions "guid", "semver" and "hexColor".
var (
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)
	semverPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	colorPattern  = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

// packageTime is the modification time of every file in the zip, fixed so
// that the same Options always give the same bytes. It is the MS-DOS epoch,
// the earliest time a zip header can store.
var packageTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// Command is one entry of the bot's command menu in Teams. Selecting it
// inserts Title into the compose box (learn.microsoft.com, "Create a
// commands menu").
type Command struct {
	Title       string
	Description string
}

// Options are the app package settings. Only AppID is required. An empty
// string field takes the Default constant of the same name.
type Options struct {
	// AppID is the bot's Microsoft app ID (the client ID of its Entra app
	// registration). It is both the manifest id and bots[0].botId.
	AppID string
	// Version is the app version, MAJOR.MINOR.PATCH. The schema asks for a
	// new version with every change to the manifest.
	Version string

	ShortName        string
	FullName         string
	ShortDescription string
	FullDescription  string

	DeveloperName string
	// WebsiteURL, PrivacyURL and TermsOfUseURL must be https URLs.
	WebsiteURL    string
	PrivacyURL    string
	TermsOfUseURL string

	// AccentColor is an HTML colour such as "#5B5FC7".
	AccentColor string

	// Commands fill the command menu of every bot scope. The caller builds
	// them from the bot's own command table, so that the menu offers only
	// commands the bot runs. An empty list gives the bot no command menu.
	Commands []Command
	// ValidDomains are host names, without a scheme, that the app may open.
	// The bot needs none, so the default is an empty list.
	ValidDomains []string
}

// OptionError reports an Options field whose value the manifest schema or
// Teams rejects.
type OptionError struct {
	// Field is the Options field, with an index for list items, for example
	// "Commands[1].Title".
	Field string
	// Value is the rejected value, or the item count of a list that is too
	// long.
	Value string
	// Problem describes what is wrong and which values are accepted.
	Problem string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("invalid manifest option %s %q: %s", e.Field, shorten(e.Value), e.Problem)
}

// Build returns the Teams app package, a zip with manifest.json, color.png
// and outline.png at its root. It returns every invalid option at once,
// joined, each as an *OptionError.
func Build(opts Options) ([]byte, error) {
	opts = withDefaults(opts)
	if err := validate(opts); err != nil {
		return nil, fmt.Errorf("build app package: %w", err)
	}

	// HTML escaping is off so that "<team name>" stays readable in the file.
	var manifestJSON bytes.Buffer
	enc := json.NewEncoder(&manifestJSON)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(newAppManifest(opts)); err != nil {
		return nil, fmt.Errorf("encode %s: %w", manifestFile, err)
	}

	colorPNG, outlinePNG, err := iconPNGs()
	if err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := []struct {
		name string
		data []byte
	}{
		{manifestFile, manifestJSON.Bytes()},
		{colorFile, colorPNG},
		{outlineFile, outlinePNG},
	}
	for _, f := range files {
		if err := addFile(zw, f.name, f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close app package zip: %w", err)
	}
	return buf.Bytes(), nil
}

func addFile(zw *zip.Writer, name string, data []byte) error {
	header := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: packageTime}
	w, err := zw.CreateHeader(header)
	if err != nil {
		return fmt.Errorf("add %s to app package: %w", name, err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write %s to app package: %w", name, err)
	}
	return nil
}

func withDefaults(opts Options) Options {
	setDefault(&opts.Version, DefaultVersion)
	setDefault(&opts.ShortName, DefaultShortName)
	setDefault(&opts.FullName, DefaultFullName)
	setDefault(&opts.ShortDescription, DefaultShortDescription)
	setDefault(&opts.FullDescription, DefaultFullDescription)
	setDefault(&opts.DeveloperName, DefaultDeveloperName)
	setDefault(&opts.WebsiteURL, DefaultWebsiteURL)
	setDefault(&opts.PrivacyURL, DefaultPrivacyURL)
	setDefault(&opts.TermsOfUseURL, DefaultTermsOfUseURL)
	setDefault(&opts.AccentColor, DefaultAccentColor)
	return opts
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}
