// Package endpointslice keeps the EndpointSlices of every Service with a
// selector: the matching pods as endpoints with ready, serving and
// terminating conditions, grouped by resolved ports and address type, at
// most MaxEndpointsPerSlice per slice.
package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/endpoints"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// MaxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
const MaxEndpointsPerSlice = 100

// ManagedBy is the value of the managed-by label on the slices this
// controller owns.
const ManagedBy = "endpointslice-controller.k8s.io"

var serviceKind = corev1.SchemeGroupVersion.WithKind("Service")

// Client is the part of the EndpointSlice client the controller uses.
type Client interface {
	Create(ctx context.Context, ns string, s *discoveryv1.EndpointSlice) (*discoveryv1.EndpointSlice, error)
	Update(ctx context.Context, ns string, s *discoveryv1.EndpointSlice) (*discoveryv1.EndpointSlice, error)
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (bool, error)
}

// Controller reconciles EndpointSlices; its keys are the Services'.
type Controller struct {
	slices      Client
	svcLister   *informer.Lister[*corev1.Service]
	podLister   *informer.Lister[*corev1.Pod]
	sliceLister *informer.Lister[*discoveryv1.EndpointSlice]
	synced      []func() bool
	queue       *workqueue.Typed[string]
	logger      *zap.Logger
	maxPerSlice int
	// expectations count the slices created (by generated name) and not
	// yet seen: until they are, the cache would make us create them again.
	expectations *controller.Expectations
}

// New returns the controller, fed by f's informers.
func New(c *client.Client, f *informer.Factory, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	svcInf, svcLister := informer.ForType[*corev1.Service](f)
	podInf, podLister := informer.ForType[*corev1.Pod](f)
	sliceInf, sliceLister := informer.ForType[*discoveryv1.EndpointSlice](f)
	sc := &Controller{
		slices: client.For[*discoveryv1.EndpointSlice](c), svcLister: svcLister, podLister: podLister, sliceLister: sliceLister,
		synced: []func() bool{svcInf.HasSynced, podInf.HasSynced, sliceInf.HasSynced},
		queue:  controller.NewQueue("endpointslice", m), logger: logger.Named("endpointslice"), maxPerSlice: MaxEndpointsPerSlice,
		expectations: controller.NewExpectations(),
	}
	if _, err := svcInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    sc.enqueue,
		UpdateFunc: func(_, cur any) { sc.enqueue(cur) },
		DeleteFunc: sc.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("endpointslice: watch services: %w", err)
	}
	podHandler, err := endpoints.PodHandler(svcInf, sc.queue, sc.logger)
	if err != nil {
		return nil, fmt.Errorf("endpointslice: %w", err)
	}
	if _, err := podInf.AddEventHandler(podHandler); err != nil {
		return nil, fmt.Errorf("endpointslice: watch pods: %w", err)
	}
	if _, err := sliceInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if key := sliceServiceKey(obj); key != "" {
				sc.expectations.CreationObserved(key)
				sc.queue.Add(key)
			}
		},
		UpdateFunc: func(_, cur any) { sc.enqueueSliceService(cur) },
		DeleteFunc: sc.enqueueSliceService,
	}); err != nil {
		return nil, fmt.Errorf("endpointslice: watch endpointslices: %w", err)
	}
	return sc, nil
}

// Run reconciles with workers goroutines until ctx is done.
func (sc *Controller) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "endpointslice", sc.logger, sc.queue, workers, sc.sync, sc.synced...)
}

func (sc *Controller) enqueue(obj any) { controller.Enqueue(sc.queue, obj) }

// enqueueSliceService queues the Service of a slice we manage that someone
// changed or deleted.
func (sc *Controller) enqueueSliceService(obj any) {
	if key := sliceServiceKey(obj); key != "" {
		sc.queue.Add(key)
	}
}

// sliceServiceKey is the key of the Service of a slice we manage, or "".
func sliceServiceKey(obj any) string {
	if tomb, ok := obj.(informer.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s.Labels[discoveryv1.LabelServiceName] == "" {
		return ""
	}
	return s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]
}

// owned lists the slices this controller manages for a Service.
func (sc *Controller) owned(ns, svcName string) []*discoveryv1.EndpointSlice {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svcName, discoveryv1.LabelManagedBy: ManagedBy})
	out := sc.sliceLister.ByNamespace(ns).List(sel)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (sc *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := informer.SplitKey(key)
	if err != nil {
		return nil //nolint:nilerr // a malformed key cannot get better
	}
	if !sc.expectations.Satisfied(key) {
		return nil // our creations are not in the cache yet; their events requeue us
	}
	existing := sc.owned(ns, name)
	svc, err := sc.svcLister.Get(ns, name)
	if apierrors.IsNotFound(err) {
		sc.expectations.Delete(key)
		return sc.deleteAll(ctx, existing)
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	sel := controller.ServiceSelector(svc)
	if sel == nil {
		return sc.deleteAll(ctx, existing)
	}
	desired := Desired(svc, sc.podLister.ByNamespace(ns).List(sel), sc.maxPerSlice)
	return sc.reconcile(ctx, svc, desired, existing)
}

func (sc *Controller) deleteAll(ctx context.Context, slices []*discoveryv1.EndpointSlice) error {
	var errs []error
	for _, s := range slices {
		if _, err := sc.slices.Delete(ctx, s.Namespace, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reconcile turns the existing slices into the desired ones: a slice of
// the same address type and ports is reused (updated if its endpoints
// differ), the rest are created, and leftovers deleted.
func (sc *Controller) reconcile(ctx context.Context, svc *corev1.Service, desired []Slice, existing []*discoveryv1.EndpointSlice) error {
	lbls := controller.EndpointLabels(svc)
	lbls[discoveryv1.LabelServiceName] = svc.Name
	lbls[discoveryv1.LabelManagedBy] = ManagedBy
	ref := controller.NewControllerRef(svc, serviceKind)
	used := make([]bool, len(existing))
	var errs []error
	var creates []*discoveryv1.EndpointSlice
	for _, d := range desired {
		match := -1
		for i, s := range existing {
			if !used[i] && s.AddressType == d.AddressType && apiequality.Semantic.DeepEqual(normPorts(s.Ports), normPorts(d.Ports)) {
				match = i
				break
			}
		}
		if match < 0 {
			s := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName: svc.Name + "-", Namespace: svc.Namespace, Labels: lbls,
					OwnerReferences: []metav1.OwnerReference{ref},
				},
				AddressType: d.AddressType, Endpoints: d.Endpoints, Ports: d.Ports,
			}
			creates = append(creates, s)
			continue
		}
		used[match] = true
		cur := existing[match]
		if apiequality.Semantic.DeepEqual(normEndpoints(cur.Endpoints), normEndpoints(d.Endpoints)) && labels.Equals(cur.Labels, lbls) && len(cur.OwnerReferences) == 1 && cur.OwnerReferences[0].UID == svc.UID {
			continue
		}
		upd := cur.DeepCopy()
		upd.Endpoints, upd.Ports, upd.Labels = d.Endpoints, d.Ports, lbls
		upd.OwnerReferences = []metav1.OwnerReference{ref}
		if _, err := sc.slices.Update(ctx, svc.Namespace, upd); err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s/%s: %w", cur.Namespace, cur.Name, err))
		}
	}
	key := svc.Namespace + "/" + svc.Name
	if len(creates) > 0 {
		sc.expectations.ExpectCreations(key, len(creates))
	}
	for _, s := range creates {
		if _, err := sc.slices.Create(ctx, svc.Namespace, s); err != nil {
			sc.expectations.CreationObserved(key)
			if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				errs = append(errs, fmt.Errorf("create endpointslice for %s/%s: %w", svc.Namespace, svc.Name, err))
			}
		}
	}
	for i, s := range existing {
		if used[i] {
			continue
		}
		if _, err := sc.slices.Delete(ctx, s.Namespace, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func normPorts(p []discoveryv1.EndpointPort) []discoveryv1.EndpointPort {
	if len(p) == 0 {
		return nil
	}
	return p
}

func normEndpoints(e []discoveryv1.Endpoint) []discoveryv1.Endpoint {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Slice is the content of one desired EndpointSlice.
type Slice struct {
	AddressType discoveryv1.AddressType
	Ports       []discoveryv1.EndpointPort
	Endpoints   []discoveryv1.Endpoint
}

// Desired computes a Service's slices from its pods. A Service without
// endpoints keeps one empty IPv4 slice, as upstream does.
func Desired(svc *corev1.Service, pods []*corev1.Pod, maxPerSlice int) []Slice {
	type group struct {
		addrType  discoveryv1.AddressType
		ports     []discoveryv1.EndpointPort
		endpoints []discoveryv1.Endpoint
	}
	groups := map[string]*group{}
	for _, pod := range pods {
		if !controller.PodEndpointCandidate(pod, true) {
			continue
		}
		var ports []discoveryv1.EndpointPort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, err := controller.FindPort(pod, sp)
			if err != nil {
				continue
			}
			name, proto := sp.Name, sp.Protocol
			ports = append(ports, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: sp.AppProtocol})
		}
		if len(ports) == 0 && len(svc.Spec.Ports) > 0 {
			continue
		}
		sort.Slice(ports, func(i, j int) bool { return *ports[i].Name < *ports[j].Name })
		addrType := discoveryv1.AddressTypeIPv4
		if strings.Contains(pod.Status.PodIP, ":") {
			addrType = discoveryv1.AddressTypeIPv6
		}
		terminating := pod.DeletionTimestamp != nil
		serving := svc.Spec.PublishNotReadyAddresses || controller.IsPodReady(pod)
		ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
		ep := discoveryv1.Endpoint{
			Addresses:  []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			node := pod.Spec.NodeName
			ep.NodeName = &node
		}
		if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
			h := pod.Spec.Hostname
			ep.Hostname = &h
		}
		var kb strings.Builder
		kb.WriteString(string(addrType))
		for _, p := range ports {
			fmt.Fprintf(&kb, ";%s/%d/%s", *p.Name, *p.Port, *p.Protocol)
		}
		k := kb.String()
		g := groups[k]
		if g == nil {
			g = &group{addrType: addrType, ports: ports}
			groups[k] = g
		}
		g.endpoints = append(g.endpoints, ep)
	}
	if len(groups) == 0 {
		return []Slice{{AddressType: discoveryv1.AddressTypeIPv4}}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Slice
	for _, k := range keys {
		g := groups[k]
		sort.Slice(g.endpoints, func(i, j int) bool {
			a, b := g.endpoints[i], g.endpoints[j]
			return a.Addresses[0] < b.Addresses[0] || (a.Addresses[0] == b.Addresses[0] && a.TargetRef.Name < b.TargetRef.Name)
		})
		for start := 0; start < len(g.endpoints); start += maxPerSlice {
			end := min(start+maxPerSlice, len(g.endpoints))
			out = append(out, Slice{AddressType: g.addrType, Ports: g.ports, Endpoints: g.endpoints[start:end]})
		}
	}
	return out
}
