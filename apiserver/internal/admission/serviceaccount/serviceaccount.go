// Package serviceaccount is the defaulting part of upstream's
// ServiceAccount admission plugin: a pod created without a service account
// runs as the namespace's "default" one. Coxswain issues no tokens, so the
// plugin mounts none, and it does not require the ServiceAccount to exist
// yet.
package serviceaccount

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
)

// PluginName is the plugin's name, as upstream's.
const PluginName = "ServiceAccount"

// DefaultServiceAccountName is the service account a pod gets when it
// names none.
const DefaultServiceAccountName = "default"

// Plugin defaults spec.serviceAccountName on pod create.
type Plugin struct{}

var _ admission.Interface = Plugin{}

// Admit sets a created pod's service account to "default" when it names
// none (spec.serviceAccount, the deprecated alias, counts as naming one).
// Mirror pods are left alone: their spec is the kubelet's static pod's.
func (Plugin) Admit(_ context.Context, a admission.Attributes, obj runtime.Object) error {
	if a.Operation != admission.Create || a.Group != "" || a.Resource != "pods" || a.Subresource != "" {
		return nil
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = pod.Spec.DeprecatedServiceAccount
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccountName
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	return nil
}
