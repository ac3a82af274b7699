package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/infracloudio/msbotbuilder-go/connector/auth"
	"github.com/infracloudio/msbotbuilder-go/schema"
)

// ErrMissingAuthorization is returned for a request without an
// Authorization header when authentication is on.
var ErrMissingAuthorization = errors.New("missing Authorization header")

// Authenticator checks that a request comes from the Bot Connector for
// this bot. authHeader is the raw Authorization header, possibly empty.
type Authenticator interface {
	Authenticate(ctx context.Context, authHeader string, a *schema.Activity) error
}

// NewBotFrameworkAuthenticator returns an Authenticator that validates the
// Bot Connector's JWT with msbotbuilder-go v0.2.5's auth.JwtTokenValidator:
// signature against the keys at login.botframework.com, issuer
// https://api.botframework.com, audience appID, RS256/384/512 and the
// serviceurl claim against the activity's serviceUrl.
//
// NOTE: a full validator replaces this one. The library fetches the
// OpenID metadata on every request, keeps keys 5 days without refetching
// on an unknown kid, checks no endorsements, allows no clock skew and
// panics on a token without a string serviceurl, iss or aud claim.
func NewBotFrameworkAuthenticator(appID string) Authenticator {
	return &botFrameworkAuthenticator{
		validator:   auth.NewJwtTokenValidator(),
		credentials: auth.SimpleCredentialProvider{AppID: appID},
	}
}

// botFrameworkAuthenticator adapts msbotbuilder-go's validator.
type botFrameworkAuthenticator struct {
	// mu serialises calls, because the validator replaces its key cache
	// without a lock.
	mu          sync.Mutex
	validator   auth.TokenValidator
	credentials auth.CredentialProvider
}

// Authenticate rejects a request whose bearer token fails validation.
func (v *botFrameworkAuthenticator) Authenticate(ctx context.Context, authHeader string, a *schema.Activity) (err error) {
	if strings.TrimSpace(authHeader) == "" {
		return ErrMissingAuthorization
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("validate bearer token: validator panicked: %v", r)
		}
	}()

	identity, err := v.validator.AuthenticateRequest(ctx, *a, authHeader, v.credentials, auth.ChannelService)
	if err != nil {
		return fmt.Errorf("validate bearer token: %w", err)
	}
	if identity == nil || !identity.IsAuthenticated() {
		return errors.New("validate bearer token: no authenticated identity")
	}
	return nil
}

// noAuthentication accepts every request. New uses it only in local
// development, where the Agents Playground sends no Authorization header.
type noAuthentication struct{}

func (noAuthentication) Authenticate(context.Context, string, *schema.Activity) error {
	return nil
}
