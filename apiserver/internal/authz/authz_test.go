package authz

import (
	"context"
	"testing"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
)

func TestAlwaysAllow(t *testing.T) {
	tests := []struct {
		name         string
		attrs        Attributes
		wantResource bool
	}{
		{"resource", Attributes{User: &authn.User{Name: "u"}, Verb: "list", Version: "v1", Resource: "pods", Namespace: "default"}, true},
		{"non-resource", Attributes{Verb: "get", Path: "/healthz"}, false},
	}
	var a Authorizer = AlwaysAllow{}
	for _, tc := range tests {
		d, _, err := a.Authorize(context.Background(), tc.attrs)
		if err != nil || d != DecisionAllow {
			t.Errorf("%s: Authorize = %v, %v; want %v, nil", tc.name, d, err, DecisionAllow)
		}
		if got := tc.attrs.IsResourceRequest(); got != tc.wantResource {
			t.Errorf("%s: IsResourceRequest = %v, want %v", tc.name, got, tc.wantResource)
		}
	}
}
