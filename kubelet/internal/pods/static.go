package pods

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// configSourceAnnotation says where the kubelet got a pod from, upstream's
// kubernetes.io/config.source: "api" or absent for the apiserver's pods,
// "file" for static pods.
const configSourceAnnotation = "kubernetes.io/config.source"

// IsStatic reports whether pod came from a source other than the
// apiserver (a static pod of --pod-manifest-path): it has no object in
// the API, so its status goes to Config.StaticPodStatus and it is never
// deleted through the API.
func IsStatic(pod *corev1.Pod) bool {
	src := pod.Annotations[configSourceAnnotation]
	return src != "" && src != "api"
}

// AddStatic runs a static pod (or brings a running one to this version of
// it) exactly as a pod of the apiserver.
func (m *Manager) AddStatic(pod *corev1.Pod) {
	m.observe(pod, false)
}

// RemoveStatic stops a static pod whose manifest is gone: its containers
// get the pod's termination grace period, then its sandbox, volumes and
// directory go.
func (m *Manager) RemoveStatic(pod *corev1.Pod) {
	p := pod.DeepCopy()
	now := metav1.NewTime(time.Now())
	p.DeletionTimestamp = &now
	grace := int64(30)
	if p.Spec.TerminationGracePeriodSeconds != nil {
		grace = *p.Spec.TerminationGracePeriodSeconds
	}
	p.DeletionGracePeriodSeconds = &grace
	m.observe(p, false)
}

// writeStaticStatus keeps a static pod's status and hands it to
// Config.StaticPodStatus (for its mirror pod) when it changed.
func (w *worker) writeStaticStatus(pod *corev1.Pod, st corev1.PodStatus) corev1.PodStatus {
	if w.written != nil && equality.Semantic.DeepEqual(*w.written, st) {
		return st
	}
	w.written = st.DeepCopy()
	if w.m.cfg.StaticPodStatus != nil {
		w.m.cfg.StaticPodStatus(pod, *st.DeepCopy())
	}
	return st
}
