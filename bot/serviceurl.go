package bot

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// errServiceURLNotAllowed marks a serviceUrl outside the allow-list.
var errServiceURLNotAllowed = errors.New("serviceUrl not allowed")

// teamsConnectorHosts are the Bot Connector hosts of the Teams clouds:
// public, GCC, GCC High and DoD, as listed on "Send proactive messages"
// (https://learn.microsoft.com/en-us/microsoftteams/platform/sbs-send-proactive)
// and in the M365 Agents SDK's TeamsServiceEndpoints.
//
// NOTE: Teams operated by 21Vianet is missing because no public page
// found here names its connector host.
var teamsConnectorHosts = map[string]bool{
	"smba.trafficmanager.net":            true,
	"smba.infra.gcc.teams.microsoft.com": true,
	"smba.infra.gov.teams.microsoft.us":  true,
	"smba.infra.dod.teams.microsoft.us":  true,
}

// checkServiceURL accepts https on a Teams connector host, and, when
// allowLoopback is set, http or https on localhost or a loopback IP.
func checkServiceURL(raw string, allowLoopback bool) error {
	if raw == "" {
		return fmt.Errorf("%w: empty", errServiceURLNotAllowed)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", errServiceURLNotAllowed, raw, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: %q has user info, a query or a fragment", errServiceURLNotAllowed, raw)
	}

	host := strings.ToLower(u.Hostname())
	if u.Scheme == "https" && teamsConnectorHosts[host] && (u.Port() == "" || u.Port() == "443") {
		return nil
	}
	if allowLoopback && (u.Scheme == "http" || u.Scheme == "https") && isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%w: %q is not https on a Teams connector host", errServiceURLNotAllowed, raw)
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
