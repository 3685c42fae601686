package controller

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/pkg/informer"
)

// IsPodActive says whether a pod counts towards its controller's replicas:
// not finished and not being deleted.
func IsPodActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// FilterActivePods returns the active pods.
func FilterActivePods(pods []*corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(pods))
	for _, p := range pods {
		if IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

// PodReadyCondition returns the pod's Ready condition, or nil.
func PodReadyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// IsPodReady says whether the pod's Ready condition is True.
func IsPodReady(p *corev1.Pod) bool {
	c := PodReadyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsPodAvailable says whether the pod has been ready for at least
// minReadySeconds at now.
func IsPodAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := PodReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	d := time.Duration(minReadySeconds) * time.Second
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(d).After(now)
}

func podPhaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending:
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 3
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n = max(n, c.RestartCount)
	}
	return n
}

// LessValuable says whether pod a should be deleted before pod b:
// unscheduled before scheduled, pending before unknown before running, not
// ready before ready, ready for less time before longer, more restarts
// before fewer, newer before older.
func LessValuable(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if ra, rb := podPhaseRank(a.Status.Phase), podPhaseRank(b.Status.Phase); ra != rb {
		return ra < rb
	}
	if IsPodReady(a) != IsPodReady(b) {
		return !IsPodReady(a)
	}
	if IsPodReady(a) && IsPodReady(b) {
		ta, tb := PodReadyCondition(a).LastTransitionTime, PodReadyCondition(b).LastTransitionTime
		if !ta.Equal(&tb) {
			return tb.Before(&ta) // ready more recently goes first
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

// SortLeastValuableFirst orders pods for deletion, least valuable first.
func SortLeastValuableFirst(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool { return LessValuable(pods[i], pods[j]) })
}

// PodFromTemplate builds the pod a controller creates from its template.
func PodFromTemplate(t *corev1.PodTemplateSpec, owner metav1.Object, gvk schema.GroupVersionKind) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    owner.GetName() + "-",
			Namespace:       owner.GetNamespace(),
			Labels:          labels.Merge(nil, t.Labels),
			Annotations:     labels.Merge(nil, t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{NewControllerRef(owner, gvk)},
		},
	}
	t.Spec.DeepCopyInto(&p.Spec)
	return p
}

// PodKey is the namespace/name of a pod.
func PodKey(p *corev1.Pod) string { return fmt.Sprintf("%s/%s", p.Namespace, p.Name) }

// PodNodeIndex indexes a pod cache by spec.nodeName (bound pods only).
const PodNodeIndex = "spec.nodeName"

// PodNodeName is the index function of PodNodeIndex.
func PodNodeName(obj runtime.Object) ([]string, error) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		return []string{p.Spec.NodeName}, nil
	}
	return nil, nil
}

// IndexPodsByNode adds PodNodeIndex to a pod informer's cache unless
// another controller did already.
func IndexPodsByNode(inf informer.SharedInformer) error {
	if _, ok := inf.GetIndexer().GetIndexers()[PodNodeIndex]; ok {
		return nil
	}
	return inf.AddIndexers(informer.Indexers{PodNodeIndex: PodNodeName})
}
