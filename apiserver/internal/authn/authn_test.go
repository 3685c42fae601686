package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coxswain/coxswain/apiserver/internal/pki"
)

func chainOf(t testing.TB, certPEMs ...[]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, p := range certPEMs {
		block, _ := pem.Decode(p)
		if block == nil {
			t.Fatalf("no PEM block")
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cert)
	}
	return out
}

func ensure(t testing.TB, now func() time.Time) *pki.Bundle {
	t.Helper()
	b, err := pki.Ensure(t.TempDir(), pki.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func issue(t testing.TB, b *pki.Bundle, cn string, groups []string, validity time.Duration) []byte {
	t.Helper()
	certPEM, _, err := b.IssueClient(cn, groups, validity)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM
}

func TestFromTLS(t *testing.T) {
	ca := ensure(t, nil)
	otherCA := ensure(t, nil)
	past := time.Now().Add(-48 * time.Hour)
	pastCA := ensure(t, func() time.Time { return past })

	tests := []struct {
		name       string
		state      *tls.ConnectionState
		roots      *x509.CertPool
		wantUser   string
		wantGroups []string
		wantErr    error // checked with errors.Is when set
		wantAnyErr bool
	}{
		{
			name:       "admin in system:masters",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, ca, "admin", []string{"system:masters"}, time.Hour))},
			roots:      ca.Pool,
			wantUser:   "admin",
			wantGroups: []string{"system:masters", GroupAuthenticated},
		},
		{
			name:       "several groups, system:authenticated not repeated",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, ca, "system:node:n1", []string{"system:nodes", GroupAuthenticated}, time.Hour))},
			roots:      ca.Pool,
			wantUser:   "system:node:n1",
			wantGroups: []string{"system:nodes", GroupAuthenticated},
		},
		{
			name:       "no groups",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, ca, "system:kube-scheduler", nil, time.Hour))},
			roots:      ca.Pool,
			wantUser:   "system:kube-scheduler",
			wantGroups: []string{GroupAuthenticated},
		},
		{
			name:       "CA sent along in the chain",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, ca, "bob", nil, time.Hour), ca.CAPEM)},
			roots:      ca.Pool,
			wantUser:   "bob",
			wantGroups: []string{GroupAuthenticated},
		},
		{name: "nil state", state: nil, roots: ca.Pool, wantErr: ErrNoCredentials},
		{name: "no certificate", state: &tls.ConnectionState{}, roots: ca.Pool, wantErr: ErrNoCredentials},
		{
			name:       "signed by another CA",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, otherCA, "admin", []string{"system:masters"}, time.Hour))},
			roots:      ca.Pool,
			wantAnyErr: true,
		},
		{
			name:       "other CA presented as intermediate",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, otherCA, "admin", nil, time.Hour), otherCA.CAPEM)},
			roots:      ca.Pool,
			wantAnyErr: true,
		},
		{
			name:       "expired",
			state:      &tls.ConnectionState{PeerCertificates: chainOf(t, issue(t, pastCA, "admin", []string{"system:masters"}, time.Hour))},
			roots:      pastCA.Pool,
			wantAnyErr: true,
		},
		{
			name:       "serving certificate is not a client certificate",
			state:      &tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.Serving.Leaf}},
			roots:      ca.Pool,
			wantAnyErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second call is answered from the cache.
			for i := 0; i < 2; i++ {
				u, err := FromTLS(tc.state, tc.roots)
				if tc.wantErr != nil || tc.wantAnyErr {
					if err == nil {
						t.Fatalf("call %d: FromTLS = %+v, want an error", i, u)
					}
					if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
						t.Fatalf("call %d: FromTLS error = %v, want %v", i, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d: FromTLS: %v", i, err)
				}
				if u.Name != tc.wantUser {
					t.Errorf("call %d: user = %q, want %q", i, u.Name, tc.wantUser)
				}
				if !slices.Equal(u.Groups, tc.wantGroups) {
					t.Errorf("call %d: groups = %v, want %v", i, u.Groups, tc.wantGroups)
				}
				u.Groups[0] = "mutated" // must not leak into the cache
			}
		})
	}
}

func TestVerifyCache(t *testing.T) {
	ca := ensure(t, nil)
	now := time.Now()
	chain := chainOf(t, issue(t, ca, "alice", []string{"dev"}, time.Hour))
	tests := []struct {
		name    string
		roots   *x509.CertPool
		at      time.Time
		wantErr bool
	}{
		{name: "first verification", roots: ca.Pool, at: now},
		{name: "cached", roots: ca.Pool, at: now.Add(time.Minute)},
		{name: "cached entry ignored after expiry", roots: ca.Pool, at: now.Add(2 * time.Hour), wantErr: true},
		{name: "cached entry ignored before NotBefore", roots: ca.Pool, at: now.Add(-time.Hour), wantErr: true},
		{name: "other roots do not share the entry", roots: x509.NewCertPool(), at: now, wantErr: true},
	}
	c := newVerifyCache(8)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := c.verify(chain, tc.roots, tc.at)
			if (err != nil) != tc.wantErr {
				t.Fatalf("verify error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && u.Name != "alice" {
				t.Errorf("user = %q, want %q", u.Name, "alice")
			}
		})
	}
	if got, want := len(c.entries), 1; got != want {
		t.Errorf("cache entries = %d, want %d", got, want)
	}

	// The cache stays bounded.
	for i := 0; i < 20; i++ {
		ch := chainOf(t, issue(t, ca, "u", nil, time.Hour))
		if _, err := c.verify(ch, ca.Pool, now); err != nil {
			t.Fatal(err)
		}
		if got := len(c.entries); got > c.max {
			t.Fatalf("cache entries = %d, want at most %d", got, c.max)
		}
	}
}

func TestUserContext(t *testing.T) {
	ctx := context.Background()
	if u, ok := UserFrom(ctx); ok {
		t.Errorf("UserFrom(empty) = %+v, true; want false", u)
	}
	if _, ok := UserFrom(WithUser(ctx, nil)); ok {
		t.Errorf("UserFrom(WithUser(nil)) ok = true, want false")
	}
	want := &User{Name: "admin", Groups: []string{GroupMasters, GroupAuthenticated}}
	got, ok := UserFrom(WithUser(ctx, want))
	if !ok || got != want {
		t.Errorf("UserFrom = %+v, %v; want %+v, true", got, ok, want)
	}
	if !got.InGroup(GroupMasters) || got.InGroup("nope") {
		t.Errorf("InGroup wrong for %+v", got)
	}
}

func BenchmarkFromTLSCached(b *testing.B) {
	ca := ensure(b, nil)
	state := &tls.ConnectionState{PeerCertificates: chainOf(b, issue(b, ca, "admin", []string{"system:masters"}, time.Hour))}
	if _, err := FromTLS(state, ca.Pool); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromTLS(state, ca.Pool); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromTLSUncached(b *testing.B) {
	ca := ensure(b, nil)
	state := &tls.ConnectionState{PeerCertificates: chainOf(b, issue(b, ca, "admin", []string{"system:masters"}, time.Hour))}
	c := newVerifyCache(1)
	b.ReportAllocs()
	for b.Loop() {
		c.entries = map[cacheKey]cacheEntry{}
		if _, err := c.verify(state.PeerCertificates, ca.Pool, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
