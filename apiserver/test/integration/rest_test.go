package integration

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

func restClient(t *testing.T, env *harness.Env) *http.Client {
	t.Helper()
	cfg, err := kubeconfig.Load(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}, Timeout: 20 * time.Second}
}

// Lists and objects in protobuf decode as the typed objects, and a body in
// protobuf creates.
func TestRESTProtobuf(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	hc := restClient(t, env)
	base := "https://" + env.Server.Address
	for _, name := range []string{"a", "b"} {
		if _, err := client.For[*corev1.ConfigMap](env.Client).Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/namespaces/default/configmaps", nil)
	req.Header.Set("Accept", "application/vnd.kubernetes.protobuf")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.kubernetes.protobuf" {
		t.Fatalf("protobuf list: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	obj, _, err := scheme.Protobuf.Decode(body, nil, nil)
	if err != nil {
		t.Fatalf("decode protobuf list: %v", err)
	}
	list, ok := obj.(*corev1.ConfigMapList)
	if !ok || len(list.Items) != 2 || list.Items[1].Data["k"] != "b" || list.Items[0].ResourceVersion == "" || list.ResourceVersion == "" {
		t.Fatalf("protobuf list = %T %+v", obj, obj)
	}

	var in bytes.Buffer
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "pb"}}
	if err := scheme.Protobuf.Encode(cm, &in); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/namespaces/default/configmaps", &in)
	req.Header.Set("Content-Type", "application/vnd.kubernetes.protobuf")
	req.Header.Set("Accept", "application/json")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !bytes.Contains(b, []byte(`"name":"pb"`)) {
		t.Fatalf("protobuf create: %d %s", resp.StatusCode, b)
	}
}
