package serviceaccount

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
)

// fakeGetter serves objects by namespace/name.
type fakeGetter map[string]runtime.Object

func (f fakeGetter) Get(_ context.Context, ns, name, _ string) (runtime.Object, error) {
	if o, ok := f[ns+"/"+name]; ok {
		return o.DeepCopyObject(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{}, name)
}

func testObjects() (Objects, fakeGetter) {
	pods := fakeGetter{
		"default/web":   &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "pod-uid"}, Spec: corev1.PodSpec{ServiceAccountName: "default"}},
		"default/other": &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default", UID: "other-uid"}, Spec: corev1.PodSpec{ServiceAccountName: "builder"}},
	}
	return Objects{
		ServiceAccounts: fakeGetter{"default/default": &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default", UID: "sa-uid"}}},
		Pods:            pods,
		Secrets:         fakeGetter{},
		Nodes:           fakeGetter{},
	}, pods
}

func newIssuer(t *testing.T, key crypto.Signer, now func() time.Time) (*Issuer, *Authenticator, fakeGetter) {
	t.Helper()
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier([]crypto.PublicKey{key.Public()}, []string{DefaultIssuer}, []string{DefaultIssuer}, now)
	if err != nil {
		t.Fatal(err)
	}
	objs, pods := testObjects()
	return &Issuer{Signer: s, Issuer: DefaultIssuer, Objects: objs, Audiences: []string{DefaultIssuer}, Now: now},
		&Authenticator{Verifier: v, Objects: objs, Now: now}, pods
}

// payload decodes a JWT's claims without verifying it.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTokenClaimsAndAuthentication(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	for name, key := range map[string]crypto.Signer{"ecdsa": ec, "rsa": rk} {
		t.Run(name, func(t *testing.T) {
			is, au, _ := newIssuer(t, key, clock)
			ctx := context.Background()
			tr, err := is.CreateToken(ctx, "default", "default", &authenticationv1.TokenRequest{
				Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"}},
			})
			if err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
			if got := *tr.Spec.ExpirationSeconds; got != DefaultExpirationSeconds {
				t.Errorf("expirationSeconds = %d, want %d", got, DefaultExpirationSeconds)
			}
			if got := tr.Spec.BoundObjectRef.UID; got != "pod-uid" {
				t.Errorf("boundObjectRef.uid = %q, want pod-uid", got)
			}
			if want := now.Add(time.Hour); !tr.Status.ExpirationTimestamp.Time.Equal(want) {
				t.Errorf("expirationTimestamp = %v, want %v", tr.Status.ExpirationTimestamp, want)
			}
			got := payload(t, tr.Status.Token)
			delete(got, "jti")
			want := map[string]any{
				"iss": DefaultIssuer, "sub": "system:serviceaccount:default:default", "aud": []any{DefaultIssuer},
				"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(now.Add(time.Hour).Unix()),
				"kubernetes.io": map[string]any{
					"namespace":      "default",
					"serviceaccount": map[string]any{"name": "default", "uid": "sa-uid"},
					"pod":            map[string]any{"name": "web", "uid": "pod-uid"},
				},
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("claims (-want +got):\n%s", d)
			}
			u, err := au.AuthenticateToken(ctx, tr.Status.Token)
			if err != nil {
				t.Fatalf("AuthenticateToken: %v", err)
			}
			wantUser := &authn.User{Name: "system:serviceaccount:default:default", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}}
			if d := cmp.Diff(wantUser, u); d != "" {
				t.Errorf("user (-want +got):\n%s", d)
			}
		})
	}
}

func TestTokenRejected(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	is, au, pods := newIssuer(t, key, func() time.Time { return now })
	ctx := context.Background()
	issue := func(is *Issuer, spec authenticationv1.TokenRequestSpec) string {
		t.Helper()
		tr, err := is.CreateToken(ctx, "default", "default", &authenticationv1.TokenRequest{Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	bound := issue(is, authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"}})
	plain := issue(is, authenticationv1.TokenRequestSpec{})
	otherAud := issue(is, authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}})
	otherSigner, _ := NewSigner(other)
	forged := issue(&Issuer{Signer: otherSigner, Issuer: DefaultIssuer, Objects: is.Objects, Audiences: is.Audiences, Now: is.Now}, authenticationv1.TokenRequestSpec{})
	otherIss := issue(&Issuer{Signer: is.Signer, Issuer: "https://elsewhere", Objects: is.Objects, Audiences: is.Audiences, Now: is.Now}, authenticationv1.TokenRequestSpec{})

	if _, err := au.AuthenticateToken(ctx, plain); err != nil {
		t.Fatalf("unbound token: %v", err)
	}
	cases := []struct {
		name  string
		token string
		setup func()
	}{
		{name: "garbage", token: "not-a-jwt"},
		{name: "other key", token: forged},
		{name: "other issuer", token: otherIss},
		{name: "other audience", token: otherAud},
		{name: "tampered", token: plain[:len(plain)-4] + "AAAA"},
		{name: "expired", token: plain, setup: func() { now = now.Add(2 * time.Hour) }},
		{name: "not yet valid", token: plain, setup: func() { now = now.Add(-time.Hour) }},
		{name: "pod recreated", token: bound, setup: func() {
			pods["default/web"] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "new-uid"}, Spec: corev1.PodSpec{ServiceAccountName: "default"}}
		}},
		{name: "pod deleted", token: bound, setup: func() { delete(pods, "default/web") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			saved := now
			defer func() { now = saved }()
			if tc.setup != nil {
				tc.setup()
			}
			if u, err := au.AuthenticateToken(ctx, tc.token); err == nil {
				t.Errorf("AuthenticateToken = %+v, want an error", u)
			}
		})
	}
}

func TestTokenRequestErrors(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is, _, _ := newIssuer(t, key, nil)
	cases := []struct {
		name   string
		sa     string
		spec   authenticationv1.TokenRequestSpec
		check  func(error) bool
		substr string
	}{
		{name: "short expiry", sa: "default", spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(599))}, check: apierrors.IsInvalid, substr: "spec.expirationSeconds"},
		{name: "missing service account", sa: "nobody", check: apierrors.IsNotFound},
		{name: "missing pod", sa: "default", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "gone"}}, check: apierrors.IsNotFound},
		{name: "pod uid mismatch", sa: "default", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: "stale"}}, check: apierrors.IsConflict},
		{name: "pod of another service account", sa: "default", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "other"}}, check: apierrors.IsBadRequest},
		{name: "unsupported kind", sa: "default", spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Name: "x"}}, check: apierrors.IsBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := is.CreateToken(context.Background(), "default", tc.sa, &authenticationv1.TokenRequest{Spec: tc.spec})
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("CreateToken error = %v, want a matching error containing %q", err, tc.substr)
			}
		})
	}
}
