package manifest

// appManifest is the subset of the Teams app manifest (schema v1.30) that
// storagebot fills, in the schema's property order.
type appManifest struct {
	Schema          string      `json:"$schema"`
	ManifestVersion string      `json:"manifestVersion"`
	Version         string      `json:"version"`
	ID              string      `json:"id"`
	Developer       developer   `json:"developer"`
	Name            name        `json:"name"`
	Description     description `json:"description"`
	Icons           icons       `json:"icons"`
	AccentColor     string      `json:"accentColor"`
	Bots            []bot       `json:"bots"`
	ValidDomains    []string    `json:"validDomains"`
}

type developer struct {
	Name          string `json:"name"`
	WebsiteURL    string `json:"websiteUrl"`
	PrivacyURL    string `json:"privacyUrl"`
	TermsOfUseURL string `json:"termsOfUseUrl"`
}

type name struct {
	Short string `json:"short"`
	Full  string `json:"full"`
}

type description struct {
	Short string `json:"short"`
	Full  string `json:"full"`
}

type icons struct {
	Color   string `json:"color"`
	Outline string `json:"outline"`
}

type bot struct {
	BotID              string        `json:"botId"`
	Scopes             []string      `json:"scopes"`
	SupportsFiles      bool          `json:"supportsFiles"`
	IsNotificationOnly bool          `json:"isNotificationOnly"`
	CommandLists       []commandList `json:"commandLists,omitempty"`
}

// commandList is the command menu of one scope. A list may name several
// scopes, but the schema's description of commandLists recommends a separate
// list per scope.
type commandList struct {
	Scopes   []string  `json:"scopes"`
	Commands []command `json:"commands"`
}

type command struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// newAppManifest maps validated options to the manifest.
func newAppManifest(opts Options) appManifest {
	commands := make([]command, len(opts.Commands))
	for i, c := range opts.Commands {
		commands[i] = command{Title: c.Title, Description: c.Description}
	}
	var lists []commandList
	if len(commands) > 0 {
		for _, scope := range botScopes {
			lists = append(lists, commandList{Scopes: []string{scope}, Commands: commands})
		}
	}

	domains := opts.ValidDomains
	if domains == nil {
		domains = []string{}
	}

	return appManifest{
		Schema:          SchemaURL,
		ManifestVersion: ManifestVersion,
		Version:         opts.Version,
		ID:              opts.AppID,
		Developer: developer{
			Name:          opts.DeveloperName,
			WebsiteURL:    opts.WebsiteURL,
			PrivacyURL:    opts.PrivacyURL,
			TermsOfUseURL: opts.TermsOfUseURL,
		},
		Name:        name{Short: opts.ShortName, Full: opts.FullName},
		Description: description{Short: opts.ShortDescription, Full: opts.FullDescription},
		Icons:       icons{Color: colorFile, Outline: outlineFile},
		AccentColor: opts.AccentColor,
		Bots: []bot{{
			BotID:              opts.AppID,
			Scopes:             botScopes,
			SupportsFiles:      false,
			IsNotificationOnly: false,
			CommandLists:       lists,
		}},
		ValidDomains: domains,
	}
}
