// Package registry builds the store of every served resource and the
// cluster's bootstrap objects.
package registry

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
	"github.com/coxswain/coxswain/apiserver/internal/registry/core"
	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/apiserver/internal/registry/strategies"
	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// Options configure the registry.
type Options struct {
	ServiceCIDR     string
	NodePortRange   string
	WatchWindowSize int
	// Admission admits every write of every store (REST and gRPC alike);
	// nil admits everything.
	Admission admission.Interface
	Logger    *zap.Logger
}

// Registry holds one store per served resource.
type Registry struct {
	stores   map[schema.GroupVersionResource]*generic.Store
	Services *core.ServiceAllocator
	logger   *zap.Logger
}

// New builds the stores over etcd.
func New(st *etcd.Store, o Options) (*Registry, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	alloc, err := core.NewServiceAllocator(st, o.ServiceCIDR, o.NodePortRange)
	if err != nil {
		return nil, err
	}
	r := &Registry{stores: map[schema.GroupVersionResource]*generic.Store{}, Services: alloc, logger: o.Logger}
	for _, res := range scheme.Resources() {
		strat, ok := strategies.For(res.GVR)
		if !ok {
			return nil, fmt.Errorf("no strategy for %v", res.GVR)
		}
		r.stores[res.GVR] = generic.NewStore(res, strat, st, o.WatchWindowSize, o.Logger)
	}
	nsStore := r.stores[corev1.SchemeGroupVersion.WithResource("namespaces")]
	checker := core.Namespaces{Store: nsStore}
	for gvr, s := range r.stores {
		s.Admission = o.Admission
		if s.Resource.Namespaced {
			s.Namespaces = checker
		}
		switch gvr.Resource {
		case "services":
			if gvr.Group == "" {
				s.Reserver = alloc
			}
		case "pods":
			if gvr.Group == "" {
				s.Deleter = core.PodDeleter{}
			}
		case "namespaces":
			s.Deleter = core.NamespaceDeleter{}
		}
	}
	return r, nil
}

// Store returns the store of a resource.
func (r *Registry) Store(gvr schema.GroupVersionResource) (*generic.Store, bool) {
	s, ok := r.stores[gvr]
	return s, ok
}

// Each calls fn with every store.
func (r *Registry) Each(fn func(*generic.Store)) {
	for _, s := range r.stores {
		fn(s)
	}
}

// MustStore returns the store of a served resource.
func (r *Registry) MustStore(gvr schema.GroupVersionResource) *generic.Store {
	s, ok := r.stores[gvr]
	if !ok {
		panic(fmt.Sprintf("registry: %v is not served", gvr)) // programming error
	}
	return s
}

// Start starts every watch cache.
func (r *Registry) Start(ctx context.Context) {
	for _, s := range r.stores {
		s.Cache.Start(ctx)
	}
}

// Stop stops every watch cache.
func (r *Registry) Stop() {
	for _, s := range r.stores {
		s.Cache.Stop()
	}
}

// Ready reports whether every watch cache is ready.
func (r *Registry) Ready() bool {
	for _, s := range r.stores {
		if !s.Cache.Ready() {
			return false
		}
	}
	return true
}

// SystemNamespaces exist from the first start.
var SystemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// Bootstrap creates the system namespaces and the default/kubernetes
// Service (on the first IP of the service range) when missing.
func (r *Registry) Bootstrap(ctx context.Context, securePort int) error {
	nsStore := r.MustStore(corev1.SchemeGroupVersion.WithResource("namespaces"))
	for _, name := range SystemNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := nsStore.Create(ctx, "", ns, false); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap namespace %s: %w", name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: r.Services.FirstIP().String(),
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(int32(securePort))}},
			SessionAffinity: corev1.ServiceAffinityNone,
			Type:            corev1.ServiceTypeClusterIP,
		},
	}
	svcStore := r.MustStore(corev1.SchemeGroupVersion.WithResource("services"))
	if _, err := svcStore.Create(ctx, metav1.NamespaceDefault, svc, false); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bootstrap kubernetes service: %w", err)
	}
	return nil
}
