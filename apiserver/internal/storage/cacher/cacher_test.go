package cacher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
	"github.com/coxswain/coxswain/apiserver/internal/storage/embedded"
	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
)

func startCacher(t *testing.T) (*etcd.Store, *cacher.Cacher) {
	t.Helper()
	e, err := embedded.Start(filepath.Join(t.TempDir(), "etcd"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ec, err := clientv3.New(clientv3.Config{Endpoints: []string{e.ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ec.Close() })
	st := etcd.NewStore(ec, zaptest.NewLogger(t), nil)
	c := cacher.New(cacher.Config{
		GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Prefix: "/registry/core/configmaps/", Store: st,
		Attrs: func(obj runtime.Object) (labels.Set, fields.Set, error) {
			acc, err := meta.Accessor(obj)
			if err != nil {
				return nil, nil, err
			}
			return labels.Set(acc.GetLabels()), fields.Set{"metadata.name": acc.GetName(), "metadata.namespace": acc.GetNamespace()}, nil
		},
		Logger: zaptest.NewLogger(t),
	})
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	return st, c
}

func put(t *testing.T, st *etcd.Store, ns, name string, lbls map[string]string) int64 {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls}}
	raw, err := etcd.Encode(corev1.SchemeGroupVersion.WithKind("ConfigMap"), cm)
	if err != nil {
		t.Fatal(err)
	}
	key := "/registry/core/configmaps/" + ns + "/" + name
	kv, ok, err := st.Get(context.Background(), key, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		rev, err := st.Create(context.Background(), key, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	rev, ok, err := st.Update(context.Background(), key, kv.ModRevision, raw, nil, nil)
	if err != nil || !ok {
		t.Fatalf("update %s: %v %v", key, ok, err)
	}
	return rev
}

func names(t *testing.T, c *cacher.Cacher, rev int64, ns, sel string) []string {
	t.Helper()
	s, err := labels.Parse(sel)
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := c.List(context.Background(), rev, cacher.Predicate{Label: s, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range items {
		obj, err := e.Object()
		if err != nil {
			t.Fatal(err)
		}
		acc, _ := meta.Accessor(obj)
		if acc.GetResourceVersion() != fmt.Sprint(e.Rev) {
			t.Fatalf("%s: object resourceVersion %s, entry revision %d", e.Key, acc.GetResourceVersion(), e.Rev)
		}
		out = append(out, acc.GetNamespace()+"/"+acc.GetName())
	}
	return out
}

// Lists through the label index and through a scan agree, follow label
// changes and deletes, and come back sorted by key.
func TestListSelectors(t *testing.T) {
	st, c := startCacher(t)
	put(t, st, "a", "z", map[string]string{"g": "1"})
	put(t, st, "a", "y", map[string]string{"g": "2"})
	put(t, st, "b", "x", map[string]string{"g": "1", "t": "web"})
	rev := put(t, st, "a", "w", map[string]string{"g": "1", "t": "db"})

	tests := []struct {
		ns, sel string
		want    []string
	}{
		{"", "g=1", []string{"a/w", "a/z", "b/x"}},
		{"a", "g=1", []string{"a/w", "a/z"}},
		{"", "g in (1,2),t", []string{"a/w", "b/x"}},
		{"", "g!=1", []string{"a/y"}},
		{"", "t", []string{"a/w", "b/x"}},
		{"", "g=3", []string{}},
		{"", "", []string{"a/w", "a/y", "a/z", "b/x"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, names(t, c, rev, tc.ns, tc.sel)); diff != "" {
			t.Errorf("list ns=%q %q (-want +got):\n%s", tc.ns, tc.sel, diff)
		}
	}

	rev = put(t, st, "a", "z", map[string]string{"g": "2"})
	if diff := cmp.Diff([]string{"a/w", "b/x"}, names(t, c, rev, "", "g=1")); diff != "" {
		t.Errorf("after relabel g=1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a/y", "a/z"}, names(t, c, rev, "", "g=2")); diff != "" {
		t.Errorf("after relabel g=2 (-want +got):\n%s", diff)
	}
	kv, _, err := st.Get(context.Background(), "/registry/core/configmaps/b/x", 0)
	if err != nil {
		t.Fatal(err)
	}
	rev, ok, err := st.Delete(context.Background(), kv.Key, kv.ModRevision, nil)
	if err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if diff := cmp.Diff([]string{"a/w"}, names(t, c, rev, "", "g=1")); diff != "" {
		t.Errorf("after delete (-want +got):\n%s", diff)
	}
}

// A consistent list on a resource nobody writes waits for etcd's progress
// notification rather than timing out.
func TestConsistentListOnIdleResource(t *testing.T) {
	st, c := startCacher(t)
	put(t, st, "a", "one", nil)
	// Move etcd's revision on under another prefix.
	var rev int64
	for i := 0; i < 5; i++ {
		var err error
		if rev, err = st.Create(context.Background(), fmt.Sprintf("/registry/other/%d", i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, got, err := c.List(context.Background(), rev, cacher.Predicate{})
	if err != nil {
		t.Fatalf("consistent list: %v", err)
	}
	if got < rev {
		t.Fatalf("list served revision %d, want at least %d", got, rev)
	}
}
