package app_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/client"
)

func (e *env) testEndpoints(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("ep")
	lbls := map[string]string{"app": "api"}
	pc := client.For[*corev1.Pod](e.Client)
	svcs := client.For[*corev1.Service](e.Client)
	eps := client.For[*corev1.Endpoints](e.Client)
	slices := client.For[*discoveryv1.EndpointSlice](e.Client)

	if _, err := svcs.Create(ctx, ns, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: corev1.ServiceSpec{
			Selector: lbls,
			Ports:    []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	for i := range 3 {
		p, err := pc.Create(ctx, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("api-%d", i), Labels: lbls}, Spec: podTemplate(nil, "api").Spec})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	// Two ready; the third runs with an IP but is not ready.
	if err := e.markReady(ctx, pods[0], pods[1]); err != nil {
		t.Fatal(err)
	}
	unready := pods[2].DeepCopy()
	unready.Status.Phase = corev1.PodRunning
	unready.Status.PodIP = "10.244.9.9"
	unready.Status.PodIPs = []corev1.PodIP{{IP: unready.Status.PodIP}}
	if _, err := pc.UpdateStatus(ctx, ns, unready); err != nil {
		t.Fatal(err)
	}

	eventually(t, "endpoints with 2 ready and 1 not ready address", func(ctx context.Context) (bool, error) {
		ep, err := eps.Get(ctx, ns, "api")
		if err != nil {
			return false, err
		}
		if len(ep.Subsets) != 1 {
			return false, fmt.Errorf("subsets %+v", ep.Subsets)
		}
		s := ep.Subsets[0]
		if len(s.Addresses) != 2 || len(s.NotReadyAddresses) != 1 || len(s.Ports) != 1 {
			return false, fmt.Errorf("subset %+v", s)
		}
		if p := s.Ports[0]; p.Port != 8080 || p.Name != "web" {
			return false, fmt.Errorf("port %+v, want web 8080 (named target port resolved)", p)
		}
		if s.NotReadyAddresses[0].IP != "10.244.9.9" || s.NotReadyAddresses[0].TargetRef.Name != "api-2" {
			return false, fmt.Errorf("not ready %+v", s.NotReadyAddresses[0])
		}
		return true, nil
	})
	sliceSel := metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=api"}
	eventually(t, "one endpointslice with 3 endpoints", func(ctx context.Context) (bool, error) {
		l, _, err := slices.List(ctx, ns, sliceSel)
		if err != nil {
			return false, err
		}
		if len(l) != 1 {
			return false, fmt.Errorf("%d slices", len(l))
		}
		s := l[0]
		ready := 0
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ready++
			}
		}
		if len(s.Endpoints) != 3 || ready != 2 {
			return false, fmt.Errorf("%d endpoints, %d ready", len(s.Endpoints), ready)
		}
		if len(s.Ports) != 1 || *s.Ports[0].Port != 8080 || s.AddressType != discoveryv1.AddressTypeIPv4 {
			return false, fmt.Errorf("ports %+v type %s", s.Ports, s.AddressType)
		}
		if s.Labels[discoveryv1.LabelManagedBy] != "endpointslice-controller.k8s.io" {
			return false, fmt.Errorf("labels %v", s.Labels)
		}
		return true, nil
	})

	// A deleted pod leaves both.
	if _, err := pc.Delete(ctx, ns, "api-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod removed from endpoints and slices", func(ctx context.Context) (bool, error) {
		ep, err := eps.Get(ctx, ns, "api")
		if err != nil {
			return false, err
		}
		l, _, err := slices.List(ctx, ns, sliceSel)
		if err != nil {
			return false, err
		}
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1 && len(l) == 1 && len(l[0].Endpoints) == 2, fmt.Errorf("endpoints %+v", ep.Subsets)
	})

	// The Service deleted, its Endpoints and slices go.
	if _, err := svcs.Delete(ctx, ns, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "endpoints and slices deleted", func(ctx context.Context) (bool, error) {
		_, err := eps.Get(ctx, ns, "api")
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("endpoints: %v", err)
		}
		l, _, err := slices.List(ctx, ns, sliceSel)
		return err == nil && len(l) == 0, fmt.Errorf("%d slices (%v)", len(l), err)
	})
}
