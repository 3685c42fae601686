package rest_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

// summaryKubelet serves a fixed /stats/summary and counts its requests.
type summaryKubelet struct {
	srv     *httptest.Server
	mu      sync.Mutex
	summary string
	paths   []string
	certs   []bool
}

func (k *summaryKubelet) set(summary string) {
	k.mu.Lock()
	k.summary = summary
	k.mu.Unlock()
}

func startSummaryKubelet(t *testing.T, summary string) *summaryKubelet {
	t.Helper()
	k := &summaryKubelet{summary: summary}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.paths = append(k.paths, r.URL.RequestURI())
		k.certs = append(k.certs, r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
		summary := k.summary
		k.mu.Unlock()
		if r.URL.Path != "/stats/summary" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, summary)
	}))
	k.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	return k
}

func (k *summaryKubelet) port() int32 {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(k.srv.URL, "https://"))
	p, _ := strconv.Atoi(port)
	return int32(p)
}

// apiGet GETs path from the apiserver as the admin, with accept (default
// JSON).
func apiGet(t *testing.T, env *harness.Env, path, accept string) (int, http.Header, []byte) {
	t.Helper()
	kc, err := kubeconfig.Load(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := kc.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	host, err := kc.Host()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

const testSummary = `{
 "node": {"nodeName": "n1", "startTime": "2024-01-01T00:00:00Z",
  "cpu": {"time": "2024-05-01T10:00:00Z", "usageNanoCores": 1500000000, "usageCoreNanoSeconds": 99},
  "memory": {"time": "2024-05-01T10:00:00Z", "workingSetBytes": 2147483648, "usageBytes": 3000000000},
  "network": {"time": "2024-05-01T10:00:00Z", "name": "eth0", "rxBytes": 5}},
 "pods": [
  {"podRef": {"name": "web", "namespace": "default", "uid": "UID-WEB"}, "startTime": "2024-05-01T09:00:00Z",
   "containers": [
    {"name": "app", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:00Z", "usageNanoCores": 250000000, "usageCoreNanoSeconds": 1}, "memory": {"time": "2024-05-01T10:00:00Z", "workingSetBytes": 52428800}},
    {"name": "sidecar", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:01Z", "usageNanoCores": 1000000, "usageCoreNanoSeconds": 1}, "memory": {"time": "2024-05-01T10:00:01Z", "workingSetBytes": 1048576}}]},
  {"podRef": {"name": "db", "namespace": "prod", "uid": "UID-DB"}, "startTime": "2024-05-01T09:00:00Z",
   "containers": [
    {"name": "db", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:00Z", "usageNanoCores": 5000000, "usageCoreNanoSeconds": 1}, "memory": {"time": "2024-05-01T10:00:00Z", "workingSetBytes": 104857600}}]},
  {"podRef": {"name": "new", "namespace": "default", "uid": "UID-NEW"}, "startTime": "2024-05-01T09:59:59Z",
   "containers": [
    {"name": "c", "startTime": "2024-05-01T09:59:59Z", "cpu": {"time": "2024-05-01T10:00:00Z", "usageCoreNanoSeconds": 1}, "memory": {"time": "2024-05-01T10:00:00Z", "workingSetBytes": 1024}}]},
  {"podRef": {"name": "old", "namespace": "default", "uid": "UID-OF-A-DELETED-POD"}, "startTime": "2024-05-01T09:00:00Z",
   "containers": [
    {"name": "c", "startTime": "2024-05-01T09:00:00Z", "cpu": {"time": "2024-05-01T10:00:00Z", "usageNanoCores": 7, "usageCoreNanoSeconds": 1}, "memory": {"time": "2024-05-01T10:00:00Z", "workingSetBytes": 1024}}]}
 ]}`

// podMetricsJSON is PodMetrics as upstream's JSON names it.
type podMetricsJSON struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Timestamp  string `json:"timestamp"`
	Window     string `json:"window"`
	Containers []struct {
		Name  string            `json:"name"`
		Usage map[string]string `json:"usage"`
	} `json:"containers"`
}

type nodeMetricsJSON struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Timestamp string            `json:"timestamp"`
	Window    string            `json:"window"`
	Usage     map[string]string `json:"usage"`
}

func TestMetricsAPI(t *testing.T) {
	kubelet := startSummaryKubelet(t, testSummary)
	env := harness.Start(t)
	ctx := context.Background()
	nodes := client.For[*corev1.Node](env.Client)
	mkNode := func(name string, ready corev1.ConditionStatus, labels map[string]string) {
		n, err := nodes.Create(ctx, "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = kubelet.port()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		if _, err := nodes.UpdateStatus(ctx, "", n); err != nil {
			t.Fatal(err)
		}
	}
	mkNode("n1", corev1.ConditionTrue, map[string]string{"zone": "a"})
	// A node that is not Ready is not asked (its kubelet would be the
	// same fake: its metrics would show if it were).
	mkNode("n2", corev1.ConditionUnknown, map[string]string{"zone": "b"})
	pods := client.For[*corev1.Pod](env.Client)
	mkPod := func(ns, name, node string, labels map[string]string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if _, err := pods.Create(ctx, ns, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.For[*corev1.Namespace](env.Client).Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}); err != nil {
		t.Fatal(err)
	}
	mkPod("default", "web", "n1", map[string]string{"app": "web"})
	mkPod("prod", "db", "n1", map[string]string{"app": "db"})
	mkPod("default", "new", "n1", map[string]string{"app": "new"})
	mkPod("default", "old", "n1", nil)
	// The summary's UIDs are the test's: give the pods the kubelet reports
	// theirs by matching on what the apiserver assigned.
	uidOf := map[string]string{}
	for _, key := range [][2]string{{"default", "web"}, {"prod", "db"}, {"default", "new"}} {
		p, err := pods.Get(ctx, key[0], key[1])
		if err != nil {
			t.Fatal(err)
		}
		uidOf[key[1]] = string(p.UID)
	}
	summary := testSummary
	summary = strings.ReplaceAll(summary, "UID-WEB", uidOf["web"])
	summary = strings.ReplaceAll(summary, "UID-DB", uidOf["db"])
	summary = strings.ReplaceAll(summary, "UID-NEW", uidOf["new"])
	kubelet.set(summary)

	t.Run("discovery", func(t *testing.T) {
		code, _, b := apiGet(t, env, "/apis", "")
		if code != 200 || !strings.Contains(string(b), `"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}]`) {
			t.Errorf("/apis: %d %s", code, b)
		}
		code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1", "")
		var rl metav1.APIResourceList
		if code != 200 || json.Unmarshal(b, &rl) != nil {
			t.Fatalf("/apis/metrics.k8s.io/v1beta1: %d %s", code, b)
		}
		want := []metav1.APIResource{
			{Name: "nodes", Kind: "NodeMetrics", Verbs: metav1.Verbs{"get", "list"}},
			{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: metav1.Verbs{"get", "list"}},
		}
		if d := cmp.Diff(want, rl.APIResources); d != "" {
			t.Errorf("resources (-want +got):\n%s", d)
		}
		code, _, b = apiGet(t, env, "/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
		if code != 200 || !strings.Contains(string(b), `"name":"metrics.k8s.io"`) || !strings.Contains(string(b), `"resource":"pods","responseKind":{"group":"metrics.k8s.io","version":"v1beta1","kind":"PodMetrics"},"scope":"Namespaced"`) {
			t.Errorf("aggregated /apis: %d %s", code, b)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		code, h, b := apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/nodes", "application/json, */*")
		var list struct {
			Kind       string            `json:"kind"`
			APIVersion string            `json:"apiVersion"`
			Items      []nodeMetricsJSON `json:"items"`
		}
		if code != 200 || h.Get("Content-Type") != "application/json" || json.Unmarshal(b, &list) != nil {
			t.Fatalf("list: %d %v %s", code, h, b)
		}
		if list.Kind != "NodeMetricsList" || list.APIVersion != "metrics.k8s.io/v1beta1" || len(list.Items) != 1 {
			t.Fatalf("list (n2 is not Ready) = %s", b)
		}
		n := list.Items[0]
		if n.Kind != "NodeMetrics" || n.Metadata.Name != "n1" || n.Metadata.Labels["zone"] != "a" || n.Timestamp != "2024-05-01T10:00:00Z" || n.Window != "10s" {
			t.Errorf("node metrics = %s", b)
		}
		if d := cmp.Diff(map[string]string{"cpu": "1500m", "memory": "2Gi"}, n.Usage); d != "" {
			t.Errorf("usage (-want +got):\n%s", d)
		}
		code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/nodes/n1", "")
		if code != 200 || !strings.Contains(string(b), `"kind":"NodeMetrics"`) || !strings.Contains(string(b), `"cpu":"1500m"`) {
			t.Errorf("get n1: %d %s", code, b)
		}
		if code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=zone%3Db", ""); code != 200 || !strings.Contains(string(b), `"items":[]`) {
			t.Errorf("zone=b: %d %s", code, b)
		}
		for _, path := range []string{"/apis/metrics.k8s.io/v1beta1/nodes/n2", "/apis/metrics.k8s.io/v1beta1/nodes/nosuch"} {
			code, _, b = apiGet(t, env, path, "")
			var st metav1.Status
			_ = json.Unmarshal(b, &st)
			name := strings.TrimPrefix(path, "/apis/metrics.k8s.io/v1beta1/nodes/")
			if code != 404 || st.Message != `nodemetrics.metrics.k8s.io "`+name+`" not found` {
				t.Errorf("%s: %d %s", path, code, b)
			}
		}
	})

	t.Run("pods", func(t *testing.T) {
		code, _, b := apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/pods", "")
		var list struct {
			Kind  string           `json:"kind"`
			Items []podMetricsJSON `json:"items"`
		}
		if code != 200 || json.Unmarshal(b, &list) != nil || list.Kind != "PodMetricsList" {
			t.Fatalf("list: %d %s", code, b)
		}
		// "new" has no CPU rate yet, "old" is another pod's stats.
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Metadata.Namespace+"/"+p.Metadata.Name)
		}
		if d := cmp.Diff([]string{"default/web", "prod/db"}, names); d != "" {
			t.Fatalf("pods (-want +got):\n%s", d)
		}
		web := list.Items[0]
		if web.Kind != "PodMetrics" || web.APIVersion != "metrics.k8s.io/v1beta1" || web.Metadata.Labels["app"] != "web" || web.Timestamp != "2024-05-01T10:00:01Z" || web.Window != "10s" || len(web.Containers) != 2 {
			t.Errorf("web = %+v", web)
		}
		if d := cmp.Diff(map[string]string{"cpu": "250m", "memory": "50Mi"}, web.Containers[0].Usage); d != "" || web.Containers[0].Name != "app" {
			t.Errorf("web/app usage (-want +got):\n%s", d)
		}

		code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/namespaces/prod/pods", "")
		if code != 200 || !strings.Contains(string(b), `"name":"db"`) || strings.Contains(string(b), `"name":"web"`) {
			t.Errorf("namespace prod: %d %s", code, b)
		}
		code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb", "")
		if code != 200 || !strings.Contains(string(b), `"name":"web"`) || strings.Count(string(b), `"kind":"PodMetrics"`) != 1 {
			t.Errorf("app=web: %d %s", code, b)
		}
		code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.namespace%3Dprod", "")
		if code != 200 || !strings.Contains(string(b), `"name":"db"`) || strings.Contains(string(b), `"name":"web"`) {
			t.Errorf("fieldSelector namespace prod: %d %s", code, b)
		}
		code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", "")
		var one podMetricsJSON
		if code != 200 || json.Unmarshal(b, &one) != nil || one.Kind != "PodMetrics" || one.Metadata.Name != "web" {
			t.Errorf("get web: %d %s", code, b)
		}
		for _, name := range []string{"new", "nosuch"} {
			code, _, b = apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/"+name, "")
			var st metav1.Status
			_ = json.Unmarshal(b, &st)
			if code != 404 || st.Message != `podmetrics.metrics.k8s.io "default/`+name+`" not found` {
				t.Errorf("get %s: %d %s", name, code, b)
			}
		}
		code, h, b := apiGet(t, env, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web", "application/yaml")
		if code != 200 || h.Get("Content-Type") != "application/yaml" || !strings.Contains(string(b), "kind: PodMetrics") {
			t.Errorf("yaml: %d %v %s", code, h, b)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			path, accept string
			code         int
		}{
			{"/apis/metrics.k8s.io/v1beta1/namespaces/default/nodes", "", 404},
			{"/apis/metrics.k8s.io/v1beta1/services", "", 404},
			{"/apis/metrics.k8s.io/v1beta1/pods?watch=true", "", 405},
			{"/apis/metrics.k8s.io/v1beta1/pods?labelSelector=%3D%3D", "", 400},
			{"/apis/metrics.k8s.io/v1beta1/pods", "application/vnd.kubernetes.protobuf", 406},
		} {
			if code, _, b := apiGet(t, env, tc.path, tc.accept); code != tc.code {
				t.Errorf("%s (Accept %q): %d %s, want %d", tc.path, tc.accept, code, b, tc.code)
			}
		}
	})

	kubelet.mu.Lock()
	defer kubelet.mu.Unlock()
	for i, p := range kubelet.paths {
		if p != "/stats/summary?only_cpu_and_memory=true" || !kubelet.certs[i] {
			t.Errorf("kubelet asked %s (client certificate %v)", p, kubelet.certs[i])
		}
	}
}
