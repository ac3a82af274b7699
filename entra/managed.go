package entra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"
)

// ManagedIdentityConfig selects a user-assigned managed identity and the
// resource its tokens are for.
type ManagedIdentityConfig struct {
	// ClientID is the managed identity's client id; for a bot of type
	// UserAssignedMSI it equals MicrosoftAppId.
	ClientID string
	// Scope is the resource's .default scope, for example
	// https://api.botframework.com/.default.
	Scope string
	// HTTPClient carries the calls to the identity endpoint. Nil means
	// MSAL's default client.
	HTTPClient *http.Client
}

// ManagedIdentity is a TokenSource backed by MSAL's managed identity client.
// MSAL finds the identity endpoint from the environment of the Azure host
// (IDENTITY_ENDPOINT and IDENTITY_HEADER on App Service and Container Apps,
// otherwise the instance metadata service), caches tokens in its process-wide
// cache and is safe for concurrent use.
type ManagedIdentity struct {
	client   managedidentity.Client
	resource string
	clientID string
}

// NewManagedIdentity validates cfg and creates the client. It makes no
// network call.
func NewManagedIdentity(cfg ManagedIdentityConfig) (*ManagedIdentity, error) {
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("%w: managed identity client id is missing", ErrInvalidConfig)
	}
	if cfg.Scope == "" {
		return nil, fmt.Errorf("%w: scope is missing", ErrInvalidConfig)
	}

	var opts []managedidentity.ClientOption
	if cfg.HTTPClient != nil {
		opts = append(opts, managedidentity.WithHTTPClient(cfg.HTTPClient))
	}
	client, err := managedidentity.New(managedidentity.UserAssignedClientID(cfg.ClientID), opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: create managed identity client for %s: %w", ErrInvalidConfig, cfg.ClientID, err)
	}
	return &ManagedIdentity{client: client, resource: cfg.Scope, clientID: cfg.ClientID}, nil
}

// Token returns a token for the configured resource. MSAL strips the
// "/.default" suffix, because identity endpoints take a resource URI.
func (m *ManagedIdentity) Token(ctx context.Context) (string, error) {
	res, err := m.client.AcquireToken(ctx, m.resource)
	if err != nil {
		return "", m.tokenError(ctx, err)
	}
	return res.AccessToken, nil
}

// tokenError converts an MSAL error into an *Error. MSAL's CallErr is not
// kept, because its Verbose method prints the request with the identity
// header, a secret of the host.
func (m *ManagedIdentity) tokenError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("acquire managed identity token for client %s: %w", m.clientID, ctxErr)
	}

	e := &Error{ClientID: m.clientID, Description: firstLine(err.Error())}
	var call msalerrors.CallErr
	if errors.As(err, &call) && call.Resp != nil {
		e.StatusCode = call.Resp.StatusCode
	}
	e.AADSTS = aadstsCode.FindString(err.Error())
	e.Description = strings.TrimSpace(e.Description)
	return e
}
