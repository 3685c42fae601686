// Package defaulttolerationseconds is upstream's DefaultTolerationSeconds
// admission plugin: a pod that does not tolerate the
// node.kubernetes.io/not-ready or node.kubernetes.io/unreachable NoExecute
// taints gets a toleration of each for a bounded time (300 s by default),
// so that the node lifecycle controller evicts it from a failed node only
// after that time instead of at once.
package defaulttolerationseconds

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
)

// PluginName is the plugin's name, as upstream's.
const PluginName = "DefaultTolerationSeconds"

// DefaultSeconds is upstream's default for both tolerations
// (--default-not-ready-toleration-seconds and
// --default-unreachable-toleration-seconds).
const DefaultSeconds = 300

// Plugin adds the default tolerations to pods on create and update, as
// upstream's does (pod validation allows adding tolerations on update).
type Plugin struct {
	notReadySeconds, unreachableSeconds int64
}

// New returns the plugin with the given toleration durations.
func New(notReadySeconds, unreachableSeconds int64) *Plugin {
	return &Plugin{notReadySeconds: notReadySeconds, unreachableSeconds: unreachableSeconds}
}

var _ admission.Interface = (*Plugin)(nil)

// Admit adds the missing tolerations to a pod.
func (p *Plugin) Admit(_ context.Context, a admission.Attributes, obj runtime.Object) error {
	if a.Group != "" || a.Resource != "pods" || a.Subresource != "" {
		return nil
	}
	if a.Operation != admission.Create && a.Operation != admission.Update {
		return nil
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	notReady, unreachable := false, false
	for _, t := range pod.Spec.Tolerations {
		noExecute := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		if !noExecute {
			continue
		}
		// As upstream: an empty key (with any operator) counts as
		// tolerating the taint.
		notReady = notReady || t.Key == corev1.TaintNodeNotReady || t.Key == ""
		unreachable = unreachable || t.Key == corev1.TaintNodeUnreachable || t.Key == ""
	}
	if !notReady {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, toleration(corev1.TaintNodeNotReady, p.notReadySeconds))
	}
	if !unreachable {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, toleration(corev1.TaintNodeUnreachable, p.unreachableSeconds))
	}
	return nil
}

// toleration returns a fresh toleration (its own tolerationSeconds
// pointer, since pods are changed in place later).
func toleration(key string, seconds int64) corev1.Toleration {
	return corev1.Toleration{
		Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
		TolerationSeconds: new(seconds),
	}
}
