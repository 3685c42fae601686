package scheme

import (
	"fmt"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resource describes one served resource.
type Resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	ListKind   string
	Namespaced bool
	ShortNames []string
	Categories []string
	// Subresources served beside the main resource, e.g. "status", "scale".
	Subresources []string
	// SingularName as discovery reports it.
	SingularName string
}

// GVK of the resource's objects.
func (r Resource) GVK() schema.GroupVersionKind { return r.GVR.GroupVersion().WithKind(r.Kind) }

// New returns a new empty object of the resource's kind.
func (r Resource) New() (runtime.Object, error) { return Scheme.New(r.GVK()) }

// NewList returns a new empty list of the resource's kind.
func (r Resource) NewList() (runtime.Object, error) {
	return Scheme.New(r.GVR.GroupVersion().WithKind(r.ListKind))
}

// HasSubresource says whether sub is served for the resource.
func (r Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

func res(group, version, resource, kind string, namespaced bool, short []string, cats []string, subs ...string) Resource {
	return Resource{
		GVR:          schema.GroupVersionResource{Group: group, Version: version, Resource: resource},
		Kind:         kind,
		ListKind:     kind + "List",
		Namespaced:   namespaced,
		ShortNames:   short,
		Categories:   cats,
		Subresources: subs,
		SingularName: lower(kind),
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

var all = []string{"all"}

// served is the table of every served resource.
var served = []Resource{
	res("", "v1", "namespaces", "Namespace", false, []string{"ns"}, nil, "status", "finalize"),
	res("", "v1", "pods", "Pod", true, []string{"po"}, all, "status", "binding", "eviction", "log", "exec", "attach", "portforward"),
	res("", "v1", "nodes", "Node", false, []string{"no"}, nil, "status"),
	res("", "v1", "services", "Service", true, []string{"svc"}, all, "status"),
	res("", "v1", "endpoints", "Endpoints", true, []string{"ep"}, nil),
	res("", "v1", "configmaps", "ConfigMap", true, []string{"cm"}, nil),
	res("", "v1", "secrets", "Secret", true, nil, nil),
	res("", "v1", "serviceaccounts", "ServiceAccount", true, []string{"sa"}, nil, "token"),
	res("", "v1", "events", "Event", true, []string{"ev"}, nil),
	res("", "v1", "replicationcontrollers", "ReplicationController", true, []string{"rc"}, all, "status", "scale"),
	res("", "v1", "resourcequotas", "ResourceQuota", true, []string{"quota"}, nil, "status"),
	res("", "v1", "limitranges", "LimitRange", true, []string{"limits"}, nil),
	res("", "v1", "persistentvolumes", "PersistentVolume", false, []string{"pv"}, nil, "status"),
	res("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, []string{"pvc"}, nil, "status"),
	res("apps", "v1", "deployments", "Deployment", true, []string{"deploy"}, all, "status", "scale"),
	res("apps", "v1", "replicasets", "ReplicaSet", true, []string{"rs"}, all, "status", "scale"),
	res("apps", "v1", "daemonsets", "DaemonSet", true, []string{"ds"}, all, "status"),
	res("apps", "v1", "statefulsets", "StatefulSet", true, []string{"sts"}, all, "status", "scale"),
	res("apps", "v1", "controllerrevisions", "ControllerRevision", true, nil, nil),
	res("batch", "v1", "jobs", "Job", true, nil, all, "status"),
	res("batch", "v1", "cronjobs", "CronJob", true, []string{"cj"}, all, "status"),
	res("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, []string{"hpa"}, all, "status"),
	res("coordination.k8s.io", "v1", "leases", "Lease", true, nil, nil),
	res("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true, nil, nil),
	res("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, []string{"pdb"}, nil, "status"),
	res("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", false, []string{"pc"}, nil),
	res("rbac.authorization.k8s.io", "v1", "roles", "Role", true, nil, nil),
	res("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, nil, nil),
	res("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, nil, nil),
	res("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, nil, nil),
}

var (
	indexOnce sync.Once
	byGVR     map[schema.GroupVersionResource]Resource
	byGVK     map[schema.GroupVersionKind]Resource
)

func index() {
	indexOnce.Do(func() {
		byGVR = make(map[schema.GroupVersionResource]Resource, len(served))
		byGVK = make(map[schema.GroupVersionKind]Resource, len(served))
		for _, r := range served {
			if r.GVR.Resource == "endpoints" {
				r.SingularName = "endpoints"
			}
			byGVR[r.GVR] = r
			byGVK[r.GVK()] = r
		}
	})
}

// Resources returns every served resource, sorted by group then resource.
func Resources() []Resource {
	index()
	out := make([]Resource, 0, len(byGVR))
	for _, r := range byGVR {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GVR.Group != out[j].GVR.Group {
			return out[i].GVR.Group < out[j].GVR.Group
		}
		return out[i].GVR.Resource < out[j].GVR.Resource
	})
	return out
}

// LookupResource finds a served resource by group, version and resource.
func LookupResource(gvr schema.GroupVersionResource) (Resource, bool) {
	index()
	r, ok := byGVR[gvr]
	return r, ok
}

// LookupKind finds the served resource of a kind.
func LookupKind(gvk schema.GroupVersionKind) (Resource, bool) {
	index()
	r, ok := byGVK[gvk]
	return r, ok
}

// ResourceFor returns the served resource of obj's Go type.
func ResourceFor(obj runtime.Object) (Resource, error) {
	gvks, _, err := Scheme.ObjectKinds(obj)
	if err != nil {
		return Resource{}, fmt.Errorf("resource for %T: %w", obj, err)
	}
	for _, gvk := range gvks {
		if r, ok := LookupKind(gvk); ok {
			return r, nil
		}
	}
	return Resource{}, fmt.Errorf("resource for %T: kind %v is not served", obj, gvks)
}
