package integration

import (
	"bytes"
	"encoding/binary"
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

func do(t *testing.T, hc *http.Client, method, url, contentType, accept string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// fieldValidation, dryRun, deletecollection and the body limit behave as
// upstream's.
func TestRESTRequestOptions(t *testing.T) {
	env := harness.Start(t)
	hc := restClient(t, env)
	cms := "https://" + env.Server.Address + "/api/v1/namespaces/default/configmaps"
	unknown := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"bogus":1}`)

	code, _, body := do(t, hc, "POST", cms+"?fieldValidation=Strict", "application/json", "", unknown)
	if code != 400 || !bytes.Contains(body, []byte(`strict decoding error: unknown field \"bogus\"`)) {
		t.Fatalf("Strict: %d %s", code, body)
	}
	code, hdr, _ := do(t, hc, "POST", cms+"?fieldValidation=Warn", "application/json", "", unknown)
	if code != 201 || !bytes.Contains([]byte(hdr.Get("Warning")), []byte(`unknown field \"bogus\"`)) {
		t.Fatalf("Warn: %d warning %q", code, hdr.Get("Warning"))
	}
	if code, _, body := do(t, hc, "POST", cms+"?fieldValidation=Sometimes", "application/json", "", unknown); code != 400 {
		t.Fatalf("bad fieldValidation: %d %s", code, body)
	}

	code, _, _ = do(t, hc, "POST", cms+"?dryRun=All", "application/json", "", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dry"}}`))
	if code != 201 {
		t.Fatalf("dry-run create: %d", code)
	}
	if code, _, _ := do(t, hc, "GET", cms+"/dry", "", "", nil); code != 404 {
		t.Fatalf("dry-run create was stored: GET %d", code)
	}

	for _, n := range []string{"l1", "l2", "keep"} {
		lbl := "gone"
		if n == "keep" {
			lbl = "stay"
		}
		if code, _, b := do(t, hc, "POST", cms, "application/json", "", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"`+n+`","labels":{"x":"`+lbl+`"}}}`)); code != 201 {
			t.Fatalf("create %s: %d %s", n, code, b)
		}
	}
	if code, _, b := do(t, hc, "DELETE", cms+"?labelSelector=x%3Dgone", "", "", nil); code != 200 {
		t.Fatalf("deletecollection: %d %s", code, b)
	}
	code, _, body = do(t, hc, "GET", cms, "", "application/json", nil)
	if code != 200 || bytes.Contains(body, []byte(`"l1"`)) || bytes.Contains(body, []byte(`"l2"`)) || !bytes.Contains(body, []byte(`"keep"`)) {
		t.Fatalf("after deletecollection: %d %s", code, body)
	}

	big := append([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"`), bytes.Repeat([]byte("x"), 3<<20)...)
	big = append(big, []byte(`"}}`)...)
	if code, _, b := do(t, hc, "POST", cms, "application/json", "", big); code != 413 {
		t.Fatalf("oversized body: %d %s", code, b)
	}
	if code, _, b := do(t, hc, "POST", cms, "application/json", "", []byte(`{not json`)); code != 400 {
		t.Fatalf("malformed body: %d %s", code, b)
	}
}

// A protobuf watch streams length-prefixed WatchEvent frames whose objects
// decode as typed objects; a JSON watch streams one event per line.
func TestRESTWatchStreams(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	hc := restClient(t, env)
	base := "https://" + env.Server.Address + "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0"
	if _, err := client.For[*corev1.ConfigMap](env.Client).Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ accept string }{{"application/vnd.kubernetes.protobuf"}, {"application/json"}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
		req.Header.Set("Accept", tc.accept)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if tc.accept == "application/json" {
			line := make([]byte, 0, 4096)
			buf := make([]byte, 1)
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					t.Fatalf("json watch: %v", err)
				}
				if buf[0] == '\n' {
					break
				}
				line = append(line, buf[0])
			}
			resp.Body.Close()
			if !bytes.HasPrefix(line, []byte(`{"type":"ADDED","object":{"kind":"ConfigMap"`)) {
				t.Fatalf("json watch line: %s", line)
			}
			continue
		}
		var n [4]byte
		if _, err := io.ReadFull(resp.Body, n[:]); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(resp.Body, frame); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var ev metav1.WatchEvent
		if err := ev.Unmarshal(frame); err != nil {
			t.Fatalf("watch frame: %v", err)
		}
		obj, _, err := scheme.Protobuf.Decode(ev.Object.Raw, nil, nil)
		if err != nil {
			t.Fatalf("watch object: %v", err)
		}
		if cm, ok := obj.(*corev1.ConfigMap); ev.Type != "ADDED" || !ok || cm.Name != "w" {
			t.Fatalf("protobuf watch event: %s %T", ev.Type, obj)
		}
	}
}
