package manifest

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// validate checks opts, after defaults, against the v1.30 schema's limits
// and a few stricter rules, each explained where it is checked. Lengths count
// Unicode code points, as JSON Schema's maxLength does.
func validate(opts Options) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	add(checkAppID(opts.AppID))
	add(checkVersion(opts.Version))

	add(checkText("ShortName", opts.ShortName, maxShortName))
	add(checkText("FullName", opts.FullName, maxFullName))
	add(checkText("ShortDescription", opts.ShortDescription, maxShortDescription))
	add(checkText("FullDescription", opts.FullDescription, maxFullDescription))
	add(checkText("DeveloperName", opts.DeveloperName, maxDeveloperName))

	add(checkURL("WebsiteURL", opts.WebsiteURL))
	add(checkURL("PrivacyURL", opts.PrivacyURL))
	add(checkURL("TermsOfUseURL", opts.TermsOfUseURL))

	if !colorPattern.MatchString(opts.AccentColor) {
		add(&OptionError{"AccentColor", opts.AccentColor, "must be # and six hexadecimal digits, such as " + DefaultAccentColor})
	}

	for _, err := range checkCommands(opts.Commands) {
		add(err)
	}
	for _, err := range checkDomains(opts.ValidDomains) {
		add(err)
	}
	return errors.Join(errs...)
}

func checkAppID(id string) error {
	if id == "" {
		return &OptionError{"AppID", id, "is required: set it to the bot's Microsoft app ID, a GUID"}
	}
	if !guidPattern.MatchString(id) {
		return &OptionError{"AppID", id, "must be a GUID such as 00000000-0000-0000-0000-000000000000"}
	}
	return nil
}

func checkVersion(version string) error {
	if len(version) > maxVersion || !semverPattern.MatchString(version) {
		return &OptionError{"Version", version, "must be MAJOR.MINOR.PATCH without leading zeros, such as 1.0.0"}
	}
	return nil
}

// checkText rejects a blank value, which Teams would show as an empty label,
// and a value longer than maxRunes.
func checkText(field, value string, maxRunes int) error {
	if strings.TrimSpace(value) == "" {
		return &OptionError{field, value, "must not be blank"}
	}
	if n := utf8.RuneCountInString(value); n > maxRunes {
		return &OptionError{field, value, fmt.Sprintf("is %d characters long, the maximum is %d", n, maxRunes)}
	}
	return nil
}

// checkURL accepts an absolute https URL with a host. The schema also allows
// http, but these pages are public links in the app's details.
func checkURL(field, value string) error {
	if n := utf8.RuneCountInString(value); n > maxURL {
		return &OptionError{field, value, fmt.Sprintf("is %d characters long, the maximum is %d", n, maxURL)}
	}
	u, err := url.Parse(value)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return &OptionError{field, value, "must be an absolute https URL such as " + DefaultWebsiteURL}
	}
	return nil
}

// checkCommands also rejects a title that appears twice, ignoring case,
// because the two menu entries would put the same text into the compose box.
func checkCommands(commands []Command) []error {
	var errs []error
	if len(commands) > maxCommands {
		errs = append(errs, &OptionError{"Commands", fmt.Sprintf("%d commands", len(commands)),
			fmt.Sprintf("a command list can contain at most %d commands", maxCommands)})
	}

	seen := make(map[string]int, len(commands))
	for i, c := range commands {
		field := fmt.Sprintf("Commands[%d]", i)
		if err := checkText(field+".Title", c.Title, maxCommandTitle); err != nil {
			errs = append(errs, err)
		}
		if n := utf8.RuneCountInString(c.Description); n > maxCommandDesc {
			errs = append(errs, &OptionError{field + ".Description", c.Description,
				fmt.Sprintf("is %d characters long, the maximum is %d", n, maxCommandDesc)})
		}

		key := strings.ToLower(strings.TrimSpace(c.Title))
		if first, ok := seen[key]; ok && key != "" {
			errs = append(errs, &OptionError{field + ".Title", c.Title,
				fmt.Sprintf("repeats the title of Commands[%d]", first)})
			continue
		}
		seen[key] = i
	}
	return errs
}

// checkDomains accepts host names with an optional port and a leading "*."
// wildcard, like the schema's example *.example.com, and rejects a scheme or
// a path.
func checkDomains(domains []string) []error {
	var errs []error
	if len(domains) > maxValidDomains {
		errs = append(errs, &OptionError{"ValidDomains", fmt.Sprintf("%d domains", len(domains)),
			fmt.Sprintf("the manifest can contain at most %d valid domains", maxValidDomains)})
	}

	for i, d := range domains {
		field := fmt.Sprintf("ValidDomains[%d]", i)
		switch {
		case strings.TrimSpace(d) == "":
			errs = append(errs, &OptionError{field, d, "must not be blank"})
		case utf8.RuneCountInString(d) > maxDomain:
			errs = append(errs, &OptionError{field, d, fmt.Sprintf("is longer than %d characters", maxDomain)})
		case strings.ContainsAny(d, "/ \t\r\n?#@"):
			errs = append(errs, &OptionError{field, d, "must be a host name without scheme or path, such as storagebot.example.com"})
		}
	}
	return errs
}

// shorten keeps an error message readable when the rejected value is a long
// description.
func shorten(s string) string {
	const maxRunes = 40
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	return string([]rune(s)[:maxRunes]) + "..."
}
