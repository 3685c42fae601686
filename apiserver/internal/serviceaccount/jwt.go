// Package serviceaccount issues and verifies service-account tokens: JWTs
// signed with the apiserver's service-account key, with upstream's claims,
// handed out by the serviceaccounts/token subresource (TokenRequest) and
// accepted as bearer tokens.
package serviceaccount

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultIssuer is --service-account-issuer's default.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// Ref names an object a token belongs or is bound to.
type Ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// KubernetesClaims are the private claims under "kubernetes.io".
type KubernetesClaims struct {
	Namespace      string           `json:"namespace,omitempty"`
	ServiceAccount *Ref             `json:"serviceaccount,omitempty"`
	Pod            *Ref             `json:"pod,omitempty"`
	Secret         *Ref             `json:"secret,omitempty"`
	Node           *Ref             `json:"node,omitempty"`
	WarnAfter      *jwt.NumericDate `json:"warnafter,omitempty"`
}

// Claims are a token's claims, upstream's.
type Claims struct {
	jwt.RegisteredClaims
	Kubernetes *KubernetesClaims `json:"kubernetes.io,omitempty"`
}

// Username is the user name of a service account.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Signer signs tokens with one private key.
type Signer struct {
	key    crypto.Signer
	method jwt.SigningMethod
	kid    string
}

// NewSigner returns a signer for an RSA or ECDSA (P-256, P-384, P-521)
// key: RS256, or ES256/384/512 as upstream.
func NewSigner(key crypto.Signer) (*Signer, error) {
	var method jwt.SigningMethod
	switch k := key.(type) {
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			method = jwt.SigningMethodES256
		case elliptic.P384():
			method = jwt.SigningMethodES384
		case elliptic.P521():
			method = jwt.SigningMethodES512
		default:
			return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("unsupported signing key type %T (want RSA or ECDSA)", key)
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, method: method, kid: kid}, nil
}

// Sign returns the signed, compact-serialized token.
func (s *Signer) Sign(claims *Claims) (string, error) {
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["kid"] = s.kid
	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return out, nil
}

// KeyID is upstream's key id: the unpadded base64url SHA-256 of the
// public key's PKIX DER.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Verifier checks tokens' signatures, issuer, audience and lifetime.
type Verifier struct {
	keys      []jwt.VerificationKey
	byKID     map[string]jwt.VerificationKey
	issuers   []string
	audiences []string
	now       func() time.Time
}

// leeway absorbs small clock differences, as upstream's one minute.
const leeway = time.Minute

// NewVerifier accepts tokens signed by one of keys, issued by one of
// issuers, for one of audiences. now nil means time.Now.
func NewVerifier(keys []crypto.PublicKey, issuers, audiences []string, now func() time.Time) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no service-account verification keys")
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{byKID: map[string]jwt.VerificationKey{}, issuers: issuers, audiences: audiences, now: now}
	for _, k := range keys {
		switch k.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			return nil, fmt.Errorf("unsupported verification key type %T", k)
		}
		kid, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, k)
		v.byKID[kid] = k
	}
	return v, nil
}

var validMethods = []string{"RS256", "ES256", "ES384", "ES512"}

// Verify parses token and returns its claims when its signature, issuer,
// audience, expiry and not-before are good.
func (v *Verifier) Verify(token string) (*Claims, error) {
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if kid, ok := t.Header["kid"].(string); ok && kid != "" {
			if k, ok := v.byKID[kid]; ok {
				return k, nil
			}
		}
		return jwt.VerificationKeySet{Keys: v.keys}, nil
	}, jwt.WithValidMethods(validMethods), jwt.WithExpirationRequired(), jwt.WithLeeway(leeway), jwt.WithTimeFunc(v.now))
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if !contains(v.issuers, claims.Issuer) {
		return nil, fmt.Errorf("verify token: issuer %q is not accepted", claims.Issuer)
	}
	if !intersects(claims.Audience, v.audiences) {
		return nil, fmt.Errorf("verify token: audiences %q are not accepted", []string(claims.Audience))
	}
	return claims, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}
