package simtenant

import (
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
)

const (
	// maxTokenRequestBytes bounds the form body of a token request.
	maxTokenRequestBytes = 64 << 10

	clientCredentialsGrant = "client_credentials"
	jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	defaultScopeSuffix     = "/.default"
	// servicePrincipalID is the oid and sub of app-only tokens: the object id
	// of the app's service principal in the tenant.
	servicePrincipalID   = "9a4e7c21-3f58-4d0b-8e6a-b1c2d3e4f5a6"
	appIDACRSecret       = "1"
	appIDACRCertificate  = "2"
	entraTimestampLayout = "2006-01-02 15:04:05Z"
	entraErrorURIPath    = "/error?code="
)

// graphRoles are the application permissions in the sim's Graph tokens: the
// scan lists groups and reads drive quotas.
var graphRoles = []string{"GroupMember.Read.All", "Sites.Read.All"}

// oidcScopes are added by MSAL to every request and ignored by Entra for the
// client credentials grant.
var oidcScopes = []string{"openid", "offline_access", "profile"}

// entraError is the error body of the Microsoft identity platform token and
// discovery endpoints.
type entraError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// aadsts is one AADSTS error: its OAuth error, its number and its message.
type aadsts struct {
	status  int
	err     string
	code    int
	message string
}

// openIDConfiguration is the subset of the v2.0 discovery document that
// Entra serves; MSAL Go reads authorization_endpoint, token_endpoint and
// issuer, and requires the issuer's host to match the authority's.
type openIDConfiguration struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	TenantRegionScope                 string   `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	MSGraphHost                       string   `json:"msgraph_host"`
}

type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

func (t *Tenant) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	if !t.acceptsTenant(r.PathValue("tenant")) {
		t.writeEntraError(w, r, errTenantNotFound(r.PathValue("tenant")))
		return
	}

	base := t.url + "/" + t.opts.TenantID
	writeJSON(w, t.log, http.StatusOK, openIDConfiguration{
		TokenEndpoint:                     base + "/oauth2/v2.0/token",
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		JWKSURI:                           base + "/discovery/v2.0/keys",
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		Issuer:                            base + "/v2.0",
		AuthorizationEndpoint:             base + "/oauth2/v2.0/authorize",
		DeviceAuthorizationEndpoint:       base + "/oauth2/v2.0/devicecode",
		EndSessionEndpoint:                base + "/oauth2/v2.0/logout",
		TenantRegionScope:                 "EU",
		CloudInstanceName:                 "microsoftonline.com",
		MSGraphHost:                       "graph.microsoft.com",
	})
}

func (t *Tenant) handleKeys(w http.ResponseWriter, r *http.Request) {
	if !t.acceptsTenant(r.PathValue("tenant")) {
		t.writeEntraError(w, r, errTenantNotFound(r.PathValue("tenant")))
		return
	}
	writeJSON(w, t.log, http.StatusOK, map[string][]jwk{"keys": {t.signer.jwk()}})
}

// handleToken implements the client credentials grant with a client secret
// (client_secret_post or client_secret_basic) or a certificate assertion
// (private_key_jwt).
func (t *Tenant) handleToken(w http.ResponseWriter, r *http.Request) {
	if !t.acceptsTenant(r.PathValue("tenant")) {
		t.writeEntraError(w, r, errTenantNotFound(r.PathValue("tenant")))
		return
	}
	// A body that does not parse leaves the form empty or partial, and the
	// checks below reject whatever is missing.
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		t.log.Warn("parse token request", "err", err)
	}

	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if user, password, ok := r.BasicAuth(); ok {
		clientID, secret = user, password
	}
	acr, rejection := t.authenticateClient(r, clientID, secret)
	if rejection != nil {
		t.log.Warn("reject token request", "client_id", clientID, "aadsts", rejection.code, "status", rejection.status)
		t.writeEntraError(w, r, *rejection)
		return
	}

	resource, rejection := parseDefaultScope(r.PostForm.Get("scope"), t.opts.TenantID)
	if rejection != nil {
		t.log.Warn("reject token request", "client_id", clientID, "aadsts", rejection.code, "status", rejection.status)
		t.writeEntraError(w, r, *rejection)
		return
	}

	token, expiresIn, err := t.issueToken(resource, acr)
	if err != nil {
		t.log.Error("issue access token", "client_id", clientID, "resource", resource, "err", err)
		t.writeEntraError(w, r, aadsts{http.StatusInternalServerError, "server_error", 50000, "There was an error issuing a token."})
		return
	}
	t.log.Debug("issued access token", "client_id", clientID, "resource", resource, "appidacr", acr, "expires_in", expiresIn)

	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, t.log, http.StatusOK, tokenResponse{TokenType: "Bearer", ExpiresIn: expiresIn, ExtExpiresIn: expiresIn, AccessToken: token})
}

// authenticateClient checks the grant type and the client's credential and
// returns the appidacr claim value: "1" for a secret, "2" for a certificate.
func (t *Tenant) authenticateClient(r *http.Request, clientID, secret string) (string, *aadsts) {
	grant := r.PostForm.Get("grant_type")
	switch {
	case grant == "":
		return "", &aadsts{http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."}
	case grant != clientCredentialsGrant:
		return "", &aadsts{http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant)}
	case clientID == "":
		return "", &aadsts{http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."}
	case !strings.EqualFold(clientID, t.opts.ClientID):
		return "", &aadsts{http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clientID, t.opts.TenantID)}
	}

	assertion := r.PostForm.Get("client_assertion")
	switch {
	case secret != "":
		if subtle.ConstantTimeCompare([]byte(secret), []byte(t.opts.ClientSecret)) != 1 {
			return "", &aadsts{http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", t.opts.ClientID)}
		}
		return appIDACRSecret, nil
	case assertion != "":
		if got := r.PostForm.Get("client_assertion_type"); got != jwtBearerAssertionType {
			return "", &aadsts{http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_assertion_type'."}
		}
		if rejection := t.checkAssertion(assertion, t.url+r.URL.Path); rejection != nil {
			return "", rejection
		}
		return appIDACRCertificate, nil
	default:
		return "", &aadsts{http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
}

// checkAssertion validates a private_key_jwt client assertion: iss and sub
// must be the client id, aud the token endpoint, and the lifetime current.
// The signature is checked only when Options.ClientCertificate is set.
func (t *Tenant) checkAssertion(raw, tokenEndpoint string) *aadsts {
	malformed := &aadsts{http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed."}
	jwt, err := parseJWT(raw)
	if err != nil {
		return malformed
	}
	var claims assertionClaims
	if err := json.Unmarshal(jwt.payload, &claims); err != nil {
		return malformed
	}

	if !strings.EqualFold(claims.Iss, t.opts.ClientID) || !strings.EqualFold(claims.Sub, t.opts.ClientID) {
		return &aadsts{http.StatusUnauthorized, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter."}
	}
	// NOTE: Entra's exact AADSTS code for a wrong aud is not documented; the
	// sim reuses the malformed-token code.
	if !claims.Aud.contains(tokenEndpoint) {
		return malformed
	}
	exp, expOK := unixSeconds(claims.Exp)
	nbf, nbfOK := unixSeconds(claims.Nbf)
	now := t.now().Unix()
	if !expOK || now >= exp || (nbfOK && now < nbf) {
		return &aadsts{http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range."}
	}

	cert := t.opts.ClientCertificate
	if cert == nil {
		return nil
	}
	invalid := &aadsts{http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation."}
	thumbprints := certificateThumbprints(cert)
	if !slices.Contains(thumbprints, jwt.header.X5t) && !slices.Contains(thumbprints, jwt.header.X5tS256) {
		return invalid
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || jwt.verifyWith(pub) != nil {
		return invalid
	}
	return nil
}

// parseDefaultScope returns the resource of a client credentials scope,
// which must be exactly one "<resource>/.default" besides the OIDC scopes.
func parseDefaultScope(scope, tenant string) (string, *aadsts) {
	var resources []string
	for _, s := range strings.Fields(scope) {
		if slices.Contains(oidcScopes, s) {
			continue
		}
		resources = append(resources, s)
	}
	if len(resources) != 1 || !strings.HasSuffix(resources[0], defaultScopeSuffix) {
		return "", &aadsts{http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
	}

	resource := strings.TrimSuffix(resources[0], defaultScopeSuffix)
	if resource != GraphResource && resource != BotFrameworkResource {
		return "", &aadsts{http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf(
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
			resource, tenant)}
	}
	return resource, nil
}

// issueToken signs an access token for resource and returns it with its
// lifetime in whole seconds, rounded up.
func (t *Tenant) issueToken(resource, acr string) (string, int64, error) {
	now := t.now()
	lifetime := t.opts.TokenLifetime

	t.mu.Lock()
	uti := t.ids.nextRequestID()
	t.mu.Unlock()

	claims := accessClaims{
		Aud:      resource,
		Iss:      "https://sts.windows.net/" + t.opts.TenantID + "/",
		Iat:      now.Unix(),
		Nbf:      now.Unix(),
		Exp:      now.Add(lifetime).Unix(),
		AppID:    t.opts.ClientID,
		AppIDACR: acr,
		IDType:   "app",
		OID:      servicePrincipalID,
		Sub:      servicePrincipalID,
		TID:      t.opts.TenantID,
		UTI:      uti,
		Ver:      "1.0",
	}
	if resource == GraphResource {
		claims.Roles = graphRoles
	}

	token, err := t.signer.sign(claims)
	if err != nil {
		return "", 0, err
	}

	t.mu.Lock()
	t.stats.TokensIssued++
	if resource == GraphResource {
		t.liveTokens = append(t.liveTokens, uti)
	}
	t.mu.Unlock()
	return token, int64(math.Ceil(lifetime.Seconds())), nil
}

func (t *Tenant) acceptsTenant(tenant string) bool {
	return strings.EqualFold(tenant, t.opts.TenantID)
}

func errTenantNotFound(tenant string) aadsts {
	return aadsts{http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf(
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)}
}

// writeEntraError writes an AADSTS error the way Entra does: the code and
// message in error_description, followed by trace and correlation ids.
func (t *Tenant) writeEntraError(w http.ResponseWriter, r *http.Request, e aadsts) {
	t.mu.Lock()
	traceID := t.ids.nextRequestID()
	t.mu.Unlock()
	correlationID := r.Header.Get("client-request-id")
	if correlationID == "" {
		correlationID = traceID
	}
	timestamp := t.now().UTC().Format(entraTimestampLayout)

	writeJSON(w, t.log, e.status, entraError{
		Error:            e.err,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.code, e.message, traceID, correlationID, timestamp),
		ErrorCodes:       []int{e.code},
		Timestamp:        timestamp,
		TraceID:          traceID,
		CorrelationID:    correlationID,
		ErrorURI:         t.url + entraErrorURIPath + fmt.Sprint(e.code),
	})
}

// errNoBearer is returned by bearerToken when the Authorization header holds
// no bearer token.
var errNoBearer = errors.New("authorization header has no bearer token")

func bearerToken(r *http.Request) (string, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", errNoBearer
	}
	return strings.TrimSpace(token), nil
}
