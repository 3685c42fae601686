// Package grpcapi serves the generic resource service of proto/resource/v1
// over the registry: every request authenticated by its client certificate
// or bearer token (metadata "authorization"), authorized, then handed to the
// resource's store.
package grpcapi

import (
	"context"
	"crypto/x509"
	"fmt"
	goruntime "runtime"
	"strconv"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
	"github.com/coxswain/coxswain/apiserver/internal/authz"
	"github.com/coxswain/coxswain/apiserver/internal/metrics"
	"github.com/coxswain/coxswain/apiserver/internal/registry"
	"github.com/coxswain/coxswain/apiserver/internal/registry/core"
	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/api/status"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

// MaxObjectSize bounds a request's object, as upstream's 3 MiB body limit.
const MaxObjectSize = 3 << 20

// Server implements resourcev1.ResourcesServer.
type Server struct {
	resourcev1.UnimplementedResourcesServer
	Registry   *registry.Registry
	Authorizer authz.Authorizer
	Metrics    *metrics.Metrics
	Logger     *zap.Logger
	// Roots verify client certificates.
	Roots *x509.CertPool
	// Tokens verifies bearer tokens (metadata "authorization"); nil: only
	// client certificates authenticate.
	Tokens authn.TokenAuthenticator
	// TokenRequests issues service-account tokens (serviceaccounts/token);
	// nil: the subresource answers 405.
	TokenRequests TokenRequester
}

// TokenRequester serves the serviceaccounts/token subresource.
type TokenRequester interface {
	CreateToken(ctx context.Context, ns, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// Register adds the service to a gRPC server, with the interceptors that
// authenticate every call.
func (s *Server) Options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
		grpc.MaxRecvMsgSize(MaxObjectSize + 64<<10),
		grpc.MaxSendMsgSize(1 << 30),
		// Reuse a pool of goroutines for incoming calls rather than one new
		// goroutine (and stack growth) per call.
		grpc.NumStreamWorkers(uint32(4 * goruntime.GOMAXPROCS(0))),
	}
}

func (s *Server) authenticate(ctx context.Context) (context.Context, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, apierrors.NewUnauthorized("Unauthorized")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, apierrors.NewUnauthorized("Unauthorized")
	}
	var authorization string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			authorization = v[0]
		}
	}
	a := authn.Authenticator{Roots: s.Roots, Tokens: s.Tokens}
	user, err := a.Authenticate(ctx, &info.State, authorization)
	if err != nil {
		return nil, apierrors.NewUnauthorized("Unauthorized")
	}
	return authn.WithUser(ctx, user), nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx)
	if err != nil {
		return nil, status.ToGRPC(err)
	}
	return h(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context())
	if err != nil {
		return status.ToGRPC(err)
	}
	return h(srv, authedStream{ServerStream: ss, ctx: ctx})
}

// resolve finds the store and authorizes the request.
func (s *Server) resolve(ctx context.Context, verb string, ref *resourcev1.ResourceRef) (*generic.Store, error) {
	if ref == nil {
		return nil, apierrors.NewBadRequest("a resource reference is required")
	}
	gvr := schema.GroupVersionResource{Group: ref.Group, Version: ref.Version, Resource: ref.Resource}
	store, ok := s.Registry.Store(gvr)
	if !ok {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), ref.Name)
	}
	if ref.Subresource != "" && !store.Resource.HasSubresource(ref.Subresource) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: ref.Group, Resource: ref.Resource + "/" + ref.Subresource}, ref.Name)
	}
	user, _ := authn.UserFrom(ctx)
	if s.Authorizer != nil {
		dec, reason, err := s.Authorizer.Authorize(ctx, authz.Attributes{
			User: user, Verb: verb, Group: ref.Group, Version: ref.Version, Resource: ref.Resource,
			Subresource: ref.Subresource, Namespace: ref.Namespace, Name: ref.Name,
		})
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		if dec != authz.DecisionAllow {
			name := "<unknown>"
			if user != nil {
				name = user.Name
			}
			return nil, apierrors.NewForbidden(gvr.GroupResource(), ref.Name, fmt.Errorf("User %q cannot %s resource %q in API group %q: %s", name, verb, ref.Resource, ref.Group, reason))
		}
	}
	return store, nil
}

func (s *Server) observe(verb string, ref *resourcev1.ResourceRef, start time.Time, err error) {
	if s.Metrics == nil {
		return
	}
	res := ""
	if ref != nil {
		res = ref.Resource
		if ref.Subresource != "" {
			res += "/" + ref.Subresource
		}
	}
	code := 200
	if err != nil {
		code = int(status.FromError(err).Code)
	}
	s.Metrics.Requests.WithLabelValues(verb, res, "grpc", strconv.Itoa(code)).Inc()
	s.Metrics.Latency.WithLabelValues(verb, res).Observe(time.Since(start).Seconds())
}

func decodeFor(store *generic.Store, raw []byte) (runtime.Object, error) {
	if len(raw) > MaxObjectSize {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxObjectSize))
	}
	if len(raw) == 0 {
		return nil, apierrors.NewBadRequest("the request has no object")
	}
	obj, gvk, err := scheme.Protobuf.Decode(raw, nil, nil)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object could not be decoded: %v", err))
	}
	if gvk != nil && *gvk != store.Resource.GVK() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object is a %s, the request is for %s", gvk.Kind, store.Resource.GVR.Resource))
	}
	return obj, nil
}

func encode(obj runtime.Object) ([]byte, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	raw, err := runtime.Encode(scheme.Protobuf, obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return raw, nil
}

func objectReply(obj runtime.Object, err error) (*resourcev1.Object, error) {
	if err != nil {
		return nil, err
	}
	raw, err := encode(obj)
	if err != nil {
		return nil, err
	}
	return &resourcev1.Object{Raw: raw}, nil
}

// Get implements resourcev1.ResourcesServer.
func (s *Server) Get(ctx context.Context, req *resourcev1.GetRequest) (out *resourcev1.Object, err error) {
	defer func(t time.Time) { s.observe("get", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	store, err := s.resolve(ctx, "get", req.GetRef())
	if err != nil {
		return nil, err
	}
	return objectReply(store.Get(ctx, req.Ref.Namespace, req.Ref.Name, req.ResourceVersion))
}

// List implements resourcev1.ResourcesServer.
func (s *Server) List(ctx context.Context, req *resourcev1.ListRequest) (out *resourcev1.ListResponse, err error) {
	defer func(t time.Time) { s.observe("list", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	store, err := s.resolve(ctx, "list", req.GetRef())
	if err != nil {
		return nil, err
	}
	res, err := store.List(ctx, req.Ref.Namespace, metav1.ListOptions{
		LabelSelector: req.LabelSelector, FieldSelector: req.FieldSelector, Limit: req.Limit, Continue: req.Continue,
		ResourceVersion: req.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatch(req.ResourceVersionMatch),
	})
	if err != nil {
		return nil, err
	}
	out = &resourcev1.ListResponse{Items: make([][]byte, len(res.Items)), ResourceVersion: res.ResourceVersion, Continue: res.Continue}
	for i, e := range res.Items {
		raw, err := entryBytes(e)
		if err != nil {
			return nil, err
		}
		out.Items[i] = raw
	}
	if res.Remaining != nil {
		out.HasRemaining, out.RemainingItemCount = true, *res.Remaining
	}
	return out, nil
}

func entryBytes(e *cacher.Entry) ([]byte, error) {
	if e.Raw != nil {
		return e.Raw, nil
	}
	obj, err := e.Object()
	if err != nil {
		return nil, err
	}
	return encode(obj)
}

// Create implements resourcev1.ResourcesServer; with a subresource it
// serves pods/binding and pods/eviction.
func (s *Server) Create(ctx context.Context, req *resourcev1.CreateRequest) (out *resourcev1.Object, err error) {
	defer func(t time.Time) { s.observe("create", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	store, err := s.resolve(ctx, "create", req.GetRef())
	if err != nil {
		return nil, err
	}
	ref := req.Ref
	switch {
	case ref.Subresource == "":
		obj, err := decodeFor(store, req.Object)
		if err != nil {
			return nil, err
		}
		created, raw, err := store.CreateEncoded(ctx, ref.Namespace, obj, req.DryRun)
		if err != nil {
			return nil, err
		}
		if raw != nil {
			return &resourcev1.Object{Raw: raw}, nil
		}
		return objectReply(created, nil)
	case ref.Group == "" && ref.Resource == "pods" && ref.Subresource == "binding":
		obj, _, err := scheme.Protobuf.Decode(req.Object, nil, nil)
		b, ok := obj.(*corev1.Binding)
		if err != nil || !ok {
			return nil, apierrors.NewBadRequest("pods/binding takes a Binding object")
		}
		if b.Name == "" {
			b.Name = ref.Name
		}
		if ref.Name != "" && b.Name != ref.Name {
			return nil, apierrors.NewBadRequest("the name of the Binding does not match the pod's name")
		}
		if _, err := core.Bind(ctx, store, ref.Namespace, b, req.DryRun); err != nil {
			return nil, err
		}
		st := &metav1.Status{Status: metav1.StatusSuccess, Code: 201}
		return objectReply(st, nil)
	case ref.Group == "" && ref.Resource == "pods" && ref.Subresource == "eviction":
		obj, _, err := scheme.Protobuf.Decode(req.Object, nil, nil)
		ev, ok := obj.(*policyv1.Eviction)
		if err != nil || !ok {
			return nil, apierrors.NewBadRequest("pods/eviction takes an Eviction object")
		}
		return objectReply(core.Evict(ctx, store, ref.Namespace, ref.Name, ev))
	case ref.Group == "" && ref.Resource == "serviceaccounts" && ref.Subresource == "token" && s.TokenRequests != nil:
		obj, _, err := scheme.Protobuf.Decode(req.Object, nil, nil)
		tr, ok := obj.(*authenticationv1.TokenRequest)
		if err != nil || !ok {
			return nil, apierrors.NewBadRequest("serviceaccounts/token takes a TokenRequest object")
		}
		return objectReply(s.TokenRequests.CreateToken(ctx, ref.Namespace, ref.Name, tr))
	}
	return nil, apierrors.NewMethodNotSupported(schema.GroupResource{Group: ref.Group, Resource: ref.Resource + "/" + ref.Subresource}, "create")
}

// Update implements resourcev1.ResourcesServer.
func (s *Server) Update(ctx context.Context, req *resourcev1.UpdateRequest) (out *resourcev1.Object, err error) {
	defer func(t time.Time) { s.observe("update", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	return s.update(ctx, req, false)
}

// UpdateStatus implements resourcev1.ResourcesServer.
func (s *Server) UpdateStatus(ctx context.Context, req *resourcev1.UpdateRequest) (out *resourcev1.Object, err error) {
	defer func(t time.Time) { s.observe("update", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	if req.GetRef() != nil {
		req.Ref.Subresource = "status"
	}
	return s.update(ctx, req, true)
}

func (s *Server) update(ctx context.Context, req *resourcev1.UpdateRequest, st bool) (*resourcev1.Object, error) {
	store, err := s.resolve(ctx, "update", req.GetRef())
	if err != nil {
		return nil, err
	}
	obj, err := decodeFor(store, req.Object)
	if err != nil {
		return nil, err
	}
	if req.Ref.Subresource == "finalize" {
		return objectReply(core.Finalize(ctx, store, req.Ref.Name, obj, req.DryRun))
	}
	if req.Ref.Subresource != "" && !st {
		return nil, apierrors.NewMethodNotSupported(schema.GroupResource{Group: req.Ref.Group, Resource: req.Ref.Resource + "/" + req.Ref.Subresource}, "update")
	}
	if st {
		return objectReply(store.UpdateStatus(ctx, req.Ref.Namespace, req.Ref.Name, obj, req.DryRun))
	}
	return objectReply(store.Update(ctx, req.Ref.Namespace, req.Ref.Name, obj, req.DryRun))
}

// Patch implements resourcev1.ResourcesServer.
func (s *Server) Patch(ctx context.Context, req *resourcev1.PatchRequest) (out *resourcev1.Object, err error) {
	defer func(t time.Time) { s.observe("patch", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	store, err := s.resolve(ctx, "patch", req.GetRef())
	if err != nil {
		return nil, err
	}
	st := req.Ref.Subresource == "status"
	if req.Ref.Subresource != "" && !st {
		return nil, apierrors.NewMethodNotSupported(schema.GroupResource{Group: req.Ref.Group, Resource: req.Ref.Resource + "/" + req.Ref.Subresource}, "patch")
	}
	return objectReply(store.Patch(ctx, req.Ref.Namespace, req.Ref.Name, types.PatchType(req.PatchType), req.Patch, st, req.DryRun))
}

// Delete implements resourcev1.ResourcesServer.
func (s *Server) Delete(ctx context.Context, req *resourcev1.DeleteRequest) (out *resourcev1.DeleteResponse, err error) {
	defer func(t time.Time) { s.observe("delete", req.GetRef(), t, err); err = status.ToGRPC(err) }(time.Now())
	store, err := s.resolve(ctx, "delete", req.GetRef())
	if err != nil {
		return nil, err
	}
	opts := &metav1.DeleteOptions{}
	if len(req.Options) > 0 {
		if err := opts.Unmarshal(req.Options); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid delete options: %v", err))
		}
	}
	obj, finished, err := store.Delete(ctx, req.Ref.Namespace, req.Ref.Name, opts)
	if err != nil {
		return nil, err
	}
	raw, err := encode(obj)
	if err != nil {
		return nil, err
	}
	return &resourcev1.DeleteResponse{Object: raw, Finished: finished}, nil
}

// Watch implements resourcev1.ResourcesServer.
func (s *Server) Watch(req *resourcev1.WatchRequest, stream resourcev1.Resources_WatchServer) (err error) {
	ctx := stream.Context()
	start := time.Now()
	defer func() { err = status.ToGRPC(err) }()
	store, err := s.resolve(ctx, "watch", req.GetRef())
	if err != nil {
		s.observe("watch", req.GetRef(), start, err)
		return err
	}
	opts := metav1.ListOptions{
		LabelSelector: req.LabelSelector, FieldSelector: req.FieldSelector,
		ResourceVersion: req.ResourceVersion, AllowWatchBookmarks: req.AllowBookmarks,
	}
	if req.SendInitialEvents {
		t := true
		opts.SendInitialEvents = &t
	}
	if req.TimeoutSeconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutSeconds)*time.Second)
		defer cancel()
	}
	w, err := store.Watch(ctx, req.Ref.Namespace, opts)
	s.observe("watch", req.GetRef(), start, err)
	if err != nil {
		return err
	}
	defer w.Stop()
	if s.Metrics != nil {
		g := s.Metrics.Watchers.WithLabelValues(req.Ref.Resource)
		g.Inc()
		defer g.Dec()
	}
	for {
		typ, e, rev, ok := w.Next(ctx)
		if !ok {
			return nil
		}
		msg, err := watchMessage(store, typ, e, rev)
		if err != nil {
			return err
		}
		var out any = preEncoded(msg)
		if req.AllowBatches {
			// The events ready now go out in one message: a watcher
			// that fell behind catches up with one send per batch
			// instead of one per event. Nothing waits for a batch to
			// fill, and the events' shared messages are not copied.
			var b batch
			for size := len(msg); len(b.parts) < 2*maxBatchEvents && size < maxBatchBytes; {
				typ, e, rev, ok := w.TryNext()
				if !ok {
					break
				}
				next, err := watchMessage(store, typ, e, rev)
				if err != nil {
					return err
				}
				if b.parts == nil {
					b.add(msg)
				}
				b.add(next)
				size += len(next)
			}
			if b.parts != nil {
				out = preEncodedBatch(b.parts)
			}
		}
		if err := stream.SendMsg(out); err != nil {
			return nil
		}
	}
}

// A batch of watch events holds at most this many events or, past the
// event that crosses it, this many bytes.
const (
	maxBatchEvents = 512
	maxBatchBytes  = 256 << 10
)

// watchMessage is the WatchEvent message of one event: shared by every
// watcher for objects of the cache, made for a bookmark.
func watchMessage(store *generic.Store, typ watch.EventType, e *cacher.Entry, rev int64) ([]byte, error) {
	if typ != watch.Bookmark {
		return watchEventBytes(typ, e)
	}
	bm, err := store.Bookmark(rev, e)
	if err != nil {
		return nil, err
	}
	raw, err := encode(bm)
	if err != nil {
		return nil, err
	}
	return appendWatchEvent(nil, string(typ), raw), nil
}
