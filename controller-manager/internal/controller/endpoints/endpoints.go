// Package endpoints keeps, for every Service with a selector, an Endpoints
// object of the same name listing the matching pods' addresses (ready and
// not ready) and their resolved target ports.
package endpoints

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// Client is the part of the Endpoints client the controller uses.
type Client interface {
	Create(ctx context.Context, ns string, ep *corev1.Endpoints) (*corev1.Endpoints, error)
	Update(ctx context.Context, ns string, ep *corev1.Endpoints) (*corev1.Endpoints, error)
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (bool, error)
}

// Controller reconciles Endpoints; its keys are the Services'.
type Controller struct {
	eps       Client
	svcLister *informer.Lister[*corev1.Service]
	podLister *informer.Lister[*corev1.Pod]
	epLister  *informer.Lister[*corev1.Endpoints]
	synced    []func() bool
	queue     *workqueue.Typed[string]
	logger    *zap.Logger
}

// New returns the controller, fed by f's informers.
func New(c *client.Client, f *informer.Factory, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	svcInf, svcLister := informer.ForType[*corev1.Service](f)
	podInf, podLister := informer.ForType[*corev1.Pod](f)
	epInf, epLister := informer.ForType[*corev1.Endpoints](f)
	ec := &Controller{
		eps: client.For[*corev1.Endpoints](c), svcLister: svcLister, podLister: podLister, epLister: epLister,
		synced: []func() bool{svcInf.HasSynced, podInf.HasSynced, epInf.HasSynced},
		queue:  controller.NewQueue("endpoint", m), logger: logger.Named("endpoint"),
	}
	if _, err := svcInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    ec.enqueue,
		UpdateFunc: func(_, cur any) { ec.enqueue(cur) },
		DeleteFunc: ec.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("endpoint: watch services: %w", err)
	}
	podHandler, err := PodHandler(svcInf, ec.queue, ec.logger)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	if _, err := podInf.AddEventHandler(podHandler); err != nil {
		return nil, fmt.Errorf("endpoint: watch pods: %w", err)
	}
	if _, err := epInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		DeleteFunc: ec.enqueue, // someone deleted it: put it back
	}); err != nil {
		return nil, fmt.Errorf("endpoint: watch endpoints: %w", err)
	}
	return ec, nil
}

// PodHandler queues the Services selecting a pod before or after a change.
func PodHandler(svcInf informer.SharedInformer, q *workqueue.Typed[string], logger *zap.Logger) (informer.ResourceEventHandler, error) {
	if err := controller.IndexServiceSelectors(svcInf); err != nil {
		return nil, err
	}
	enqueueFor := func(pod *corev1.Pod) {
		svcs, err := controller.ServicesSelecting(svcInf.GetIndexer(), pod)
		if err != nil {
			logger.Error("find the services of a pod", zap.String("pod", pod.Namespace+"/"+pod.Name), zap.Error(err))
			return
		}
		for _, svc := range svcs {
			controller.Enqueue(q, svc)
		}
	}
	podOf := func(obj any) *corev1.Pod {
		if tomb, ok := obj.(informer.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		p, _ := obj.(*corev1.Pod)
		return p
	}
	return informer.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p := podOf(obj); p != nil {
				enqueueFor(p)
			}
		},
		UpdateFunc: func(oldObj, curObj any) {
			old, cur := podOf(oldObj), podOf(curObj)
			if old == nil || cur == nil || old.ResourceVersion == cur.ResourceVersion {
				return
			}
			enqueueFor(cur)
			if !labels.Equals(old.Labels, cur.Labels) {
				enqueueFor(old)
			}
		},
		DeleteFunc: func(obj any) {
			if p := podOf(obj); p != nil {
				enqueueFor(p)
			}
		},
	}, nil
}

// Run reconciles with workers goroutines until ctx is done.
func (ec *Controller) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "endpoint", ec.logger, ec.queue, workers, ec.sync, ec.synced...)
}

func (ec *Controller) enqueue(obj any) { controller.Enqueue(ec.queue, obj) }

func (ec *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := informer.SplitKey(key)
	if err != nil {
		return nil //nolint:nilerr // a malformed key cannot get better
	}
	svc, err := ec.svcLister.Get(ns, name)
	if apierrors.IsNotFound(err) {
		// The Service is gone: so go its Endpoints.
		if _, err := ec.epLister.Get(ns, name); apierrors.IsNotFound(err) {
			return nil
		}
		if _, err := ec.eps.Delete(ctx, ns, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get service %s: %w", key, err)
	}
	sel := controller.ServiceSelector(svc)
	if sel == nil {
		return nil // endpoints managed by someone else
	}
	subsets := Subsets(svc, ec.podLister.ByNamespace(ns).List(sel))
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: ns, Labels: controller.EndpointLabels(svc)},
		Subsets:    subsets,
	}
	cur, err := ec.epLister.Get(ns, name)
	if apierrors.IsNotFound(err) {
		if _, err := ec.eps.Create(ctx, ns, want); err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			// AlreadyExists: an earlier sync made them and the lister
			// has not seen it yet; retried (as upstream), the next sync
			// updates them rather than leaving this one's subsets unwritten.
			return fmt.Errorf("create endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get endpoints %s: %w", key, err)
	}
	if apiequality.Semantic.DeepEqual(cur.Subsets, want.Subsets) && labels.Equals(cur.Labels, want.Labels) {
		return nil
	}
	upd := cur.DeepCopy()
	upd.Subsets, upd.Labels = want.Subsets, want.Labels
	if _, err := ec.eps.Update(ctx, ns, upd); err != nil {
		return fmt.Errorf("update endpoints %s: %w", key, err)
	}
	return nil
}

// Subsets computes a Service's Endpoints subsets from its pods: pods with
// the same resolved ports share a subset; addresses are sorted by IP.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	type group struct {
		ports           []corev1.EndpointPort
		ready, notReady []corev1.EndpointAddress
	}
	groups := map[string]*group{}
	for _, pod := range pods {
		if !controller.PodEndpointCandidate(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		var ports []corev1.EndpointPort
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, err := controller.FindPort(pod, sp)
			if err != nil {
				continue
			}
			ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: port, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
		}
		if len(ports) == 0 && !(len(svc.Spec.Ports) == 0 && controller.IsHeadless(svc)) {
			continue
		}
		addr := corev1.EndpointAddress{
			IP:        pod.Status.PodIP,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		}
		if pod.Spec.NodeName != "" {
			node := pod.Spec.NodeName
			addr.NodeName = &node
		}
		if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
			addr.Hostname = pod.Spec.Hostname
		}
		sort.Slice(ports, func(i, j int) bool {
			return ports[i].Name < ports[j].Name || (ports[i].Name == ports[j].Name && ports[i].Port < ports[j].Port)
		})
		k := portsKey(ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: ports}
			groups[k] = g
		}
		if svc.Spec.PublishNotReadyAddresses || controller.IsPodReady(pod) {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []corev1.EndpointSubset
	for _, k := range keys {
		g := groups[k]
		byIP := func(a []corev1.EndpointAddress) {
			sort.Slice(a, func(i, j int) bool {
				return a[i].IP < a[j].IP || (a[i].IP == a[j].IP && a[i].TargetRef.Name < a[j].TargetRef.Name)
			})
		}
		byIP(g.ready)
		byIP(g.notReady)
		out = append(out, corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	return out
}

func portsKey(ports []corev1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "%s/%d/%s;", p.Name, p.Port, p.Protocol)
	}
	return b.String()
}
