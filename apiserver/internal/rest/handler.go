// Package rest serves the Kubernetes HTTP API over the registry: discovery,
// OpenAPI, CRUD in JSON, YAML and protobuf, watch, patch, Table output and
// Status errors, so that kubectl and other Kubernetes clients work.
package rest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
	"github.com/coxswain/coxswain/apiserver/internal/authz"
	"github.com/coxswain/coxswain/apiserver/internal/fieldmanager"
	"github.com/coxswain/coxswain/apiserver/internal/metrics"
	"github.com/coxswain/coxswain/apiserver/internal/registry"
	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
)

// Handler serves the REST API.
type Handler struct {
	Registry   *registry.Registry
	Authorizer authz.Authorizer
	Metrics    *metrics.Metrics
	Logger     *zap.Logger
	// OpenAPI serves /openapi/...; nil answers 404.
	OpenAPI http.Handler
	// Now is the clock for Table ages.
	Now func() time.Time
	// KubeletClient reaches kubelet APIs (pods/log; its TLS configuration
	// also dials them for pods/exec, attach and portforward); nil answers 503.
	KubeletClient *http.Client
	// TokenRequests issues service-account tokens (serviceaccounts/token);
	// nil: the subresource answers 405.
	TokenRequests TokenRequester
}

// TokenRequester serves the serviceaccounts/token subresource.
type TokenRequester interface {
	CreateToken(ctx context.Context, ns, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
}

// request is a parsed resource path.
type request struct {
	gvr         schema.GroupVersionResource
	namespace   string
	name        string
	subresource string
	store       *generic.Store
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.URL.Path, "/")
	if strings.HasPrefix(path, "openapi/") || path == "openapi" {
		if h.OpenAPI != nil {
			h.OpenAPI.ServeHTTP(w, r)
			return
		}
		writeError(w, r, apierrors.NewNotFound(schema.GroupResource{}, ""))
		return
	}
	parts := strings.Split(path, "/")
	if r.Method == http.MethodGet && h.serveDiscovery(w, r, parts) {
		return
	}
	if isMetricsPath(parts) {
		h.serveMetrics(w, r, parts)
		return
	}
	req, err := h.parse(parts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	verb := h.verb(r, req)
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		if h.Metrics != nil && verb != "watch" {
			res := req.gvr.Resource
			if req.subresource != "" {
				res += "/" + req.subresource
			}
			h.Metrics.Requests.WithLabelValues(verb, res, "rest", fmt.Sprint(rec.code)).Inc()
			h.Metrics.Latency.WithLabelValues(verb, res).Observe(time.Since(start).Seconds())
		}
	}()
	if err := h.authorize(r, verb, req); err != nil {
		writeError(rec, r, err)
		return
	}
	if isPodConnect(req) {
		h.podConnect(rec, r, req)
		return
	}
	switch verb {
	case "create", "update", "patch":
		growStack()
		manager := r.URL.Query().Get("fieldManager")
		if manager == "" {
			manager = fieldmanager.DefaultManager(r.UserAgent())
		} else if len(manager) > 128 {
			writeError(rec, r, apierrors.NewBadRequest("fieldManager: Too long: may not be longer than 128"))
			return
		}
		r = r.WithContext(fieldmanager.WithManager(r.Context(), manager))
	}
	switch verb {
	case "get":
		h.get(rec, r, req)
	case "list":
		h.list(rec, r, req)
	case "watch":
		h.watch(rec, r, req)
	case "create":
		h.create(rec, r, req)
	case "update":
		h.update(rec, r, req)
	case "patch":
		h.patch(rec, r, req)
	case "delete":
		h.delete(rec, r, req)
	case "deletecollection":
		h.deleteCollection(rec, r, req)
	default:
		writeError(rec, r, apierrors.NewMethodNotSupported(req.gvr.GroupResource(), r.Method))
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (pods/exec
// hijacks it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// parse reads /api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]] and
// /apis/GROUP/VERSION/... .
func (h *Handler) parse(parts []string) (*request, error) {
	notFound := apierrors.NewNotFound(schema.GroupResource{}, "")
	notFound.ErrStatus.Message = "the server could not find the requested resource"
	var gv schema.GroupVersion
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		gv, parts = schema.GroupVersion{Version: "v1"}, parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv, parts = schema.GroupVersion{Group: parts[1], Version: parts[2]}, parts[3:]
	default:
		return nil, notFound
	}
	req := &request{}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		// namespaces/NS/RESOURCE..., unless it is namespaces/NS/status|finalize
		if gv.Group == "" && (parts[2] == "status" || parts[2] == "finalize") && len(parts) == 3 {
			req.name, req.subresource = parts[1], parts[2]
			parts = []string{"namespaces"}
		} else {
			req.namespace, parts = parts[1], parts[2:]
		}
	}
	if len(parts) == 0 || len(parts) > 3 {
		return nil, notFound
	}
	req.gvr = gv.WithResource(parts[0])
	store, ok := h.Registry.Store(req.gvr)
	if !ok {
		return nil, notFound
	}
	req.store = store
	if len(parts) >= 2 {
		req.name = parts[1]
	}
	if len(parts) == 3 {
		req.subresource = parts[2]
		if !store.Resource.HasSubresource(req.subresource) && !isPodConnect(req) {
			return nil, notFound
		}
	}
	if req.namespace != "" && !store.Resource.Namespaced {
		return nil, notFound
	}
	return req, nil
}

func (h *Handler) verb(r *http.Request, req *request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if req.name != "" {
			return "get"
		}
		if w := r.URL.Query().Get("watch"); w == "1" || w == "true" {
			return "watch"
		}
		return "list"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if req.name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	return ""
}

func (h *Handler) authorize(r *http.Request, verb string, req *request) error {
	if h.Authorizer == nil {
		return nil
	}
	user, _ := authn.UserFrom(r.Context())
	dec, reason, err := h.Authorizer.Authorize(r.Context(), authz.Attributes{
		User: user, Verb: verb, Group: req.gvr.Group, Version: req.gvr.Version, Resource: req.gvr.Resource,
		Subresource: req.subresource, Namespace: req.namespace, Name: req.name, Path: r.URL.Path,
	})
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if dec != authz.DecisionAllow {
		name := ""
		if user != nil {
			name = user.Name
		}
		return apierrors.NewForbidden(req.gvr.GroupResource(), req.name, fmt.Errorf("User %q cannot %s resource %q in API group %q: %s", name, verb, req.gvr.Resource, req.gvr.Group, reason))
	}
	return nil
}

// growStack gives a write's goroutine, new from the HTTP/2 server for each
// request, a 64 KiB stack at once while it is still shallow. Decoding the
// body and encoding the answer in JSON nest deep enough to outgrow Go's
// 8 KiB start several times, and each growth copies the stack frame by
// frame from deep inside the decoder: about 5% of the apiserver's CPU in a
// profile of the REST create benchmark.
//
//go:noinline
func growStack() {
	var pad [56 << 10]byte
	touchLast(pad[:])
}

//go:noinline
func touchLast(b []byte) { b[len(b)-1] = 1 }
