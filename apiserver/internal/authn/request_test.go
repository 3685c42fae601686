package authn

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
)

type fakeTokens map[string]*User

func (f fakeTokens) AuthenticateToken(_ context.Context, token string) (*User, error) {
	if u, ok := f[token]; ok {
		return u, nil
	}
	return nil, errors.New("unknown token")
}

func TestAuthenticateBearer(t *testing.T) {
	sa := &User{Name: "system:serviceaccount:default:default", Groups: []string{GroupServiceAccounts, GroupAuthenticated}}
	a := &Authenticator{Tokens: fakeTokens{"good": sa}}
	cases := []struct {
		name, header string
		want         *User
		wantErr      bool
	}{
		{name: "bearer", header: "Bearer good", want: sa},
		{name: "case-insensitive scheme", header: "bearer  good ", want: sa},
		{name: "unknown token", header: "Bearer bad", wantErr: true},
		{name: "basic", header: "Basic Zm9vOmJhcg==", wantErr: true},
		{name: "empty bearer", header: "Bearer ", wantErr: true},
		{name: "none", header: "", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := a.Authenticate(context.Background(), &tls.ConnectionState{}, tc.header)
			if (err != nil) != tc.wantErr || (!tc.wantErr && u != tc.want) {
				t.Errorf("Authenticate(%q) = %v, %v; want %v, error %v", tc.header, u, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := (&Authenticator{}).Authenticate(context.Background(), nil, "Bearer good"); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("no token authenticator: error %v, want ErrNoCredentials", err)
	}
}
