package controller

import (
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/informer"
)

func TestExpectations(t *testing.T) {
	e := NewExpectations()
	now := time.Unix(1000, 0)
	e.now = func() time.Time { return now }
	if !e.Satisfied("a") {
		t.Fatal("no record: want satisfied")
	}
	e.ExpectCreations("a", 2)
	if e.Satisfied("a") {
		t.Fatal("2 creations pending: want unsatisfied")
	}
	e.CreationObserved("a")
	e.CreationObserved("a")
	e.CreationObserved("a") // more than expected: stays at 0
	if !e.Satisfied("a") {
		t.Fatal("creations observed: want satisfied")
	}
	e.ExpectDeletions("a", []string{"ns/p1", "ns/p2"})
	e.DeletionObserved("a", "ns/other")
	e.DeletionObserved("a", "ns/p1")
	if e.Satisfied("a") {
		t.Fatal("p2 pending: want unsatisfied")
	}
	now = now.Add(ExpectationsTimeout + time.Second)
	if !e.Satisfied("a") {
		t.Fatal("expired: want satisfied")
	}
}

func pod(name string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.Unix(100, 0)}}
	p.Spec.NodeName = "n1"
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Unix(100, 0)}}
	if mod != nil {
		mod(p)
	}
	return p
}

func TestSortLeastValuableFirst(t *testing.T) {
	pods := []*corev1.Pod{
		pod("healthy", nil),
		pod("newer", func(p *corev1.Pod) { p.CreationTimestamp = metav1.Unix(200, 0) }),
		pod("restarts", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 5}}
		}),
		pod("ready-recently", func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.Unix(150, 0) }),
		pod("not-ready", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }),
		pod("pending", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending; p.Status.Conditions = nil }),
		pod("unscheduled", func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = nil
		}),
	}
	SortLeastValuableFirst(pods)
	want := []string{"unscheduled", "pending", "not-ready", "ready-recently", "restarts", "newer", "healthy"}
	for i, p := range pods {
		if p.Name != want[i] {
			var got []string
			for _, p := range pods {
				got = append(got, p.Name)
			}
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestSlowStartBatch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		count      int
		failAfter  int64 // calls after which fn fails; -1 never
		wantOK     int
		wantCalls  int64
		wantFailed bool
	}{
		{"all succeed", 10, -1, 10, 10, false},
		{"first fails", 10, 0, 0, 1, true},
		// batches 1, 2, 4: the third batch fails entirely; no fourth.
		{"third batch fails", 20, 3, 3, 7, true},
		{"zero", 0, -1, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			ok, err := SlowStartBatch(tc.count, 1, func() error {
				n := calls.Add(1)
				if tc.failAfter >= 0 && n > tc.failAfter {
					return errors.New("boom")
				}
				return nil
			})
			if ok != tc.wantOK || calls.Load() != tc.wantCalls || (err != nil) != tc.wantFailed {
				t.Errorf("got ok=%d calls=%d err=%v, want ok=%d calls=%d failed=%v", ok, calls.Load(), err, tc.wantOK, tc.wantCalls, tc.wantFailed)
			}
		})
	}
}

func TestFindPort(t *testing.T) {
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
	}}}}}
	for _, tc := range []struct {
		sp      corev1.ServicePort
		want    int32
		wantErr bool
	}{
		{corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}, 8080, false},
		{corev1.ServicePort{Port: 53, TargetPort: intstr.FromString("dns"), Protocol: corev1.ProtocolUDP}, 5353, false},
		{corev1.ServicePort{Port: 53, TargetPort: intstr.FromString("dns"), Protocol: corev1.ProtocolTCP}, 0, true},
		{corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(9090)}, 9090, false},
		{corev1.ServicePort{Port: 80}, 80, false},
	} {
		got, err := FindPort(p, &tc.sp)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("FindPort(%v) = %d, %v; want %d, error %v", tc.sp.TargetPort, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestServicesSelecting(t *testing.T) {
	idx := informer.NewIndexer(informer.Indexers{ServiceSelectorIndex: serviceSelectorIndexFunc})
	svc := func(ns, name string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Selector: sel}}
	}
	for _, s := range []*corev1.Service{
		svc("a", "web", map[string]string{"app": "web"}),
		svc("a", "web-fe", map[string]string{"app": "web", "tier": "fe"}),
		svc("a", "web-be", map[string]string{"app": "web", "tier": "be"}),
		svc("a", "none", nil),
		svc("b", "web", map[string]string{"app": "web"}),
	} {
		if err := idx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p", Labels: map[string]string{"app": "web", "tier": "fe", "x": "y"}}}
	got, err := ServicesSelecting(idx, pod)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Namespace+"/"+s.Name)
		if !ServiceSelects(s, pod.Labels) {
			t.Errorf("%s/%s does not select the pod", s.Namespace, s.Name)
		}
	}
	sort.Strings(names)
	if want := "a/web,a/web-fe"; strings.Join(names, ",") != want {
		t.Errorf("services selecting the pod: %v, want %s (each once)", names, want)
	}
	if ServiceSelects(svc("a", "none", nil), pod.Labels) {
		t.Error("a Service without a selector selects pods")
	}
}
