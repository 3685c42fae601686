// Package strategies holds the generic.Strategy of every served resource:
// upstream Kubernetes' defaulting, validation, status handling and
// selectable fields, written against the versioned k8s.io/api types.
package strategies

import (
	"context"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

var strategies = map[schema.GroupVersionResource]generic.Strategy{
	core("namespaces"):             namespaceStrategy{},
	core("pods"):                   podStrategy{},
	core("nodes"):                  nodeStrategy{},
	core("services"):               serviceStrategy{},
	core("endpoints"):              endpointsStrategy{},
	core("configmaps"):             configMapStrategy{},
	core("secrets"):                secretStrategy{},
	core("serviceaccounts"):        serviceAccountStrategy{},
	core("events"):                 eventStrategy{},
	core("replicationcontrollers"): replicationControllerStrategy{},
	core("resourcequotas"):         resourceQuotaStrategy{},
	core("limitranges"):            limitRangeStrategy{},
	core("persistentvolumes"):      persistentVolumeStrategy{},
	core("persistentvolumeclaims"): persistentVolumeClaimStrategy{},

	apps("deployments"):         deploymentStrategy{},
	apps("replicasets"):         replicaSetStrategy{},
	apps("daemonsets"):          daemonSetStrategy{},
	apps("statefulsets"):        statefulSetStrategy{},
	apps("controllerrevisions"): controllerRevisionStrategy{},

	{Group: "batch", Version: "v1", Resource: "jobs"}:                                    jobStrategy{},
	{Group: "batch", Version: "v1", Resource: "cronjobs"}:                                cronJobStrategy{},
	{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}:          hpaStrategy{},
	{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}:                    leaseStrategy{},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}:               endpointSliceStrategy{},
	{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}:                   pdbStrategy{},
	{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"}:             priorityClassStrategy{},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}:               roleStrategy{},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}:        roleBindingStrategy{},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}:        clusterRoleStrategy{},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}: clusterRoleBindingStrategy{},
}

func core(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Version: "v1", Resource: resource}
}

func apps(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: resource}
}

// For returns the strategy of a served resource.
func For(gvr schema.GroupVersionResource) (generic.Strategy, bool) {
	s, ok := strategies[gvr]
	return s, ok
}

// base is the strategy of a kind with nothing special: DNS-1123 subdomain
// names, no defaults, no status, no extra validation or fields. Kinds embed
// it and override what differs.
type base struct{}

func (base) NameValidator() validation.ValidateNameFunc                             { return fastvalidation.NameIsDNSSubdomain }
func (base) Default(runtime.Object)                                                 {}
func (base) PrepareForCreate(context.Context, runtime.Object)                       {}
func (base) PrepareForUpdate(context.Context, runtime.Object, runtime.Object)       {}
func (base) PrepareForStatusUpdate(context.Context, runtime.Object, runtime.Object) {}
func (base) Validate(context.Context, runtime.Object) field.ErrorList               { return nil }
func (base) ValidateUpdate(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return nil
}
func (base) ValidateStatusUpdate(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return nil
}
func (base) Fields(runtime.Object) fields.Set { return fields.Set{} }

// SpecChanged compares the Spec fields of kinds that have one.
func (base) SpecChanged(obj, old runtime.Object) bool {
	n, o := structField(obj, "Spec"), structField(old, "Spec")
	if !n.IsValid() || !o.IsValid() {
		return false
	}
	return !equality.Semantic.DeepEqual(n.Interface(), o.Interface())
}

// withStatus is the base of kinds with a status subresource: a create starts
// from the zero status (kinds with an initial status override
// PrepareForCreate), an update of the main resource keeps the old status and a
// status update keeps everything of the old object but the status.
type withStatus struct{ base }

func (withStatus) PrepareForCreate(_ context.Context, obj runtime.Object) {
	s := structField(obj, "Status")
	s.Set(reflect.Zero(s.Type()))
}

func (withStatus) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	structField(obj, "Status").Set(structField(old, "Status"))
}

func (withStatus) PrepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {
	keepAllButStatus(obj, old)
}

// keepAllButStatus replaces obj with old except for obj's status and
// resourceVersion (the precondition of the update).
func keepAllButStatus(obj, old runtime.Object) {
	o := reflect.ValueOf(old.DeepCopyObject()).Elem()
	o.FieldByName("Status").Set(structField(obj, "Status"))
	rv := o.FieldByName("ObjectMeta").FieldByName("ResourceVersion")
	rv.Set(reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").FieldByName("ResourceVersion"))
	reflect.ValueOf(obj).Elem().Set(o)
}

// structField is the named field of the struct obj points to, or the zero
// Value when it has none.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}
