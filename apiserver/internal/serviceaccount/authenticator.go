package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
)

// deletedGrace is how long after its deletion time a pod's (or secret's)
// bound tokens still authenticate, upstream's.
const deletedGrace = 60 * time.Second

// Authenticator authenticates service-account bearer tokens: a verified
// token whose service account, and bound object if any, still exist with
// the token's UIDs.
type Authenticator struct {
	Verifier *Verifier
	Objects  Objects
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var _ authn.TokenAuthenticator = (*Authenticator)(nil)

// AuthenticateToken implements authn.TokenAuthenticator.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*authn.User, error) {
	claims, err := a.Verifier.Verify(token)
	if err != nil {
		return nil, err
	}
	k := claims.Kubernetes
	if k == nil || k.Namespace == "" || k.ServiceAccount == nil || k.ServiceAccount.Name == "" {
		return nil, errors.New("token has no service-account claims")
	}
	if want := Username(k.Namespace, k.ServiceAccount.Name); claims.Subject != want {
		return nil, fmt.Errorf("token subject %q does not match its service account %q", claims.Subject, want)
	}
	if err := a.check(ctx, a.Objects.ServiceAccounts, "service account", k.Namespace, k.ServiceAccount, false); err != nil {
		return nil, err
	}
	if k.Pod != nil {
		if err := a.check(ctx, a.Objects.Pods, "pod", k.Namespace, k.Pod, true); err != nil {
			return nil, err
		}
	}
	if k.Secret != nil {
		if err := a.check(ctx, a.Objects.Secrets, "secret", k.Namespace, k.Secret, true); err != nil {
			return nil, err
		}
	}
	if k.Node != nil && k.Pod == nil {
		if err := a.check(ctx, a.Objects.Nodes, "node", "", k.Node, false); err != nil {
			return nil, err
		}
	}
	return &authn.User{
		Name:   claims.Subject,
		Groups: []string{authn.GroupServiceAccounts, authn.GroupServiceAccounts + ":" + k.Namespace, authn.GroupAuthenticated},
	}, nil
}

// check makes sure the object a token names still exists with its UID:
// from the watch cache, and from storage when the cache does not (yet)
// agree, so a token used right after its object was created works.
func (a *Authenticator) check(ctx context.Context, g Getter, what, ns string, ref *Ref, graceful bool) error {
	if g == nil {
		return fmt.Errorf("token bound to a %s, which cannot be checked", what)
	}
	var last error
	for _, rv := range []string{"0", ""} {
		obj, err := g.Get(ctx, ns, ref.Name, rv)
		if err != nil {
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("look up %s %q: %w", what, ref.Name, err)
			}
			last = fmt.Errorf("%s %q of the token no longer exists", what, ref.Name)
			continue
		}
		m, err := metaOf(obj)
		if err != nil {
			return err
		}
		if ref.UID != "" && string(m.GetUID()) != ref.UID {
			last = fmt.Errorf("%s %q of the token has UID %s, the token's is %s", what, ref.Name, m.GetUID(), ref.UID)
			continue
		}
		if dt := m.GetDeletionTimestamp(); dt != nil {
			now := time.Now
			if a.Now != nil {
				now = a.Now
			}
			if !graceful || dt.Time.Add(deletedGrace).Before(now()) {
				return fmt.Errorf("%s %q of the token is being deleted", what, ref.Name)
			}
		}
		if sa, ok := obj.(*corev1.ServiceAccount); ok && sa.Namespace != ns {
			return fmt.Errorf("service account %q is in namespace %q, not %q", ref.Name, sa.Namespace, ns)
		}
		return nil
	}
	return last
}
