package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// maxErrorBody bounds how much of the authority's error body is parsed.
const maxErrorBody = 64 << 10

// aadstsCode matches Entra's error codes, for example AADSTS7000215.
var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

// Error is a failed token request. It carries what the authority returned
// and never the request, which contains the client secret or assertion.
type Error struct {
	ClientID string
	// StatusCode is the authority's HTTP status, or 0 without a response.
	StatusCode int
	// Code is the OAuth error, for example invalid_client.
	Code string
	// AADSTS is Entra's own error code, for example AADSTS7000215.
	AADSTS string
	// Description is the first line of the authority's error_description,
	// or MSAL's message when the authority sent no response.
	Description string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "acquire token for client %s", e.ClientID)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.AADSTS != "" && !strings.Contains(e.Description, e.AADSTS) {
		fmt.Fprintf(&b, " (%s)", e.AADSTS)
	}
	return b.String()
}

// tokenError converts an MSAL error into an *Error, or wraps ctx's error when
// ctx ended. MSAL's CallErr is not kept, because its Verbose method prints
// the request, which contains the credential.
func (c *Client) tokenError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("acquire token for client %s: %w", c.clientID, ctxErr)
	}

	e := &Error{ClientID: c.clientID}
	var call msalerrors.CallErr
	if errors.As(err, &call) && call.Resp != nil {
		e.StatusCode = call.Resp.StatusCode
		if call.Resp.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(call.Resp.Body, maxErrorBody))
			var oauth struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(body, &oauth) == nil {
				e.Code = oauth.Error
				e.Description = firstLine(oauth.Description)
			}
		}
	}
	if e.Description == "" {
		e.Description = strings.Join(strings.Fields(err.Error()), " ")
	}
	e.AADSTS = aadstsCode.FindString(err.Error())
	e.Description = redact(e.Description, c.secret)
	return e
}

// firstLine returns s up to its first line break, trimmed. Entra puts trace
// and correlation ids on the lines after the message.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// redact removes secret from s, as defence in depth: neither Entra nor MSAL
// is known to echo a client secret, but an error must never carry one.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}
