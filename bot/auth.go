package bot

import (
	"context"
	"fmt"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/storagebot/storagebot/botauth"
)

// Authenticator checks that a request comes from the Bot Connector for
// this bot. authHeader is the raw Authorization header, possibly empty.
type Authenticator interface {
	Authenticate(ctx context.Context, authHeader string, a *schema.Activity) error
}

// NewBotFrameworkAuthenticator returns an Authenticator that validates the
// Bot Connector's JWT with v: signature, issuer, audience, lifetime with
// clock skew, key endorsements against the activity's channelId and the
// serviceurl claim against its serviceUrl.
func NewBotFrameworkAuthenticator(v *botauth.Validator) Authenticator {
	return jwtAuthenticator{validator: v}
}

type jwtAuthenticator struct {
	validator *botauth.Validator
}

func (j jwtAuthenticator) Authenticate(ctx context.Context, authHeader string, a *schema.Activity) error {
	if _, err := j.validator.Validate(ctx, authHeader, a.ChannelID, a.ServiceURL); err != nil {
		return fmt.Errorf("validate bearer token: %w", err)
	}
	return nil
}

// noAuthentication accepts every request. New uses it only in local
// development, where the Agents Playground sends no Authorization header.
type noAuthentication struct{}

func (noAuthentication) Authenticate(context.Context, string, *schema.Activity) error {
	return nil
}
