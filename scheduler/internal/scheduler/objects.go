package scheduler

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// objectLister serves plugins the informer caches of namespaces, Services
// and workload controllers.
type objectLister struct {
	namespaces   *informer.Lister[*corev1.Namespace]
	services     *informer.Lister[*corev1.Service]
	rcs          *informer.Lister[*corev1.ReplicationController]
	replicaSets  *informer.Lister[*appsv1.ReplicaSet]
	statefulSets *informer.Lister[*appsv1.StatefulSet]
}

var _ framework.ObjectLister = (*objectLister)(nil)

func (o *objectLister) Namespace(name string) (*corev1.Namespace, bool) {
	n, err := o.namespaces.Get("", name)
	return n, err == nil
}

func (o *objectLister) Namespaces() []*corev1.Namespace { return o.namespaces.List(nil) }

func (o *objectLister) Services(namespace string) []*corev1.Service {
	return o.services.ByNamespace(namespace).List(nil)
}

func (o *objectLister) ReplicationController(namespace, name string) (*corev1.ReplicationController, bool) {
	rc, err := o.rcs.Get(namespace, name)
	return rc, err == nil
}

func (o *objectLister) ReplicaSet(namespace, name string) (*appsv1.ReplicaSet, bool) {
	rs, err := o.replicaSets.Get(namespace, name)
	return rs, err == nil
}

func (o *objectLister) StatefulSet(namespace, name string) (*appsv1.StatefulSet, bool) {
	ss, err := o.statefulSets.Get(namespace, name)
	return ss, err == nil
}

// handle is the scheduler's framework.Handle: its snapshot, and the object
// listers once Run has created the informers.
type handle struct {
	snapshot *cache.Snapshot
	objects  framework.ObjectLister
	parallel framework.Parallelizer
}

func (h *handle) SnapshotSharedLister() framework.NodeInfoLister { return h.snapshot }

func (h *handle) ObjectLister() framework.ObjectLister { return h.objects }

func (h *handle) Parallelizer() framework.Parallelizer { return h.parallel }
