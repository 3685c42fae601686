// Package client is the typed gRPC client of the apiserver's generic resource
// service. Objects are k8s.io/api Go types; they travel in the Kubernetes
// protobuf encoding.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/api/status"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// MaxMessageSize bounds one gRPC message (a large list).
const MaxMessageSize = 512 << 20

// ALPNProtocol is the TLS application protocol Coxswain clients ask for:
// the apiserver hands such connections straight to its gRPC server. Other
// gRPC clients, which ask for "h2", are served too, through its HTTP/2
// server.
const ALPNProtocol = "coxswain-grpc"

// Client talks to kube-apiserver over gRPC.
type Client struct {
	conn *grpc.ClientConn
	rc   resourcev1.ResourcesClient
}

// New dials the apiserver named by a kubeconfig.
func New(cfg *kubeconfig.Config, opts ...grpc.DialOption) (*Client, error) {
	host, err := cfg.Host()
	if err != nil {
		return nil, err
	}
	tc, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	tc.NextProtos = []string{ALPNProtocol, "h2"}
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}, opts...)
	conn, err := grpc.NewClient(host, all...)
	if err != nil {
		return nil, fmt.Errorf("dial apiserver %s: %w", host, err)
	}
	return NewFromConn(conn), nil
}

// NewFromFile loads a kubeconfig file and dials.
func NewFromFile(path string, opts ...grpc.DialOption) (*Client, error) {
	cfg, err := kubeconfig.Load(path)
	if err != nil {
		return nil, err
	}
	return New(cfg, opts...)
}

// NewFromConn wraps an existing connection.
func NewFromConn(conn *grpc.ClientConn) *Client {
	return &Client{conn: conn, rc: resourcev1.NewResourcesClient(conn)}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying connection.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

func ref(gvr schema.GroupVersionResource, ns, name, sub string) *resourcev1.ResourceRef {
	return &resourcev1.ResourceRef{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource, Namespace: ns, Name: name, Subresource: sub}
}

// Encode serialises obj in the Kubernetes protobuf encoding, setting its
// apiVersion and kind from the scheme.
func Encode(obj runtime.Object) ([]byte, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	return runtime.Encode(scheme.Protobuf, obj)
}

// Decode parses an object in the Kubernetes protobuf encoding.
func Decode(raw []byte) (runtime.Object, error) {
	obj, _, err := scheme.Protobuf.Decode(raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	return obj, nil
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, opts metav1.GetOptions) (runtime.Object, error) {
	out, err := c.rc.Get(ctx, &resourcev1.GetRequest{Ref: ref(gvr, ns, name, ""), ResourceVersion: opts.ResourceVersion})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return Decode(out.Raw)
}

// List lists objects; the result is the resource's List kind
// (*corev1.PodList for pods), filled with items, resourceVersion and continue.
func (c *Client) List(ctx context.Context, gvr schema.GroupVersionResource, ns string, opts metav1.ListOptions) (runtime.Object, error) {
	r, items, lm, err := c.listItems(ctx, gvr, ns, opts)
	if err != nil {
		return nil, err
	}
	list, err := r.NewList()
	if err != nil {
		return nil, err
	}
	if err := meta.SetList(list, items); err != nil {
		return nil, fmt.Errorf("list %v: %w", gvr, err)
	}
	acc, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	acc.SetResourceVersion(lm.ResourceVersion)
	acc.SetContinue(lm.Continue)
	acc.SetRemainingItemCount(lm.RemainingItemCount)
	list.GetObjectKind().SetGroupVersionKind(r.GVR.GroupVersion().WithKind(r.ListKind))
	return list, nil
}

// parallelDecodeMin is the list size from which items are decoded on
// several goroutines.
const parallelDecodeMin = 512

// listItems lists and decodes the items, large lists on all CPUs.
func (c *Client) listItems(ctx context.Context, gvr schema.GroupVersionResource, ns string, opts metav1.ListOptions) (scheme.Resource, []runtime.Object, metav1.ListMeta, error) {
	r, ok := scheme.LookupResource(gvr)
	if !ok {
		return r, nil, metav1.ListMeta{}, fmt.Errorf("list %v: resource not known to the client scheme", gvr)
	}
	resp, err := c.rc.List(ctx, &resourcev1.ListRequest{
		Ref: ref(gvr, ns, "", ""), LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector,
		Limit: opts.Limit, Continue: opts.Continue, ResourceVersion: opts.ResourceVersion,
		ResourceVersionMatch: string(opts.ResourceVersionMatch),
	})
	if err != nil {
		return r, nil, metav1.ListMeta{}, status.FromGRPC(err)
	}
	items, err := decodeAll(resp.Items)
	if err != nil {
		return r, nil, metav1.ListMeta{}, fmt.Errorf("list %v: %w", gvr, err)
	}
	lm := metav1.ListMeta{ResourceVersion: resp.ResourceVersion, Continue: resp.Continue}
	if resp.HasRemaining {
		n := resp.RemainingItemCount
		lm.RemainingItemCount = &n
	}
	return r, items, lm, nil
}

// decodeAll decodes raw items in order; large lists are split over
// GOMAXPROCS goroutines, each owning a contiguous range.
func decodeAll(raws [][]byte) ([]runtime.Object, error) {
	items := make([]runtime.Object, len(raws))
	workers := goruntime.GOMAXPROCS(0)
	if len(raws) < parallelDecodeMin || workers < 2 {
		for i, raw := range raws {
			obj, err := Decode(raw)
			if err != nil {
				return nil, err
			}
			items[i] = obj
		}
		return items, nil
	}
	errs := make([]error, workers)
	chunk := (len(raws) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(raws))
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				obj, err := Decode(raws[i])
				if err != nil {
					errs[w] = err
					return
				}
				items[i] = obj
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return items, nil
}

// Create creates obj; a non-empty sub creates through a subresource
// ("binding", "eviction").
func (c *Client) Create(ctx context.Context, gvr schema.GroupVersionResource, ns string, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	return c.CreateSubresource(ctx, gvr, ns, "", "", obj, opts)
}

// CreateSubresource posts obj to a subresource of the named object, e.g.
// pods/binding.
func (c *Client) CreateSubresource(ctx context.Context, gvr schema.GroupVersionResource, ns, name, sub string, obj runtime.Object, opts metav1.CreateOptions) (runtime.Object, error) {
	raw, err := Encode(obj)
	if err != nil {
		return nil, err
	}
	out, err := c.rc.Create(ctx, &resourcev1.CreateRequest{Ref: ref(gvr, ns, name, sub), Object: raw, DryRun: len(opts.DryRun) > 0, FieldManager: opts.FieldManager})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return Decode(out.Raw)
}

// Update replaces obj (its resourceVersion guards the write).
func (c *Client) Update(ctx context.Context, gvr schema.GroupVersionResource, ns string, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return c.update(ctx, gvr, ns, obj, opts, false)
}

// UpdateStatus replaces obj's status.
func (c *Client) UpdateStatus(ctx context.Context, gvr schema.GroupVersionResource, ns string, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return c.update(ctx, gvr, ns, obj, opts, true)
}

// update sends obj through Update, or through UpdateStatus for the status
// subresource; sub names the subresource ("" for the object itself).
func (c *Client) update(ctx context.Context, gvr schema.GroupVersionResource, ns string, obj runtime.Object, opts metav1.UpdateOptions, st bool) (runtime.Object, error) {
	if st {
		return c.send(ctx, gvr, ns, "status", obj, opts, c.rc.UpdateStatus)
	}
	return c.send(ctx, gvr, ns, "", obj, opts, c.rc.Update)
}

// UpdateSubresource replaces obj through a subresource of its own, e.g.
// "finalize" for a namespace's spec.finalizers.
func (c *Client) UpdateSubresource(ctx context.Context, gvr schema.GroupVersionResource, ns, sub string, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error) {
	return c.send(ctx, gvr, ns, sub, obj, opts, c.rc.Update)
}

// send encodes obj into an UpdateRequest for its subresource sub and calls
// rpc (Update or UpdateStatus).
func (c *Client) send(ctx context.Context, gvr schema.GroupVersionResource, ns, sub string, obj runtime.Object, opts metav1.UpdateOptions,
	rpc func(context.Context, *resourcev1.UpdateRequest, ...grpc.CallOption) (*resourcev1.Object, error)) (runtime.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	raw, err := Encode(obj)
	if err != nil {
		return nil, err
	}
	out, err := rpc(ctx, &resourcev1.UpdateRequest{Ref: ref(gvr, ns, acc.GetName(), sub), Object: raw, DryRun: len(opts.DryRun) > 0, FieldManager: opts.FieldManager})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return Decode(out.Raw)
}

// Patch applies a JSON merge, strategic merge or JSON patch; sub may name the
// status subresource.
func (c *Client) Patch(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (runtime.Object, error) {
	r := ref(gvr, ns, name, "")
	if len(sub) > 0 {
		r.Subresource = sub[0]
	}
	out, err := c.rc.Patch(ctx, &resourcev1.PatchRequest{Ref: r, PatchType: string(pt), Patch: data, DryRun: len(opts.DryRun) > 0, FieldManager: opts.FieldManager})
	if err != nil {
		return nil, status.FromGRPC(err)
	}
	return Decode(out.Raw)
}

// Delete deletes an object. The returned object is the deleted or now
// terminating object; finished says whether it is gone from storage.
func (c *Client) Delete(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, opts metav1.DeleteOptions) (obj runtime.Object, finished bool, err error) {
	raw, err := opts.Marshal()
	if err != nil {
		return nil, false, fmt.Errorf("encode delete options: %w", err)
	}
	out, err := c.rc.Delete(ctx, &resourcev1.DeleteRequest{Ref: ref(gvr, ns, name, ""), Options: raw})
	if err != nil {
		return nil, false, status.FromGRPC(err)
	}
	if len(out.Object) == 0 {
		return nil, out.Finished, nil
	}
	obj, err = Decode(out.Object)
	return obj, out.Finished, err
}

// Watch opens a watch stream. Events carry typed objects; an ERROR event
// carries a *metav1.Status (410 Gone when the resourceVersion is too old).
func (c *Client) Watch(ctx context.Context, gvr schema.GroupVersionResource, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	ctx, cancel := context.WithCancel(ctx)
	req := &resourcev1.WatchRequest{
		Ref: ref(gvr, ns, "", ""), LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector,
		ResourceVersion: opts.ResourceVersion, AllowBookmarks: opts.AllowWatchBookmarks,
		AllowBatches: true,
	}
	if opts.SendInitialEvents != nil {
		req.SendInitialEvents = *opts.SendInitialEvents
	}
	if opts.TimeoutSeconds != nil {
		req.TimeoutSeconds = *opts.TimeoutSeconds
	}
	stream, err := c.rc.Watch(ctx, req)
	if err != nil {
		cancel()
		return nil, status.FromGRPC(err)
	}
	w := &streamWatcher{cancel: cancel, result: make(chan watch.Event), done: make(chan struct{})}
	go w.receive(stream)
	return w, nil
}

type streamWatcher struct {
	cancel   context.CancelFunc
	result   chan watch.Event
	done     chan struct{}
	stopOnce sync.Once
}

func (w *streamWatcher) Stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		close(w.done)
	})
}

func (w *streamWatcher) ResultChan() <-chan watch.Event { return w.result }

func (w *streamWatcher) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.done:
		return false
	}
}

func (w *streamWatcher) receive(stream resourcev1.Resources_WatchClient) {
	defer close(w.result)
	defer w.cancel()
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			serr := status.FromGRPC(err)
			if errors.Is(serr, context.Canceled) {
				return
			}
			st := status.FromError(serr)
			w.send(watch.Event{Type: watch.Error, Object: &st})
			return
		}
		if len(ev.Batch) == 0 {
			if !w.deliver(ev) {
				return
			}
			continue
		}
		for _, b := range ev.Batch {
			if !w.deliver(b) {
				return
			}
		}
	}
}

// deliver decodes one event and hands it over; false ends the watch.
func (w *streamWatcher) deliver(ev *resourcev1.WatchEvent) bool {
	obj, err := Decode(ev.Object)
	if err != nil {
		st := apierrors.NewInternalError(err).Status()
		w.send(watch.Event{Type: watch.Error, Object: &st})
		return false
	}
	return w.send(watch.Event{Type: watch.EventType(ev.Type), Object: obj})
}
