package simtenant

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// signingKeyBits is the RSA size Entra uses for its token signing keys.
const signingKeyBits = 2048

// Reasons an access token or a client assertion is rejected.
var (
	errTokenMalformed = errors.New("token is malformed")
	errTokenSignature = errors.New("token signature is invalid")
	errTokenExpired   = errors.New("token is expired or not yet valid")
	errTokenAudience  = errors.New("token audience is invalid")
	errTokenTenant    = errors.New("token tenant is invalid")
)

// tokenSigner issues the sim's RS256 access tokens and verifies them.
type tokenSigner struct {
	key *rsa.PrivateKey
	kid string
}

func newTokenSigner() (*tokenSigner, error) {
	key, err := rsa.GenerateKey(rand.Reader, signingKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate token signing key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("marshal token signing key: %w", err)
	}
	sum := sha1.Sum(der)
	return &tokenSigner{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// accessClaims are the claims of an app-only access token, as Entra issues
// them in version 1.0 tokens for Graph and the Bot Connector.
type accessClaims struct {
	Aud      string   `json:"aud"`
	Iss      string   `json:"iss"`
	Iat      int64    `json:"iat"`
	Nbf      int64    `json:"nbf"`
	Exp      int64    `json:"exp"`
	AppID    string   `json:"appid"`
	AppIDACR string   `json:"appidacr"`
	IDType   string   `json:"idtyp"`
	OID      string   `json:"oid"`
	Roles    []string `json:"roles,omitempty"`
	Sub      string   `json:"sub"`
	TID      string   `json:"tid"`
	UTI      string   `json:"uti"`
	Ver      string   `json:"ver"`
}

type jwtHeader struct {
	Alg     string `json:"alg"`
	Typ     string `json:"typ,omitempty"`
	Kid     string `json:"kid,omitempty"`
	X5t     string `json:"x5t,omitempty"`
	X5tS256 string `json:"x5t#S256,omitempty"`
}

// sign encodes claims as a compact RS256 JWS.
func (s *tokenSigner) sign(claims accessClaims) (string, error) {
	header, err := json.Marshal(jwtHeader{Alg: "RS256", Typ: "JWT", Kid: s.kid, X5t: s.kid})
	if err != nil {
		return "", fmt.Errorf("encode token header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}

	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signed))
	signature, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(signature), nil
}

// verify checks that raw is a token this signer issued for audience and
// tenant, valid at now, and returns its claims.
func (s *tokenSigner) verify(raw, audience, tenant string, now time.Time) (accessClaims, error) {
	jwt, err := parseJWT(raw)
	if err != nil {
		return accessClaims{}, err
	}
	if jwt.header.Alg != "RS256" || jwt.header.Kid != s.kid {
		return accessClaims{}, fmt.Errorf("check key %q with algorithm %q: %w", jwt.header.Kid, jwt.header.Alg, errTokenSignature)
	}
	if err := jwt.verifyWith(&s.key.PublicKey); err != nil {
		return accessClaims{}, err
	}

	var claims accessClaims
	if err := json.Unmarshal(jwt.payload, &claims); err != nil {
		return accessClaims{}, fmt.Errorf("decode token claims: %w", errTokenMalformed)
	}
	if claims.Aud != audience {
		return accessClaims{}, fmt.Errorf("check audience %q: %w", claims.Aud, errTokenAudience)
	}
	if !strings.EqualFold(claims.TID, tenant) {
		return accessClaims{}, fmt.Errorf("check tenant %q: %w", claims.TID, errTokenTenant)
	}
	if unix := now.Unix(); unix >= claims.Exp || unix < claims.Nbf {
		return accessClaims{}, fmt.Errorf("check lifetime %d..%d at %d: %w", claims.Nbf, claims.Exp, unix, errTokenExpired)
	}
	return claims, nil
}

// jwk is one RSA key of a JSON Web Key Set (RFC 7517).
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	X5t string `json:"x5t"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (s *tokenSigner) jwk() jwk {
	pub := s.key.PublicKey
	return jwk{
		Kty: "RSA",
		Use: "sig",
		Kid: s.kid,
		X5t: s.kid,
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// parsedJWT is a compact JWS split into its parts (RFC 7515, section 7.1).
type parsedJWT struct {
	header    jwtHeader
	payload   []byte
	signed    string
	signature []byte
}

func parseJWT(raw string) (parsedJWT, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return parsedJWT{}, fmt.Errorf("split token into 3 parts, got %d: %w", len(parts), errTokenMalformed)
	}
	headerJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return parsedJWT{}, fmt.Errorf("decode token header: %w", errTokenMalformed)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return parsedJWT{}, fmt.Errorf("decode token payload: %w", errTokenMalformed)
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return parsedJWT{}, fmt.Errorf("decode token signature: %w", errTokenMalformed)
	}

	var header jwtHeader
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return parsedJWT{}, fmt.Errorf("decode token header: %w", errTokenMalformed)
	}
	return parsedJWT{header: header, payload: payload, signed: parts[0] + "." + parts[1], signature: signature}, nil
}

// verifyWith checks an RS256 or PS256 signature. MSAL Go 1.10 signs client
// assertions with PS256; older clients and ADFS use RS256.
func (j parsedJWT) verifyWith(pub *rsa.PublicKey) error {
	digest := sha256.Sum256([]byte(j.signed))
	var err error
	switch j.header.Alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.signature)
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], j.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("check algorithm %q: %w", j.header.Alg, errTokenSignature)
	}
	if err != nil {
		return fmt.Errorf("verify %s signature: %w", j.header.Alg, errTokenSignature)
	}
	return nil
}

// assertionClaims are the claims of a client assertion (RFC 7523). aud may be
// a string or an array, and the times may be integers or decimals.
type assertionClaims struct {
	Aud audience    `json:"aud"`
	Iss string      `json:"iss"`
	Sub string      `json:"sub"`
	Exp json.Number `json:"exp"`
	Nbf json.Number `json:"nbf"`
}

type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var single string
	if err := json.Unmarshal(b, &single); err == nil {
		*a = audience{single}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("decode aud claim: %w", err)
	}
	*a = many
	return nil
}

func (a audience) contains(want string) bool {
	for _, v := range a {
		if strings.EqualFold(strings.TrimSuffix(v, "/"), strings.TrimSuffix(want, "/")) {
			return true
		}
	}
	return false
}

// unixSeconds parses a NumericDate (RFC 7519, section 2); ok is false when
// the claim is missing or not a number.
func unixSeconds(n json.Number) (seconds int64, ok bool) {
	if n == "" {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil {
		return 0, false
	}
	return int64(f), true
}

// certificateThumbprints returns the base64 SHA-1 and SHA-256 thumbprints of
// a certificate, in standard and URL-safe alphabets, because MSAL Go sends
// them in standard base64 while RFC 7515 specifies base64url.
func certificateThumbprints(cert *x509.Certificate) []string {
	sha1Sum := sha1.Sum(cert.Raw)
	sha256Sum := sha256.Sum256(cert.Raw)
	var out []string
	for _, sum := range [][]byte{sha1Sum[:], sha256Sum[:]} {
		out = append(out,
			base64.StdEncoding.EncodeToString(sum),
			base64.RawStdEncoding.EncodeToString(sum),
			base64.URLEncoding.EncodeToString(sum),
			base64.RawURLEncoding.EncodeToString(sum))
	}
	return out
}
