package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
)

// TestControllerCoverage covers what TestControllers does not:
// minReadySeconds, headless Services and publishNotReadyAddresses.
func TestControllerCoverage(t *testing.T) {
	e := startEnv(t)
	t.Run("MinReadySeconds", e.testMinReadySeconds)
	t.Run("HeadlessService", e.testHeadlessService)
	t.Run("PublishNotReadyAddresses", e.testPublishNotReadyAddresses)
}

// readySince returns when a pod's Ready condition last became True.
func readySince(p *corev1.Pod) (time.Time, bool) {
	c := controller.PodReadyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return time.Time{}, false
	}
	return c.LastTransitionTime.Time, true
}

// testMinReadySeconds: a ReplicaSet counts a ready pod as available only
// once it has been ready for minReadySeconds. The bound is checked on
// every observed status: a status read at t can only count the pods whose
// Ready lastTransitionTime + minReadySeconds <= t (the controller wrote it
// before t).
func (e *env) testMinReadySeconds(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("min-ready")
	lbls := map[string]string{"app": "slow"}
	rsc := client.For[*appsv1.ReplicaSet](e.Client)
	pc := client.For[*corev1.Pod](e.Client)
	// 3 s rather than 2: lastTransitionTime is stored in whole seconds, so
	// the window in which the pods are ready but not available is at least
	// 2 s long for the checks below to observe.
	const minReady = 3
	if _, err := rsc.Create(ctx, ns, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "slow"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(2)), MinReadySeconds: minReady,
			Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: podTemplate(lbls, "nginx"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	eventually(t, "2 pods", func(ctx context.Context) (bool, error) {
		var err error
		pods, err = e.activePods(ctx, ns, labels.SelectorFromSet(lbls))
		return err == nil && len(pods) == 2, err
	})
	if err := e.markReady(ctx, pods...); err != nil {
		t.Fatal(err)
	}
	// The Ready transition times as stored.
	var since []time.Time
	for _, p := range pods {
		stored, err := pc.Get(ctx, ns, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts, ok := readySince(stored)
		if !ok {
			t.Fatalf("pod %s not ready after markReady", p.Name)
		}
		since = append(since, ts)
	}
	availableAt := func(at time.Time) int32 {
		var n int32
		for _, ts := range since {
			if !ts.Add(minReady * time.Second).After(at) {
				n++
			}
		}
		return n
	}

	sawWaiting := false
	eventually(t, "both pods available after minReadySeconds", func(ctx context.Context) (bool, error) {
		rs, err := rsc.Get(ctx, ns, "slow")
		read := time.Now()
		if err != nil {
			return false, err
		}
		s := rs.Status
		if limit := availableAt(read); s.AvailableReplicas > limit {
			t.Fatalf("at %v availableReplicas is %d, but only %d pods have been ready for %d s (ready since %v)", read, s.AvailableReplicas, limit, minReady, since)
		}
		if s.ReadyReplicas == 2 && s.AvailableReplicas < 2 {
			sawWaiting = true
		}
		return s.ReadyReplicas == 2 && s.AvailableReplicas == 2, fmt.Errorf("status %+v", s)
	})
	if !sawWaiting {
		t.Errorf("never saw the pods ready but not yet available: minReadySeconds not honoured")
	}
}

// endpointsFor waits for the Service's Endpoints and slices to satisfy
// check.
func (e *env) endpointsFor(t *testing.T, ns, svc, what string, check func(*corev1.Endpoints, []*discoveryv1.EndpointSlice) error) {
	t.Helper()
	eps := client.For[*corev1.Endpoints](e.Client)
	slices := client.For[*discoveryv1.EndpointSlice](e.Client)
	eventually(t, what, func(ctx context.Context) (bool, error) {
		ep, err := eps.Get(ctx, ns, svc)
		if err != nil {
			return false, err
		}
		l, _, err := slices.List(ctx, ns, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err != nil {
			return false, err
		}
		if err := check(ep, l); err != nil {
			return false, err
		}
		return true, nil
	})
}

// testHeadlessService: a Service with clusterIP None and no ports gets
// Endpoints and an EndpointSlice with its pods' addresses and no ports,
// both labelled service.kubernetes.io/headless; a pod whose subdomain is
// the Service's name gets its hostname in them.
func (e *env) testHeadlessService(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("headless")
	lbls := map[string]string{"app": "db"}
	svc, err := client.For[*corev1.Service](e.Client).Create(ctx, ns, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: lbls},
	})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless Service got clusterIP %q", svc.Spec.ClusterIP)
	}
	pc := client.For[*corev1.Pod](e.Client)
	var pods []*corev1.Pod
	for i := range 2 {
		spec := podTemplate(nil, "postgres").Spec
		spec.Hostname, spec.Subdomain = fmt.Sprintf("db-%d", i), "db"
		p, err := pc.Create(ctx, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("db-%d", i), Labels: lbls}, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	if err := e.markReady(ctx, pods...); err != nil {
		t.Fatal(err)
	}
	e.endpointsFor(t, ns, "db", "headless endpoints and slice", func(ep *corev1.Endpoints, sl []*discoveryv1.EndpointSlice) error {
		if _, ok := ep.Labels[corev1.IsHeadlessService]; !ok {
			return fmt.Errorf("endpoints labels %v lack %s", ep.Labels, corev1.IsHeadlessService)
		}
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 2 || len(ep.Subsets[0].Ports) != 0 {
			return fmt.Errorf("endpoints subsets %+v, want 2 ready addresses and no ports", ep.Subsets)
		}
		hostnames := map[string]string{}
		for _, a := range ep.Subsets[0].Addresses {
			hostnames[a.TargetRef.Name] = a.Hostname
		}
		if hostnames["db-0"] != "db-0" || hostnames["db-1"] != "db-1" {
			return fmt.Errorf("endpoints hostnames %v", hostnames)
		}
		if len(sl) != 1 {
			return fmt.Errorf("%d slices", len(sl))
		}
		s := sl[0]
		if _, ok := s.Labels[corev1.IsHeadlessService]; !ok {
			return fmt.Errorf("slice labels %v lack %s", s.Labels, corev1.IsHeadlessService)
		}
		if len(s.Endpoints) != 2 || len(s.Ports) != 0 {
			return fmt.Errorf("slice with %d endpoints and ports %+v, want 2 and none", len(s.Endpoints), s.Ports)
		}
		for _, ep := range s.Endpoints {
			if ep.Hostname == nil || *ep.Hostname != ep.TargetRef.Name || ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
				return fmt.Errorf("slice endpoint %+v, want ready with hostname %s", ep, ep.TargetRef.Name)
			}
		}
		return nil
	})
}

// testPublishNotReadyAddresses: with publishNotReadyAddresses, a running
// pod with an IP that is not ready is listed as a ready address (and a
// ready, serving slice endpoint); without it, the same pod is not ready.
func (e *env) testPublishNotReadyAddresses(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("publish-not-ready")
	lbls := map[string]string{"app": "peer"}
	svcs := client.For[*corev1.Service](e.Client)
	port := []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}
	for name, publish := range map[string]bool{"peers": true, "plain": false} {
		if _, err := svcs.Create(ctx, ns, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ServiceSpec{Selector: lbls, Ports: port, PublishNotReadyAddresses: publish},
		}); err != nil {
			t.Fatal(err)
		}
	}
	pc := client.For[*corev1.Pod](e.Client)
	p, err := pc.Create(ctx, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "peer-0", Labels: lbls}, Spec: podTemplate(nil, "etcd").Spec})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = "10.244.7.7"
	p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}}
	if _, err := pc.UpdateStatus(ctx, ns, p); err != nil {
		t.Fatal(err)
	}

	e.endpointsFor(t, ns, "peers", "not-ready pod published as ready", func(ep *corev1.Endpoints, sl []*discoveryv1.EndpointSlice) error {
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 1 || len(ep.Subsets[0].NotReadyAddresses) != 0 {
			return fmt.Errorf("endpoints subsets %+v, want the pod among the ready addresses", ep.Subsets)
		}
		if a := ep.Subsets[0].Addresses[0]; a.IP != "10.244.7.7" || a.TargetRef.Name != "peer-0" {
			return fmt.Errorf("address %+v", a)
		}
		if len(sl) != 1 || len(sl[0].Endpoints) != 1 {
			return fmt.Errorf("%d slices", len(sl))
		}
		c := sl[0].Endpoints[0].Conditions
		if c.Ready == nil || !*c.Ready || c.Serving == nil || !*c.Serving {
			return fmt.Errorf("slice endpoint conditions %+v, want ready and serving", c)
		}
		return nil
	})
	e.endpointsFor(t, ns, "plain", "not-ready pod not ready without publishNotReadyAddresses", func(ep *corev1.Endpoints, sl []*discoveryv1.EndpointSlice) error {
		if len(ep.Subsets) != 1 || len(ep.Subsets[0].Addresses) != 0 || len(ep.Subsets[0].NotReadyAddresses) != 1 {
			return fmt.Errorf("endpoints subsets %+v, want the pod among the not-ready addresses", ep.Subsets)
		}
		if len(sl) != 1 || len(sl[0].Endpoints) != 1 {
			return fmt.Errorf("%d slices", len(sl))
		}
		if c := sl[0].Endpoints[0].Conditions; c.Ready == nil || *c.Ready {
			return fmt.Errorf("slice endpoint conditions %+v, want not ready", c)
		}
		return nil
	})
}
