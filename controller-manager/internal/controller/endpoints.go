package controller

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/informer"
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

// ServiceSelects says whether svc's selector selects pod's labels: what
// ServiceSelector(svc).Matches says, without building a selector (this
// runs for every Service on every pod event).
func ServiceSelects(svc *corev1.Service, podLabels map[string]string) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if pv, ok := podLabels[k]; !ok || pv != v {
			return false
		}
	}
	return true
}

// ServiceSelectorIndex indexes Services by each key=value pair of their
// selector (informer.LabelIndexValue), so that a pod event finds the
// Services selecting it without testing every Service of the namespace.
const ServiceSelectorIndex = "service-selector"

func serviceSelectorIndexFunc(obj runtime.Object) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(svc.Spec.Selector))
	for k, v := range svc.Spec.Selector {
		out = append(out, informer.LabelIndexValue(svc.Namespace, k, v))
	}
	return out, nil
}

// IndexServiceSelectors adds ServiceSelectorIndex to the Services
// informer once (controllers share the informer).
func IndexServiceSelectors(svcInf informer.SharedInformer) error {
	if _, ok := svcInf.GetIndexer().GetIndexers()[ServiceSelectorIndex]; ok {
		return nil
	}
	err := svcInf.AddIndexers(informer.Indexers{ServiceSelectorIndex: serviceSelectorIndexFunc})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("index services by selector: %w", err)
	}
	return nil
}

// ServicesSelecting returns the Services of pod's namespace whose selector
// selects it, from ServiceSelectorIndex: a selecting Service is indexed
// under each of its pairs, all of which the pod carries.
func ServicesSelecting(svcIndexer informer.Indexer, pod *corev1.Pod) ([]*corev1.Service, error) {
	var out []*corev1.Service
	seen := map[*corev1.Service]bool{}
	for k, v := range pod.Labels {
		objs, err := svcIndexer.ByIndex(ServiceSelectorIndex, informer.LabelIndexValue(pod.Namespace, k, v))
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			svc, ok := obj.(*corev1.Service)
			if !ok || seen[svc] || !ServiceSelects(svc, pod.Labels) {
				continue
			}
			seen[svc] = true
			out = append(out, svc)
		}
	}
	return out, nil
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
