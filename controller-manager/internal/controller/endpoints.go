package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// HeadlessLabel marks the Endpoints and EndpointSlices of a headless
// Service.
const HeadlessLabel = corev1.IsHeadlessService

// FindPort resolves a Service port's targetPort on a pod: a number as is
// (0 means the service port), a name through the pod's container ports
// of the same protocol.
func FindPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, error) {
	tp := sp.TargetPort
	switch tp.Type {
	case intstr.String:
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				proto := p.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				want := sp.Protocol
				if want == "" {
					want = corev1.ProtocolTCP
				}
				if p.Name == tp.StrVal && proto == want {
					return p.ContainerPort, nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s/%s has no port named %q", pod.Namespace, pod.Name, tp.StrVal)
	default:
		if tp.IntVal == 0 {
			return sp.Port, nil
		}
		return tp.IntVal, nil
	}
}

// PodEndpointCandidate says whether a pod may back a Service: it has an
// IP and has not finished. Terminating pods count only when
// includeTerminating is set.
func PodEndpointCandidate(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.PodIP == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

// ServiceSelector is a Service's pod selector, or nil when the Service has
// none (its endpoints are not managed).
func ServiceSelector(svc *corev1.Service) labels.Selector {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	return labels.SelectorFromValidatedSet(svc.Spec.Selector)
}

// IsHeadless says whether a Service has no cluster IP.
func IsHeadless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// EndpointLabels are a Service's labels plus the headless marker.
func EndpointLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		out[k] = v
	}
	if IsHeadless(svc) {
		out[HeadlessLabel] = ""
	} else {
		delete(out, HeadlessLabel)
	}
	return out
}
