package etcd

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

func TestWithResourceVersion(t *testing.T) {
	replicas := int32(3)
	objs := []runtime.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"a": "b"}, UID: "u"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", ResourceVersion: "7"}, Spec: appsv1.DeploymentSpec{Replicas: &replicas}},
	}
	for _, obj := range objs {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(gvks[0].Kind, func(t *testing.T) {
			stored, err := Encode(gvks[0], obj)
			if err != nil {
				t.Fatal(err)
			}
			for _, rev := range []int64{1, 127, 128, 123456789012} {
				patched, err := WithResourceVersion(stored, rev)
				if err != nil {
					t.Fatalf("patch: %v", err)
				}
				got, _, err := scheme.Protobuf.Decode(patched, nil, nil)
				if err != nil {
					t.Fatalf("decode patched: %v", err)
				}
				want, err := Decode(stored, rev)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("rev %d: patched object differs (-want +got):\n%s", rev, diff)
				}
			}
		})
	}
	for _, bad := range [][]byte{nil, []byte("k8s"), []byte("k8s\x00\x08\x01"), []byte("json{}")} {
		if _, err := WithResourceVersion(bad, 1); err == nil {
			t.Errorf("WithResourceVersion(%q) succeeded, want an error", bad)
		}
	}
}

// A list assembled from stored objects' bytes decodes as the typed list.
func TestEnvelopeSplice(t *testing.T) {
	gvk := corev1.SchemeGroupVersion.WithKind("ConfigMap")
	var items []byte
	for i, name := range []string{"a", "b"} {
		stored, err := Encode(gvk, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}})
		if err != nil {
			t.Fatal(err)
		}
		withRV, err := WithResourceVersion(stored, int64(10+i))
		if err != nil {
			t.Fatal(err)
		}
		inner, err := ObjectBytes(withRV)
		if err != nil {
			t.Fatal(err)
		}
		items = AppendBytesField(items, 2, inner)
	}
	lm := metav1.ListMeta{ResourceVersion: "11"}
	lmRaw, err := lm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	body := append(AppendBytesField(nil, 1, lmRaw), items...)
	raw := AppendEnvelope(nil, "v1", "ConfigMapList", body)
	obj, _, err := scheme.Protobuf.Decode(raw, nil, nil)
	if err != nil {
		t.Fatalf("decode spliced list: %v", err)
	}
	list, ok := obj.(*corev1.ConfigMapList)
	if !ok {
		t.Fatalf("decoded %T, want *ConfigMapList", obj)
	}
	if len(list.Items) != 2 || list.Items[1].Name != "b" || list.Items[1].ResourceVersion != "11" || list.Items[0].Data["k"] != "a" || list.ResourceVersion != "11" {
		t.Fatalf("spliced list = %+v", list)
	}
}
