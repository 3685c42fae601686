package endpointslice

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDesired(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}},
	}
	mk := func(i int, port int32, ready, deleting bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "ns"}}
		p.Spec.Containers = []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}}}}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = fmt.Sprintf("10.0.%d.%d", i/200, i%200)
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if deleting {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}
	var pods []*corev1.Pod
	for i := range 5 {
		pods = append(pods, mk(i, 8080, true, false))
	}
	pods = append(pods, mk(10, 9090, true, false), mk(11, 8080, true, true), mk(12, 8080, false, false))
	noIP := mk(13, 8080, true, false)
	noIP.Status.PodIP = ""
	pods = append(pods, noIP)

	got := Desired(svc, pods, 3)
	// Port 8080: 5 ready + 1 terminating + 1 not ready = 7 endpoints in
	// slices of 3 (3, 3, 1); port 9090: 1.
	var sizes []int
	for _, s := range got {
		sizes = append(sizes, len(s.Endpoints))
	}
	if fmt.Sprint(sizes) != "[3 3 1 1]" {
		t.Fatalf("slice sizes %v, want [3 3 1 1]", sizes)
	}
	for _, s := range got {
		for _, ep := range s.Endpoints {
			name := ep.TargetRef.Name
			ready, serving, term := *ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating
			switch name {
			case "p11":
				if ready || !serving || !term {
					t.Errorf("terminating pod: ready=%v serving=%v terminating=%v", ready, serving, term)
				}
			case "p12":
				if ready || serving || term {
					t.Errorf("unready pod: ready=%v serving=%v terminating=%v", ready, serving, term)
				}
			default:
				if !ready || !serving || term {
					t.Errorf("%s: ready=%v serving=%v terminating=%v", name, ready, serving, term)
				}
			}
		}
	}
	if empty := Desired(svc, nil, 100); len(empty) != 1 || len(empty[0].Endpoints) != 0 {
		t.Errorf("no pods: %+v, want one empty placeholder slice", empty)
	}
}
