package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// discoveryStub serves just enough legacy discovery for kubectl to map
// resource names to kinds; the real discovery lives elsewhere.
func discoveryStub(h http.Handler) http.Handler {
	lists := map[string]*metav1.APIResourceList{}
	groups := map[string]*metav1.APIGroup{}
	var order []string
	for _, r := range scheme.Resources() {
		gv := r.GVR.GroupVersion()
		key := "/" + gvPath(gv)
		l, ok := lists[key]
		if !ok {
			l = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
			lists[key] = l
		}
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name: r.GVR.Resource, SingularName: r.SingularName, Namespaced: r.Namespaced, Kind: r.Kind,
			ShortNames: r.ShortNames, Categories: r.Categories,
			Verbs: metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
		})
		if gv.Group != "" && groups[gv.Group] == nil {
			gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
			groups[gv.Group] = &metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{gvd}, PreferredVersion: gvd}
			order = append(order, gv.Group)
		}
	}
	write := func(w http.ResponseWriter, v interface{}) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/openapi/"):
			h.ServeHTTP(w, r)
		case p == "/version":
			write(w, map[string]string{"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
		case p == "/api":
			write(w, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
				ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
		case p == "/apis":
			gl := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
			for _, g := range order {
				gl.Groups = append(gl.Groups, *groups[g])
			}
			write(w, gl)
		case lists[p] != nil:
			write(w, lists[p])
		default:
			http.NotFound(w, r)
		}
	})
}

// TestKubectl runs the real kubectl (if installed) against the documents.
func TestKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	srv := httptest.NewServer(discoveryStub(testHandler(t)))
	defer srv.Close()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: " + srv.URL + "}\n" +
		"users:\n- name: u\n  user: {}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "KUBECACHEDIR="+filepath.Join(dir, "cache"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("explain", "pod.spec.containers")
	for _, want := range []string{"KIND:       Pod", "FIELD: containers <[]Container>", "image\t<string>", "Container image name.", "name\t<string> -required-"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain pod.spec.containers lacks %q:\n%s", want, out)
		}
	}
	out = run("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")
	if !strings.Contains(out, "GROUP:      apps") || !strings.Contains(out, "IntOrString") {
		t.Errorf("explain maxSurge:\n%s", out)
	}
	out = run("explain", "svc", "--recursive")
	if !strings.Contains(out, "targetPort") {
		t.Errorf("explain svc --recursive:\n%.2000s", out)
	}
	// The OpenAPI v2 path (protobuf).
	out = run("explain", "pods.spec.volumes", "--output=plaintext-openapiv2")
	if !strings.Contains(out, "configMap") {
		t.Errorf("explain --output=plaintext-openapiv2:\n%.2000s", out)
	}
	out = run("explain", "resourcequotas.spec.hard")
	if !strings.Contains(out, "Quantity") {
		t.Errorf("explain resourcequotas.spec.hard:\n%s", out)
	}
}
