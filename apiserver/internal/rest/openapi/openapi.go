// Package openapi serves the OpenAPI v2 (/openapi/v2) and v3 (/openapi/v3)
// documents of the served resources. The schemas are generated from the Go
// types by reflection: JSON tags give the properties, SwaggerDoc methods
// the descriptions, patchStrategy/patchMergeKey tags the strategic merge
// patch extensions; the documents are built once, at startup.
package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Media types of the documents.
const (
	mimeJSON = "application/json"
	// mimeProtoV2 is what upstream answers with; mimeProtoV2Old is the
	// (deprecated) spelling kubectl asks for.
	mimeProtoV2    = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mimeProtoV2Old = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
)

// document is one served document, encoded once.
type document struct {
	json  []byte
	proto []byte // v2 only
	etag  string // upper-case hex SHA-512 of json
}

func newDocument(v interface{}) (*document, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &document{json: b, etag: hash(b)}, nil
}

func hash(b []byte) string { return fmt.Sprintf("%X", sha512.Sum512(b)) }

// Handler serves /openapi/v2, /openapi/v3 and /openapi/v3/<group-version>.
type Handler struct {
	v2      *document
	v3Index *document
	v3      map[string]*document // by "api/v1", "apis/apps/v1", ...
	schemas map[string]*spec.Schema

	// The v2 document in protobuf goes through gnostic's parser, the
	// slowest step of all: it is built on the first request for it, not at
	// every start.
	v2ProtoOnce sync.Once
	v2ProtoErr  error
}

// v2Proto returns the v2 document in protobuf, built once.
func (h *Handler) v2Proto() ([]byte, error) {
	h.v2ProtoOnce.Do(func() {
		pdoc, err := openapi_v2.ParseDocument(h.v2.json)
		if err != nil {
			h.v2ProtoErr = fmt.Errorf("openapi: v2 document does not parse: %w", err)
			return
		}
		h.v2.proto, h.v2ProtoErr = proto.Marshal(pdoc)
	})
	return h.v2.proto, h.v2ProtoErr
}

// Schemas returns every OpenAPI v3 schema by definition name (references
// are "#/components/schemas/<name>"), for server-side apply's type
// converter. The map must not be changed.
func (h *Handler) Schemas() map[string]*spec.Schema { return h.schemas }

// Meta types every document carries, beside those the kinds reach.
var metaRoots = []reflect.Type{
	reflect.TypeFor[metav1.Status](),
	reflect.TypeFor[metav1.DeleteOptions](),
	reflect.TypeFor[metav1.Patch](),
	reflect.TypeFor[metav1.WatchEvent](),
	reflect.TypeFor[metav1.APIResourceList](),
	reflect.TypeFor[metav1.Duration](),
}

// Kinds that subresources take.
var (
	scaleType    = reflect.TypeFor[autoscalingv1.Scale]()
	scaleGVK     = autoscalingv1.SchemeGroupVersion.WithKind("Scale")
	bindingType  = reflect.TypeFor[corev1.Binding]()
	bindingGVK   = corev1.SchemeGroupVersion.WithKind("Binding")
	evictionType = reflect.TypeFor[policyv1.Eviction]()
	evictionGVK  = policyv1.SchemeGroupVersion.WithKind("Eviction")
)

// New builds every document for resources. version is the server's
// version as info.version reports it (v1.32.0). Resources whose kind has
// no Go type in the scheme (custom resources) are left out.
func New(resources []scheme.Resource, version string) (*Handler, error) {
	type kindTypes struct {
		r          scheme.Resource
		kind, list reflect.Type
	}
	var kinds []kindTypes
	gvks := map[reflect.Type][]schema.GroupVersionKind{}
	addGVK := func(t reflect.Type, gvk schema.GroupVersionKind) {
		for _, g := range gvks[t] {
			if g == gvk {
				return
			}
		}
		gvks[t] = append(gvks[t], gvk)
	}
	for _, r := range resources {
		obj, err := r.New()
		if err != nil {
			continue
		}
		list, err := r.NewList()
		if err != nil {
			continue
		}
		if _, ok := obj.(runtime.Unstructured); ok {
			continue
		}
		kt, lt := reflect.TypeOf(obj).Elem(), reflect.TypeOf(list).Elem()
		addGVK(kt, r.GVK())
		addGVK(lt, r.GVR.GroupVersion().WithKind(r.ListKind))
		kinds = append(kinds, kindTypes{r: r, kind: kt, list: lt})
	}
	addGVK(scaleType, scaleGVK)
	addGVK(bindingType, bindingGVK)
	addGVK(evictionType, evictionGVK)

	g2, g3 := newGenerator(false, gvks), newGenerator(true, gvks)
	define := func(t reflect.Type) string {
		g2.define(t)
		return g3.define(t)
	}
	var metaNames []string
	for _, t := range metaRoots {
		metaNames = append(metaNames, define(t))
	}

	byGV := map[schema.GroupVersion][]pathItem{}
	gvRoots := map[schema.GroupVersion][]string{}
	var allPaths []pathItem
	for _, k := range kinds {
		r := k.r
		s := served{
			resource:    r.GVR.Resource,
			gvk:         r.GVK(),
			listKind:    r.ListKind,
			namespaced:  r.Namespaced,
			kindName:    define(k.kind),
			listName:    define(k.list),
			hasStatus:   r.HasSubresource("status"),
			hasFinalize: r.HasSubresource("finalize"),
			hasLog:      r.HasSubresource("log"),
			hasExec:     r.HasSubresource("exec"),
		}
		if r.HasSubresource("scale") {
			s.scale = &subKind{gvk: scaleGVK, def: define(scaleType)}
		}
		if r.HasSubresource("binding") {
			s.binding = &subKind{gvk: bindingGVK, def: define(bindingType)}
		}
		if r.HasSubresource("eviction") {
			s.eviction = &subKind{gvk: evictionGVK, def: define(evictionType)}
		}
		gv := r.GVR.GroupVersion()
		ps := pathsFor(s)
		byGV[gv] = append(byGV[gv], ps...)
		allPaths = append(allPaths, ps...)
		gvRoots[gv] = append(gvRoots[gv], s.kindName, s.listName)
		for _, p := range ps {
			gvRoots[gv] = append(gvRoots[gv], refsOf(p)...)
		}
	}
	if g2.err != nil {
		return nil, g2.err
	}

	info := map[string]interface{}{"title": "Kubernetes", "version": version}
	h := &Handler{v3: map[string]*document{}}

	// v2: every path and definition in one document.
	paths := map[string]interface{}{}
	for _, p := range allPaths {
		paths[p.path] = renderV2(p)
	}
	v2, err := newDocument(map[string]interface{}{
		"swagger":     "2.0",
		"info":        info,
		"paths":       paths,
		"definitions": g2.defs,
		"securityDefinitions": map[string]interface{}{
			"BearerToken": map[string]interface{}{"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"},
		},
		"security": []interface{}{map[string]interface{}{"BearerToken": []string{}}},
	})
	if err != nil {
		return nil, err
	}
	h.v2 = v2
	h.schemas = g3.defs

	// v3: one document per group-version, and the index of them.
	index := map[string]interface{}{}
	for gv, ps := range byGV {
		paths := map[string]interface{}{}
		for _, p := range ps {
			paths[p.path] = renderV3(p)
		}
		roots := append(append([]string{}, gvRoots[gv]...), metaNames...)
		doc, err := newDocument(map[string]interface{}{
			"openapi": "3.0.0",
			"info":    info,
			"paths":   paths,
			"components": map[string]interface{}{
				"schemas": g3.closure(roots),
				"securitySchemes": map[string]interface{}{
					"BearerToken": map[string]interface{}{"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"},
				},
			},
		})
		if err != nil {
			return nil, err
		}
		key := gvPath(gv)
		h.v3[key] = doc
		index[key] = map[string]string{"serverRelativeURL": serverRelativeURL(key, doc.etag)}
	}
	if h.v3Index, err = newDocument(map[string]interface{}{"paths": index}); err != nil {
		return nil, err
	}
	return h, nil
}

func serverRelativeURL(key, etag string) string {
	return "/openapi/v3/" + key + "?" + url.Values{"hash": {etag}}.Encode()
}

// GroupVersions lists the keys of the v3 documents (api/v1, apis/apps/v1, ...).
func (h *Handler) GroupVersions() []string {
	out := make([]string, 0, len(h.v3))
	for k := range h.v3 {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ServeHTTP serves the documents; other paths are 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p != "/openapi/v2" && p != "/openapi/v3" && !strings.HasPrefix(p, "/openapi/v3/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case p == "/openapi/v2":
		h.serveV2(w, r)
	case p == "/openapi/v3":
		serve(w, r, h.v3Index.json, mimeJSON, h.v3Index.etag, "no-cache, private")
	default:
		doc, ok := h.v3[strings.TrimPrefix(p, "/openapi/v3/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.serveV3(w, r, strings.TrimPrefix(p, "/openapi/v3/"), doc)
	}
}

func (h *Handler) serveV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	for _, mt := range acceptedTypes(r.Header.Get("Accept")) {
		switch mt {
		case mimeProtoV2, mimeProtoV2Old:
			raw, err := h.v2Proto()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			serve(w, r, raw, mimeProtoV2, h.v2.etag, "no-cache, private")
			return
		case mimeJSON, "application/*", "*/*":
			serve(w, r, h.v2.json, mimeJSON, h.v2.etag, "no-cache, private")
			return
		}
	}
	http.Error(w, "406 Not Acceptable", http.StatusNotAcceptable)
}

func (h *Handler) serveV3(w http.ResponseWriter, r *http.Request, key string, doc *document) {
	w.Header().Add("Vary", "Accept")
	for _, mt := range acceptedTypes(r.Header.Get("Accept")) {
		if mt != mimeJSON && mt != "application/*" && mt != "*/*" {
			continue
		}
		hashParam := r.URL.Query().Get("hash")
		if hashParam == "" {
			serve(w, r, doc.json, mimeJSON, doc.etag, "no-cache, private")
			return
		}
		if hashParam != doc.etag {
			http.Redirect(w, r, serverRelativeURL(key, doc.etag), http.StatusMovedPermanently)
			return
		}
		w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
		serve(w, r, doc.json, mimeJSON, doc.etag, "public, immutable")
		return
	}
	http.Error(w, "406 Not Acceptable", http.StatusNotAcceptable)
}

func serve(w http.ResponseWriter, r *http.Request, body []byte, contentType, etag, cacheControl string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Etag", strconv.Quote(etag))
	w.Header().Set("Cache-Control", cacheControl)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptedTypes lists the media types of an Accept header, most preferred
// first, without their parameters; q=0 entries are dropped. An empty
// header accepts anything.
func acceptedTypes(accept string) []string {
	if strings.TrimSpace(accept) == "" {
		return []string{"*/*"}
	}
	type clause struct {
		mt string
		q  float64
	}
	var cs []clause
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		if mt == "" {
			continue
		}
		q := 1.0
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			if strings.TrimSpace(k) == "q" {
				if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = x
				}
			}
		}
		if q > 0 {
			cs = append(cs, clause{mt, q})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].q > cs[j].q })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.mt
	}
	return out
}
