package staticpods

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: c
    image: coxswain/busybox:1.0
    command: ["sleep", "3600"]
`

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    string
		want    []string // namespace/name
		wantErr string
	}{
		{name: "yaml pod", data: podYAML, want: []string{"/web"}},
		{name: "json pod", data: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, want: []string{"kube-system/j"}},
		{name: "multi-document yaml", data: podYAML + "---\n# a comment only\n---\n" + strings.Replace(podYAML, "name: web", "name: api", 1), want: []string{"/web", "/api"}},
		{name: "pod list", data: `apiVersion: v1
kind: PodList
items:
- metadata: {name: a}
  spec: {containers: [{name: c, image: i}]}
- metadata: {name: b}
  spec: {containers: [{name: c, image: i}]}
`, want: []string{"/a", "/b"}},
		{name: "list of pods", data: `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec: {containers: [{name: c, image: i}]}
`, want: []string{"/a"}},
		{name: "empty", data: "\n# nothing\n", want: nil},
		{name: "not a pod", data: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", wantErr: "kind Service is not a Pod"},
		{name: "no kind", data: "metadata: {name: s}\n", wantErr: "document 1"},
		{name: "bad yaml", data: "apiVersion: v1\nkind: Pod\nmetadata: [\n", wantErr: "document 1"},
		{name: "second document bad", data: podYAML + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", wantErr: "document 2: kind ConfigMap is not a Pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods, err := Decode([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decode error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got []string
			for _, p := range pods {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pods (-want +got):\n%s", diff)
			}
		})
	}
}

func decodeOne(t *testing.T, data string) *corev1.Pod {
	t.Helper()
	pods, err := Decode([]byte(data))
	if err != nil || len(pods) != 1 {
		t.Fatalf("Decode = %d pods, %v; want 1", len(pods), err)
	}
	return pods[0]
}

func TestComplete(t *testing.T) {
	seen := time.Date(2026, 12, 7, 10, 0, 0, 123, time.UTC)
	p := decodeOne(t, podYAML)
	if err := Complete(p, "/etc/kubernetes/manifests/web.yaml", "Node-1", seen); err != nil {
		t.Fatal(err)
	}
	if p.Name != "web-node-1" || p.Namespace != "default" || p.Spec.NodeName != "Node-1" {
		t.Errorf("name %q namespace %q nodeName %q; want web-node-1, default, Node-1", p.Name, p.Namespace, p.Spec.NodeName)
	}
	if len(p.UID) != 32 {
		t.Errorf("uid %q: want 32 hex digits (MD5)", p.UID)
	}
	wantAnn := map[string]string{
		ConfigHashAnnotation:   string(p.UID),
		ConfigSourceAnnotation: "file",
		ConfigSeenAnnotation:   "2026-12-07T10:00:00.000000123Z",
	}
	if diff := cmp.Diff(wantAnn, p.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}, p.Spec.Tolerations); diff != "" {
		t.Errorf("tolerations (-want +got):\n%s", diff)
	}
	if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Spec.DNSPolicy != corev1.DNSClusterFirst ||
		p.Spec.TerminationGracePeriodSeconds == nil || *p.Spec.TerminationGracePeriodSeconds != 30 {
		t.Errorf("defaults: restartPolicy %q dnsPolicy %q grace %v", p.Spec.RestartPolicy, p.Spec.DNSPolicy, p.Spec.TerminationGracePeriodSeconds)
	}
	if got := p.Spec.Containers[0].ImagePullPolicy; got != corev1.PullIfNotPresent {
		t.Errorf("imagePullPolicy of a tagged image = %q, want IfNotPresent", got)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %q, want Pending", p.Status.Phase)
	}
	if p.Labels["app"] != "web" {
		t.Errorf("labels %v lost", p.Labels)
	}

	// A manifest's own UID is kept, and is the hash.
	q := decodeOne(t, strings.Replace(podYAML, "name: web\n", "name: web\n  uid: my-uid\n", 1))
	if err := Complete(q, "f", "n", seen); err != nil {
		t.Fatal(err)
	}
	if q.UID != "my-uid" || q.Annotations[ConfigHashAnnotation] != "my-uid" {
		t.Errorf("uid %q hash %q, want my-uid", q.UID, q.Annotations[ConfigHashAnnotation])
	}
}

func TestHash(t *testing.T) {
	uid := func(data, file, node string) string {
		p := decodeOne(t, data)
		if err := Complete(p, file, node, time.Now()); err != nil {
			t.Fatal(err)
		}
		return string(p.UID)
	}
	base := uid(podYAML, "/m/web.yaml", "n1")
	if again := uid(podYAML, "/m/web.yaml", "n1"); again != base {
		t.Errorf("same manifest, node and file: uid %s then %s; want stable", base, again)
	}
	for name, other := range map[string]string{
		"content": uid(strings.Replace(podYAML, "3600", "3601", 1), "/m/web.yaml", "n1"),
		"node":    uid(podYAML, "/m/web.yaml", "n2"),
		"file":    uid(podYAML, "/m/web2.yaml", "n1"),
	} {
		if other == base {
			t.Errorf("another %s: same uid %s; want another", name, base)
		}
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"busybox":                  corev1.PullAlways,
		"busybox:latest":           corev1.PullAlways,
		"registry:5000/busybox":    corev1.PullAlways,
		"registry:5000/busybox:1":  corev1.PullIfNotPresent,
		"busybox@sha256:0123abcd":  corev1.PullIfNotPresent,
		"coxswain/busybox:v1.36.1": corev1.PullIfNotPresent,
	} {
		c := corev1.Container{Image: image}
		containerDefaults(&c)
		if c.ImagePullPolicy != want {
			t.Errorf("image %q: pull policy %q, want %q", image, c.ImagePullPolicy, want)
		}
	}
}

func TestCompleteInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, data, wantErr string
	}{
		{"no name", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n", "metadata.name: required"},
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n", "spec.containers: required"},
		{"no image", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", "spec.containers[0].image: required"},
		{"duplicate container", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}, {name: c, image: i}]}\n", "duplicate"},
		{"bad name", "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: i}]}\n", "metadata.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decodeOne(t, tc.data)
			err := Complete(p, "f", "n", time.Now())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Complete error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMirrorOf(t *testing.T) {
	p := decodeOne(t, podYAML)
	if err := Complete(p, "f", "n1", time.Now()); err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "node-uid"}}
	m := MirrorOf(p, node)
	if m.UID != "" || m.Name != p.Name || m.Namespace != "default" || m.Spec.NodeName != "n1" {
		t.Errorf("mirror uid %q name %q ns %q node %q", m.UID, m.Name, m.Namespace, m.Spec.NodeName)
	}
	if m.Annotations[ConfigMirrorAnnotation] != string(p.UID) || m.Annotations[ConfigSourceAnnotation] != "file" {
		t.Errorf("mirror annotations %v", m.Annotations)
	}
	if _, ok := p.Annotations[ConfigMirrorAnnotation]; ok {
		t.Error("MirrorOf changed the static pod's annotations")
	}
	controller := true
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n1", UID: "node-uid", Controller: &controller}}
	if diff := cmp.Diff(want, m.OwnerReferences); diff != "" {
		t.Errorf("ownerReferences (-want +got):\n%s", diff)
	}
	if !IsMirror(m) || IsMirror(p) {
		t.Errorf("IsMirror(mirror) = %v, IsMirror(static) = %v", IsMirror(m), IsMirror(p))
	}
}
