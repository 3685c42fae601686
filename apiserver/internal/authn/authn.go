// Package authn establishes who sent a request: the user name and groups
// carried in a verified client certificate or, failing that, those of a
// bearer token (a service-account token), put on the request context.
package authn

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Well-known groups.
const (
	GroupAuthenticated = "system:authenticated"
	GroupMasters       = "system:masters"
)

// ErrNoCredentials means the request carried no client certificate.
var ErrNoCredentials = errors.New("no client certificate presented")

// User is an authenticated identity. Treat it as read-only once it is on a
// context.
type User struct {
	Name   string
	Groups []string
}

// InGroup reports whether the user is a member of group.
func (u *User) InGroup(group string) bool {
	return u != nil && slices.Contains(u.Groups, group)
}

type userKey struct{}

// WithUser returns a context carrying u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user on ctx, if any.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok && u != nil
}

// FromTLS authenticates the peer of a TLS connection: the leaf certificate
// (with the rest of the presented chain as intermediates) must verify
// against roots for client authentication at the current time. The user is
// the certificate's CN, its groups the O values plus system:authenticated.
// It returns ErrNoCredentials when no certificate was presented.
//
// Successful verifications are cached by the leaf's SHA-256 and roots until
// the chain's earliest expiry, so repeated requests and handshakes with the
// same certificate verify it once.
func FromTLS(state *tls.ConnectionState, roots *x509.CertPool) (*User, error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return nil, ErrNoCredentials
	}
	return defaultCache.verify(state.PeerCertificates, roots, time.Now())
}

// maxCacheEntries bounds the verification cache.
const maxCacheEntries = 4096

type cacheKey struct {
	roots *x509.CertPool
	sum   [sha256.Size]byte
}

type cacheEntry struct {
	user      User
	notBefore time.Time
	notAfter  time.Time
}

type verifyCache struct {
	mu      sync.RWMutex
	entries map[cacheKey]cacheEntry
	max     int
}

var defaultCache = newVerifyCache(maxCacheEntries)

func newVerifyCache(max int) *verifyCache {
	return &verifyCache{entries: make(map[cacheKey]cacheEntry), max: max}
}

func (c *verifyCache) verify(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) (*User, error) {
	leaf := chain[0]
	key := cacheKey{roots: roots, sum: sha256.Sum256(leaf.Raw)}
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if ok && !now.Before(e.notBefore) && !now.After(e.notAfter) {
		return e.user.clone(), nil
	}

	opts := x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, cert := range chain[1:] {
			opts.Intermediates.AddCert(cert)
		}
	}
	verified, err := leaf.Verify(opts)
	if err != nil {
		return nil, fmt.Errorf("verify client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, errors.New("client certificate has no common name")
	}
	u := User{Name: leaf.Subject.CommonName}
	u.Groups = make([]string, 0, len(leaf.Subject.Organization)+1)
	u.Groups = append(u.Groups, leaf.Subject.Organization...)
	if !slices.Contains(u.Groups, GroupAuthenticated) {
		u.Groups = append(u.Groups, GroupAuthenticated)
	}
	e = cacheEntry{user: u, notBefore: leaf.NotBefore, notAfter: validUntil(verified)}

	c.mu.Lock()
	if len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[key] = e
	c.mu.Unlock()
	return u.clone(), nil
}

// evictLocked drops expired entries, and when none were, an arbitrary half
// of the cache (map order is random).
func (c *verifyCache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if now.After(e.notAfter) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.max/2+1 {
			break
		}
		delete(c.entries, k)
	}
}

// validUntil is the latest, over the verified chains, of each chain's
// earliest NotAfter: the verification stays true until then.
func validUntil(chains [][]*x509.Certificate) time.Time {
	var best time.Time
	for _, chain := range chains {
		var end time.Time
		for i, cert := range chain {
			if i == 0 || cert.NotAfter.Before(end) {
				end = cert.NotAfter
			}
		}
		if end.After(best) {
			best = end
		}
	}
	return best
}

func (u User) clone() *User {
	u.Groups = slices.Clone(u.Groups)
	return &u
}
