package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/kube-openapi/pkg/spec3"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/util/proto/validation"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

var (
	handlerOnce sync.Once
	handler     *Handler
	handlerErr  error
)

func testHandler(t *testing.T) *Handler {
	t.Helper()
	handlerOnce.Do(func() { handler, handlerErr = New(scheme.Resources(), "v1.32.0") })
	if handlerErr != nil {
		t.Fatal(handlerErr)
	}
	return handler
}

func get(t *testing.T, h http.Handler, path, accept string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func swaggerV2(t *testing.T) *spec.Swagger {
	t.Helper()
	w := get(t, testHandler(t), "/openapi/v2", "application/json")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi/v2: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var sw spec.Swagger
	if err := json.Unmarshal(w.Body.Bytes(), &sw); err != nil {
		t.Fatal(err)
	}
	return &sw
}

func v3Doc(t *testing.T, key string) *spec3.OpenAPI {
	t.Helper()
	w := get(t, testHandler(t), "/openapi/v3/"+key, "application/json")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /openapi/v3/%s: %d", key, w.Code)
	}
	var doc spec3.OpenAPI
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

func refName(s spec.Schema) string {
	if len(s.AllOf) == 1 {
		s = s.AllOf[0]
	}
	r := s.Ref.String()
	if i := strings.LastIndex(r, "/"); i >= 0 {
		return r[i+1:]
	}
	return r
}

func gvkOf(t *testing.T, ext spec.Extensions) []map[string]string {
	t.Helper()
	var out []map[string]string
	if err := ext.GetObject(extGVK, &out); err != nil {
		t.Fatalf("%s: %v", extGVK, err)
	}
	return out
}

func TestV2Definitions(t *testing.T) {
	defs := swaggerV2(t).Definitions
	for _, name := range []string{
		"io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.PodList", "io.k8s.api.core.v1.Container",
		"io.k8s.api.apps.v1.Deployment", "io.k8s.api.apps.v1.DeploymentList", "io.k8s.api.batch.v1.CronJob",
		"io.k8s.api.rbac.v1.ClusterRoleBinding", "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
		"io.k8s.api.autoscaling.v1.Scale", "io.k8s.api.policy.v1.Eviction", "io.k8s.api.core.v1.Binding",
		"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
		"io.k8s.apimachinery.pkg.apis.meta.v1.Status", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
		"io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
		"io.k8s.apimachinery.pkg.apis.meta.v1.Duration", "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
		"io.k8s.apimachinery.pkg.api.resource.Quantity", "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
		"io.k8s.apimachinery.pkg.runtime.RawExtension",
	} {
		if _, ok := defs[name]; !ok {
			t.Errorf("definition %s missing", name)
		}
	}

	pod := defs["io.k8s.api.core.v1.Pod"]
	if got := gvkOf(t, pod.Extensions); len(got) != 1 || got[0]["group"] != "" || got[0]["version"] != "v1" || got[0]["kind"] != "Pod" {
		t.Errorf("Pod gvk = %v", got)
	}
	for _, p := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if _, ok := pod.Properties[p]; !ok {
			t.Errorf("Pod.%s missing", p)
		}
	}
	if pod.Properties["apiVersion"].Type[0] != "string" || pod.Properties["kind"].Description == "" {
		t.Errorf("Pod TypeMeta not inlined: %+v", pod.Properties["apiVersion"])
	}
	if got := refName(pod.Properties["metadata"]); got != "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" {
		t.Errorf("Pod.metadata ref = %q", got)
	}
	if got := refName(pod.Properties["spec"]); got != "io.k8s.api.core.v1.PodSpec" {
		t.Errorf("Pod.spec ref = %q", got)
	}
	if pod.Properties["spec"].Description != (corev1.Pod{}).SwaggerDoc()["spec"] {
		t.Errorf("Pod.spec description = %q", pod.Properties["spec"].Description)
	}
	if pod.Description != (corev1.Pod{}).SwaggerDoc()[""] {
		t.Errorf("Pod description = %q", pod.Description)
	}

	containers := defs["io.k8s.api.core.v1.PodSpec"].Properties["containers"]
	if containers.Type[0] != "array" || refName(*containers.Items.Schema) != "io.k8s.api.core.v1.Container" {
		t.Errorf("PodSpec.containers = %+v", containers)
	}
	if containers.Extensions[extPatchMergeKey] != "name" || containers.Extensions[extPatchStrategy] != "merge" {
		t.Errorf("PodSpec.containers extensions = %v", containers.Extensions)
	}
	if v := defs["io.k8s.api.core.v1.PodSpec"].Properties["volumes"].Extensions[extPatchStrategy]; v != "merge,retainKeys" {
		t.Errorf("PodSpec.volumes strategy = %v", v)
	}

	c := defs["io.k8s.api.core.v1.Container"]
	image := c.Properties["image"]
	if image.Type[0] != "string" || image.Description != (corev1.Container{}).SwaggerDoc()["image"] || image.Description == "" {
		t.Errorf("Container.image = %+v", image)
	}
	if len(c.Required) != 1 || c.Required[0] != "name" {
		t.Errorf("Container.required = %v", c.Required)
	}
	if p := c.Properties["ports"]; p.Extensions[extPatchMergeKey] != "containerPort" {
		t.Errorf("Container.ports = %v", p.Extensions)
	}
	if p := c.Properties["stdin"]; p.Type[0] != "boolean" {
		t.Errorf("Container.stdin = %+v", p)
	}
	// Embedded structs without a JSON name are inlined (Probe.ProbeHandler,
	// Volume.VolumeSource).
	if _, ok := defs["io.k8s.api.core.v1.Probe"].Properties["httpGet"]; !ok {
		t.Error("Probe.httpGet (inlined ProbeHandler) missing")
	}
	if p, ok := defs["io.k8s.api.core.v1.Volume"].Properties["configMap"]; !ok || p.Description == "" {
		t.Errorf("Volume.configMap (inlined VolumeSource) = %+v", p)
	}

	port := defs["io.k8s.api.core.v1.ContainerPort"].Properties["containerPort"]
	if port.Type[0] != "integer" || port.Format != "int32" {
		t.Errorf("ContainerPort.containerPort = %+v", port)
	}
	labels := defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].Properties["labels"]
	if labels.Type[0] != "object" || labels.AdditionalProperties == nil || labels.AdditionalProperties.Schema.Type[0] != "string" {
		t.Errorf("ObjectMeta.labels = %+v", labels)
	}
	if ts := defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].Properties["creationTimestamp"]; refName(ts) != "io.k8s.apimachinery.pkg.apis.meta.v1.Time" {
		t.Errorf("ObjectMeta.creationTimestamp = %+v", ts)
	}
	data := defs["io.k8s.api.core.v1.Secret"].Properties["data"]
	if v := data.AdditionalProperties.Schema; v.Type[0] != "string" || v.Format != "byte" {
		t.Errorf("Secret.data values = %+v", v)
	}
	limits := defs["io.k8s.api.core.v1.ResourceRequirements"].Properties["limits"]
	if refName(*limits.AdditionalProperties.Schema) != "io.k8s.apimachinery.pkg.api.resource.Quantity" {
		t.Errorf("ResourceRequirements.limits = %+v", limits)
	}
	if refName(defs["io.k8s.api.core.v1.ServicePort"].Properties["targetPort"]) != "io.k8s.apimachinery.pkg.util.intstr.IntOrString" {
		t.Error("ServicePort.targetPort is not an IntOrString")
	}

	dep := defs["io.k8s.api.apps.v1.Deployment"]
	if got := gvkOf(t, dep.Extensions); len(got) != 1 || got[0]["group"] != "apps" || got[0]["version"] != "v1" || got[0]["kind"] != "Deployment" {
		t.Errorf("Deployment gvk = %v", got)
	}
	if got := gvkOf(t, defs["io.k8s.api.apps.v1.DeploymentList"].Extensions); got[0]["kind"] != "DeploymentList" {
		t.Errorf("DeploymentList gvk = %v", got)
	}

	shapes := map[string][2]string{
		"io.k8s.apimachinery.pkg.api.resource.Quantity":   {"string", ""},
		"io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"string", "int-or-string"},
		"io.k8s.apimachinery.pkg.apis.meta.v1.Time":       {"string", "date-time"},
		"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":  {"string", "date-time"},
		"io.k8s.apimachinery.pkg.apis.meta.v1.Duration":   {"string", ""},
		"io.k8s.apimachinery.pkg.runtime.RawExtension":    {"object", ""},
		"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1":   {"object", ""},
	}
	for name, want := range shapes {
		d := defs[name]
		if len(d.Type) != 1 || d.Type[0] != want[0] || d.Format != want[1] || d.Description == "" || len(d.Properties) != 0 {
			t.Errorf("%s = type %v format %q props %d; want %v", name, d.Type, d.Format, len(d.Properties), want)
		}
	}
}

// refs collects every "$ref" in a JSON document.
func refs(v interface{}, out map[string]bool) {
	switch x := v.(type) {
	case map[string]interface{}:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				out[s] = true
			} else {
				refs(e, out)
			}
		}
	case []interface{}:
		for _, e := range x {
			refs(e, out)
		}
	}
}

func TestRefsResolve(t *testing.T) {
	h := testHandler(t)
	check := func(name string, body []byte, prefix, section string) {
		var doc map[string]interface{}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		defs := doc[section].(map[string]interface{})
		if section == "components" {
			defs = defs["schemas"].(map[string]interface{})
		}
		all := map[string]bool{}
		refs(doc, all)
		for r := range all {
			n, ok := strings.CutPrefix(r, prefix)
			if !ok {
				t.Errorf("%s: bad ref %q", name, r)
			} else if _, ok := defs[n]; !ok {
				t.Errorf("%s: dangling ref %q", name, r)
			}
		}
	}
	check("v2", h.v2.json, "#/definitions/", "definitions")
	for key, doc := range h.v3 {
		check(key, doc.json, "#/components/schemas/", "components")
	}
}

func TestV2Protobuf(t *testing.T) {
	h := testHandler(t)
	// kubectl's Accept header for the v2 document.
	w := get(t, h, "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != mimeProtoV2 {
		t.Fatalf("GET /openapi/v2 protobuf: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var doc openapi_v2.Document
	if err := proto.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" || doc.Info.Title != "Kubernetes" || doc.Info.Version != "v1.32.0" {
		t.Errorf("swagger %q info %+v", doc.Swagger, doc.Info)
	}
	// The models kubectl builds from it: what apply (patch metadata),
	// client-side validation and explain use.
	models, err := openapiproto.NewOpenAPIData(&doc)
	if err != nil {
		t.Fatal(err)
	}
	pod := models.LookupModel("io.k8s.api.core.v1.Pod")
	if pod == nil {
		t.Fatal("Pod model missing")
	}
	if gvk := pod.GetExtensions()[extGVK]; gvk == nil {
		t.Errorf("Pod model has no %s", extGVK)
	}
	spec, _, err := strategicpatch.NewPatchMetaFromOpenAPI(pod).LookupPatchMetadataForStruct("spec")
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := spec.LookupPatchMetadataForSlice("containers")
	if err != nil {
		t.Fatal(err)
	}
	if meta.GetPatchMergeKey() != "name" || len(meta.GetPatchStrategies()) != 1 || meta.GetPatchStrategies()[0] != "merge" {
		t.Errorf("containers patch meta = %q %v", meta.GetPatchMergeKey(), meta.GetPatchStrategies())
	}

	// Client-side validation (kubectl's fallback) accepts ordinary manifests
	// and catches wrong types and unknown fields.
	validate := func(name, manifest string) []error {
		var obj map[string]interface{}
		if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
			t.Fatal(err)
		}
		return validation.ValidateModel(obj, models.LookupModel(name), name)
	}
	deployment := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80, protocol: TCP}]
        resources: {limits: {cpu: 500m, memory: 128Mi}, requests: {cpu: 0.1}}
        env: [{name: A, value: "1"}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 5}
`
	if errs := validate("io.k8s.api.apps.v1.Deployment", deployment); len(errs) != 0 {
		t.Errorf("valid Deployment rejected: %v", errs)
	}
	service := `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}, {name: b, port: 81, targetPort: 8081}]
`
	if errs := validate("io.k8s.api.core.v1.Service", service); len(errs) != 0 {
		t.Errorf("valid Service rejected: %v", errs)
	}
	bad := `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: x
    ports: 80
    imagePullPolicy: Always
    bogus: true
`
	if errs := validate("io.k8s.api.core.v1.Pod", bad); len(errs) != 2 {
		t.Errorf("invalid Pod: errors %v, want 2 (ports type, unknown field)", errs)
	}
}

func TestV3Index(t *testing.T) {
	h := testHandler(t)
	w := get(t, h, "/openapi/v3", "application/json")
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-cache, private" {
		t.Fatalf("GET /openapi/v3: %d %q", w.Code, w.Header().Get("Cache-Control"))
	}
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &index); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v2",
		"apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1", "apis/policy/v1",
		"apis/rbac.authorization.k8s.io/v1", "apis/scheduling.k8s.io/v1"} {
		if _, ok := index.Paths[want]; !ok {
			t.Errorf("index lacks %s", want)
		}
	}
	if len(index.Paths) != len(h.GroupVersions()) {
		t.Errorf("index has %d entries, handler %d", len(index.Paths), len(h.GroupVersions()))
	}
	for key, e := range index.Paths {
		u, err := url.Parse(e.ServerRelativeURL)
		if err != nil {
			t.Fatal(err)
		}
		if u.Path != "/openapi/v3/"+key {
			t.Errorf("%s: url %q", key, e.ServerRelativeURL)
		}
		w := get(t, h, e.ServerRelativeURL, "application/json")
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", e.ServerRelativeURL, w.Code)
		}
		sum := fmt.Sprintf("%X", sha512.Sum512(w.Body.Bytes()))
		if u.Query().Get("hash") != sum {
			t.Errorf("%s: hash %s, body hashes to %s", key, u.Query().Get("hash"), sum)
		}
		if w.Header().Get("Etag") != `"`+sum+`"` {
			t.Errorf("%s: Etag %q", key, w.Header().Get("Etag"))
		}
		if w.Header().Get("Cache-Control") != "public, immutable" || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", key, w.Header())
		}
		var doc spec3.OpenAPI
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if doc.Version != "3.0.0" || doc.Info.Title != "Kubernetes" || doc.Paths == nil || len(doc.Paths.Paths) == 0 {
			t.Errorf("%s: openapi %q info %+v", key, doc.Version, doc.Info)
		}
		for _, meta := range []string{nameStatus, nameDeleteOptions, namePatch, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"} {
			if _, ok := doc.Components.Schemas[meta]; !ok {
				t.Errorf("%s: schema %s missing", key, meta)
			}
		}
	}
}

func TestV3Documents(t *testing.T) {
	core := v3Doc(t, "api/v1")
	schemas := core.Components.Schemas
	pod := schemas["io.k8s.api.core.v1.Pod"]
	if pod == nil {
		t.Fatal("Pod schema missing from api/v1")
	}
	if got := gvkOf(t, pod.Extensions); len(got) != 1 || got[0]["kind"] != "Pod" || got[0]["version"] != "v1" || got[0]["group"] != "" {
		t.Errorf("Pod gvk = %v", got)
	}
	if s := pod.Properties["spec"]; len(s.AllOf) != 1 || refName(s) != "io.k8s.api.core.v1.PodSpec" || s.Description == "" {
		t.Errorf("Pod.spec = %+v", s)
	}
	if _, ok := schemas["io.k8s.api.apps.v1.Deployment"]; ok {
		t.Error("api/v1 carries apps/v1 Deployment")
	}
	is := schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	if len(is.OneOf) != 2 || is.OneOf[0].Type[0] != "integer" || is.OneOf[1].Type[0] != "string" || is.Format != "int-or-string" {
		t.Errorf("v3 IntOrString = %+v", is)
	}
	q := schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
	if len(q.OneOf) != 2 || q.OneOf[0].Type[0] != "string" || q.OneOf[1].Type[0] != "number" {
		t.Errorf("v3 Quantity = %+v", q)
	}

	// Strategic merge patch metadata as kubectl apply reads it from v3.
	lookup := strategicpatch.PatchMetaFromOpenAPIV3{SchemaList: schemas, Schema: pod}
	spec, _, err := lookup.LookupPatchMetadataForStruct("spec")
	if err != nil {
		t.Fatal(err)
	}
	cs, meta, err := spec.LookupPatchMetadataForSlice("containers")
	if err != nil {
		t.Fatal(err)
	}
	if meta.GetPatchMergeKey() != "name" || meta.GetPatchStrategies()[0] != "merge" {
		t.Errorf("containers patch meta = %q %v", meta.GetPatchMergeKey(), meta.GetPatchStrategies())
	}
	_, meta, err = cs.LookupPatchMetadataForSlice("env")
	if err != nil || meta.GetPatchMergeKey() != "name" {
		t.Errorf("containers.env patch meta = %q %v", meta.GetPatchMergeKey(), err)
	}

	// A real three-way strategic merge with the v3 metadata: kubectl apply.
	original := `{"spec":{"containers":[{"name":"a","image":"x:1"},{"name":"b","image":"y:1"}]}}`
	modified := `{"spec":{"containers":[{"name":"a","image":"x:2"},{"name":"b","image":"y:1"}]}}`
	current := `{"spec":{"containers":[{"name":"a","image":"x:1","imagePullPolicy":"IfNotPresent"},{"name":"b","image":"y:1"}]}}`
	patch, err := strategicpatch.CreateThreeWayMergePatch([]byte(original), []byte(modified), []byte(current), lookup, false)
	if err != nil {
		t.Fatal(err)
	}
	var pm map[string]interface{}
	if err := json.Unmarshal(patch, &pm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(patch), `"$setElementOrder/containers"`) || !strings.Contains(string(patch), `"image":"x:2"`) {
		t.Errorf("patch %s", patch)
	}

	apps := v3Doc(t, "apis/apps/v1")
	dep := apps.Components.Schemas["io.k8s.api.apps.v1.Deployment"]
	if dep == nil {
		t.Fatal("Deployment schema missing from apis/apps/v1")
	}
	if got := gvkOf(t, dep.Extensions); len(got) != 1 || got[0]["group"] != "apps" || got[0]["version"] != "v1" || got[0]["kind"] != "Deployment" {
		t.Errorf("Deployment gvk = %v", got)
	}
	if _, ok := apps.Components.Schemas["io.k8s.api.core.v1.Container"]; !ok {
		t.Error("apis/apps/v1 lacks core/v1 Container (reached from the pod template)")
	}
	if _, ok := apps.Components.Schemas["io.k8s.api.autoscaling.v1.Scale"]; !ok {
		t.Error("apis/apps/v1 lacks Scale (the scale subresource)")
	}
}

// supportsParam mirrors kubectl's query parameter verifier: the PATCH
// operation for gvk must list the query parameter.
func supportsParam(doc *spec3.OpenAPI, group, version, kind, param string) error {
	for _, p := range doc.Paths.Paths {
		op := p.Patch
		if op == nil {
			continue
		}
		var g map[string]string
		if err := op.Extensions.GetObject(extGVK, &g); err != nil || g["group"] != group || g["version"] != version || g["kind"] != kind {
			continue
		}
		for _, prm := range op.Parameters {
			if prm.Name == param && prm.In == "query" {
				return nil
			}
		}
		return fmt.Errorf("PATCH for %s lacks %s", kind, param)
	}
	return fmt.Errorf("no PATCH for %s", kind)
}

func TestV3Paths(t *testing.T) {
	core := v3Doc(t, "api/v1")
	for _, kind := range []string{"Pod", "Namespace", "Node", "Service", "ConfigMap", "Secret"} {
		for _, p := range []string{"fieldValidation", "dryRun", "fieldManager"} {
			if err := supportsParam(core, "", "v1", kind, p); err != nil {
				t.Error(err)
			}
		}
	}
	apps := v3Doc(t, "apis/apps/v1")
	if err := supportsParam(apps, "apps", "v1", "Deployment", "fieldValidation"); err != nil {
		t.Error(err)
	}
	paths := core.Paths.Paths
	for _, p := range []string{
		"/api/v1/namespaces/{namespace}/pods", "/api/v1/namespaces/{namespace}/pods/{name}",
		"/api/v1/namespaces/{namespace}/pods/{name}/status", "/api/v1/pods",
		"/api/v1/nodes", "/api/v1/nodes/{name}", "/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale",
	} {
		if paths[p] == nil {
			t.Errorf("path %s missing", p)
		}
	}
	if paths["/api/v1/namespaces/{namespace}/nodes"] != nil {
		t.Error("nodes served as namespaced")
	}
	item := paths["/api/v1/namespaces/{namespace}/pods/{name}"]
	if item.Get == nil || item.Put == nil || item.Patch == nil || item.Delete == nil {
		t.Fatalf("pod item operations: %+v", item.PathProps)
	}
	if a := item.Patch.Extensions[extAction]; a != "patch" {
		t.Errorf("patch action = %v", a)
	}
	if rb := item.Patch.RequestBody; rb == nil || rb.Content["application/strategic-merge-patch+json"] == nil || rb.Content["application/apply-patch+yaml"] == nil {
		t.Errorf("patch body = %+v", rb)
	}
	if r := item.Get.Responses.StatusCodeResponses[200]; r == nil || r.Content["application/json"].Schema.Ref.String() != "#/components/schemas/io.k8s.api.core.v1.Pod" {
		t.Errorf("get response = %+v", r)
	}
	coll := paths["/api/v1/namespaces/{namespace}/pods"]
	if coll.Get.OperationId != "listCoreV1NamespacedPod" || coll.Get.Extensions[extAction] != "list" {
		t.Errorf("list op = %q %v", coll.Get.OperationId, coll.Get.Extensions[extAction])
	}
	rbac := v3Doc(t, "apis/rbac.authorization.k8s.io/v1")
	if p := rbac.Paths.Paths["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]; p == nil || p.Get.OperationId != "readRbacAuthorizationV1ClusterRole" {
		t.Errorf("clusterroles item path = %+v", p)
	}

	sw := swaggerV2(t)
	if p, ok := sw.Paths.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]; !ok || p.Patch == nil {
		t.Error("v2 deployment item path missing")
	} else {
		found := false
		for _, prm := range p.Patch.Parameters {
			found = found || (prm.Name == "fieldValidation" && prm.In == "query")
		}
		if !found || p.Patch.Extensions[extGVK] == nil {
			t.Errorf("v2 deployment PATCH = %+v", p.Patch)
		}
	}
}

func TestNegotiationAndCaching(t *testing.T) {
	h := testHandler(t)
	core := h.v3["api/v1"]
	cases := []struct {
		path, accept string
		code         int
		ctype, cache string
	}{
		{"/openapi/v2", "", 200, "application/json", "no-cache, private"},
		{"/openapi/v2", "application/json, */*", 200, "application/json", "no-cache, private"},
		{"/openapi/v2", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 200, mimeProtoV2, "no-cache, private"},
		{"/openapi/v2", "application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 200, mimeProtoV2, "no-cache, private"},
		{"/openapi/v2", "text/html", 406, "", ""},
		{"/openapi/v3/api/v1", "", 200, "application/json", "no-cache, private"},
		{"/openapi/v3/api/v1?hash=" + core.etag, "application/json", 200, "application/json", "public, immutable"},
		{"/openapi/v3/api/v1", "application/com.github.proto-openapi.spec.v3@v1.0+protobuf", 406, "", ""},
		{"/openapi/v3/api/v1?hash=0BAD", "application/json", 301, "", ""},
		{"/openapi/v3/apis/nope/v1", "application/json", 404, "", ""},
		{"/openapi/v4", "application/json", 404, "", ""},
		{"/openapi/v3/", "application/json", 404, "", ""},
	}
	for _, c := range cases {
		w := get(t, h, c.path, c.accept)
		if w.Code != c.code {
			t.Errorf("GET %s (%s): %d, want %d", c.path, c.accept, w.Code, c.code)
			continue
		}
		if c.ctype != "" && w.Header().Get("Content-Type") != c.ctype {
			t.Errorf("GET %s (%s): Content-Type %q", c.path, c.accept, w.Header().Get("Content-Type"))
		}
		if c.cache != "" && w.Header().Get("Cache-Control") != c.cache {
			t.Errorf("GET %s (%s): Cache-Control %q", c.path, c.accept, w.Header().Get("Cache-Control"))
		}
		if c.code == 301 && w.Header().Get("Location") != serverRelativeURL("api/v1", core.etag) {
			t.Errorf("redirect to %q", w.Header().Get("Location"))
		}
	}
	// Conditional requests.
	w := get(t, h, "/openapi/v3/api/v1", "application/json", "If-None-Match", `"`+core.etag+`"`)
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	w = get(t, h, "/openapi/v2", "application/json", "If-None-Match", w.Header().Get("Etag"))
	if w.Code != http.StatusOK {
		t.Errorf("v2 with a v3 etag: %d", w.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/openapi/v2", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestDeterministic(t *testing.T) {
	a := testHandler(t)
	b, err := New(scheme.Resources(), "v1.32.0")
	if err != nil {
		t.Fatal(err)
	}
	ap, aerr := a.v2Proto()
	bp, berr := b.v2Proto()
	if aerr != nil || berr != nil {
		t.Fatalf("v2 protobuf: %v %v", aerr, berr)
	}
	if !bytes.Equal(a.v2.json, b.v2.json) || !bytes.Equal(ap, bp) || !bytes.Equal(a.v3Index.json, b.v3Index.json) {
		t.Error("documents differ between builds")
	}
}

func TestSubsetOfResources(t *testing.T) {
	var rs []scheme.Resource
	for _, r := range scheme.Resources() {
		if r.GVR.Group == "apps" || r.GVR.Resource == "pods" {
			rs = append(rs, r)
		}
	}
	h, err := New(rs, "v1.32.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.GroupVersions(), " "); got != "api/v1 apis/apps/v1" {
		t.Errorf("group versions = %s", got)
	}
	var sw spec.Swagger
	if err := json.Unmarshal(h.v2.json, &sw); err != nil {
		t.Fatal(err)
	}
	if _, ok := sw.Definitions["io.k8s.api.core.v1.Service"]; ok {
		t.Error("Service defined though not served")
	}
}

func TestGeneratedNotHandWritten(t *testing.T) {
	// Every field of a served type appears in its definition, with the
	// JSON name and the SwaggerDoc description.
	defs := swaggerV2(t).Definitions
	for _, obj := range []interface{ SwaggerDoc() map[string]string }{
		corev1.Container{}, corev1.PodSpec{}, appsv1.DeploymentSpec{}, metav1.ObjectMeta{},
	} {
		var name string
		switch obj.(type) {
		case corev1.Container:
			name = "io.k8s.api.core.v1.Container"
		case corev1.PodSpec:
			name = "io.k8s.api.core.v1.PodSpec"
		case appsv1.DeploymentSpec:
			name = "io.k8s.api.apps.v1.DeploymentSpec"
		case metav1.ObjectMeta:
			name = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
		}
		d := defs[name]
		for field, doc := range obj.SwaggerDoc() {
			if field == "" {
				continue
			}
			p, ok := d.Properties[field]
			if !ok {
				t.Errorf("%s.%s missing", name, field)
			} else if p.Description != doc {
				t.Errorf("%s.%s description differs", name, field)
			}
		}
	}
}

func BenchmarkNew(b *testing.B) {
	rs := scheme.Resources()
	for i := 0; i < b.N; i++ {
		if _, err := New(rs, "v1.32.0"); err != nil {
			b.Fatal(err)
		}
	}
}
