package serviceaccount

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Token lifetimes, upstream's.
const (
	DefaultExpirationSeconds = 3600
	MinExpirationSeconds     = 600
	MaxExpirationSeconds     = 1 << 32
)

// Getter reads one object; resourceVersion "" reads storage, "0" any
// cached state (generic.Store is one).
type Getter interface {
	Get(ctx context.Context, ns, name, rv string) (runtime.Object, error)
}

// Objects are the stores a token is checked against.
type Objects struct {
	ServiceAccounts Getter
	Pods            Getter
	Secrets         Getter
	Nodes           Getter
}

// Issuer serves TokenRequests: serviceaccounts/token.
type Issuer struct {
	Signer  *Signer
	Issuer  string
	Objects Objects
	// Audiences are used when a request names none: the API audiences.
	Audiences []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var tokenRequestGK = schema.GroupKind{Group: authenticationv1.GroupName, Kind: "TokenRequest"}

// CreateToken issues a token for the service account ns/name.
func (is *Issuer) CreateToken(ctx context.Context, ns, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	if req == nil {
		return nil, apierrors.NewBadRequest("a TokenRequest is required")
	}
	if req.Name != "" && req.Name != name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in TokenRequest object: %s vs %s", name, req.Name))
	}
	if req.Namespace != "" && req.Namespace != ns {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("namespace in URL does not match namespace in TokenRequest object: %s vs %s", ns, req.Namespace))
	}
	out := req.DeepCopy()
	out.Name, out.Namespace = name, ns
	if out.Spec.ExpirationSeconds == nil {
		out.Spec.ExpirationSeconds = new(int64(DefaultExpirationSeconds))
	}
	if len(out.Spec.Audiences) == 0 {
		out.Spec.Audiences = append([]string(nil), is.Audiences...)
	}
	if errs := validate(out); len(errs) > 0 {
		return nil, apierrors.NewInvalid(tokenRequestGK, name, errs)
	}

	obj, err := is.Objects.ServiceAccounts.Get(ctx, ns, name, "")
	if err != nil {
		return nil, err
	}
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("serviceaccounts store returned %T", obj))
	}
	k8s := &KubernetesClaims{Namespace: ns, ServiceAccount: &Ref{Name: sa.Name, UID: string(sa.UID)}}
	if ref := out.Spec.BoundObjectRef; ref != nil {
		uid, err := is.bind(ctx, ns, sa, ref, k8s)
		if err != nil {
			return nil, err
		}
		ref.UID = uid
	}

	now := time.Now
	if is.Now != nil {
		now = is.Now
	}
	t := now().Truncate(time.Second)
	exp := t.Add(time.Duration(*out.Spec.ExpirationSeconds) * time.Second)
	token, err := is.Signer.Sign(&Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    is.Issuer,
			Subject:   Username(ns, name),
			Audience:  jwt.ClaimStrings(out.Spec.Audiences),
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(t),
			IssuedAt:  jwt.NewNumericDate(t),
			ID:        string(uuid.NewUUID()),
		},
		Kubernetes: k8s,
	})
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	out.CreationTimestamp = metav1.NewTime(t)
	out.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(exp)}
	return out, nil
}

func validate(tr *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "expirationSeconds")
	switch s := *tr.Spec.ExpirationSeconds; {
	case s < MinExpirationSeconds:
		errs = append(errs, field.Invalid(p, s, "may not specify a duration less than 10 minutes"))
	case s > MaxExpirationSeconds:
		errs = append(errs, field.Invalid(p, s, "may not specify a duration larger than 2^32 seconds"))
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil && ref.Name == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "boundObjectRef", "name"), ""))
	}
	return errs
}

// bind checks the object the token is bound to, fills its claim and
// returns its UID.
func (is *Issuer) bind(ctx context.Context, ns string, sa *corev1.ServiceAccount, ref *authenticationv1.BoundObjectReference, k8s *KubernetesClaims) (types.UID, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("boundObjectRef.apiVersion: %v", err))
	}
	gvk := gv.WithKind(ref.Kind)
	var getter Getter
	var scopeNS string
	switch {
	case gvk.Group == "" && gvk.Kind == "Pod":
		getter, scopeNS = is.Objects.Pods, ns
	case gvk.Group == "" && gvk.Kind == "Secret":
		getter, scopeNS = is.Objects.Secrets, ns
	case gvk.Group == "" && gvk.Kind == "Node":
		getter = is.Objects.Nodes
	}
	if getter == nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", gvk.String()))
	}
	obj, err := getter.Get(ctx, scopeNS, ref.Name, "")
	if err != nil {
		return "", err
	}
	meta, err := metaOf(obj)
	if err != nil {
		return "", apierrors.NewInternalError(err)
	}
	if ref.UID != "" && ref.UID != meta.GetUID() {
		return "", apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, ref.Name,
			fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	r := &Ref{Name: meta.GetName(), UID: string(meta.GetUID())}
	switch o := obj.(type) {
	case *corev1.Pod:
		if o.Spec.ServiceAccountName != sa.Name {
			return "", apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", sa.Name))
		}
		k8s.Pod = r
	case *corev1.Secret:
		k8s.Secret = r
	case *corev1.Node:
		k8s.Node = r
	}
	return meta.GetUID(), nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}
