package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
)

// Service-account groups, upstream's.
const (
	GroupServiceAccounts = "system:serviceaccounts"
	// ServiceAccountUsernamePrefix starts the user name of a service
	// account: system:serviceaccount:<namespace>:<name>.
	ServiceAccountUsernamePrefix = "system:serviceaccount:"
)

// TokenAuthenticator authenticates a bearer token.
type TokenAuthenticator interface {
	// AuthenticateToken returns the token's user, or an error when the
	// token is not valid.
	AuthenticateToken(ctx context.Context, token string) (*User, error)
}

// Authenticator authenticates a request by its client certificate, else
// by its bearer token, as upstream's union of the x509 and token
// authenticators.
type Authenticator struct {
	// Roots verify client certificates.
	Roots *x509.CertPool
	// Tokens verifies bearer tokens; nil: bearer tokens are not accepted.
	Tokens TokenAuthenticator
}

// Authenticate returns the user of a request with the TLS state and the
// value of its Authorization header (or gRPC "authorization" metadata).
// It returns ErrNoCredentials when the request carried neither a
// certificate nor a bearer token.
func (a *Authenticator) Authenticate(ctx context.Context, state *tls.ConnectionState, authorization string) (*User, error) {
	var certErr error
	if state != nil && len(state.PeerCertificates) > 0 {
		u, err := FromTLS(state, a.Roots)
		if err == nil {
			return u, nil
		}
		certErr = err
	}
	token, ok := BearerToken(authorization)
	if !ok || a.Tokens == nil {
		if certErr != nil {
			return nil, certErr
		}
		return nil, ErrNoCredentials
	}
	u, err := a.Tokens.AuthenticateToken(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("bearer token: %w", err)
	}
	return u, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// value.
func BearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
