package informer

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestKeyFuncAndSplitKey(t *testing.T) {
	tests := []struct {
		name    string
		obj     any
		key     string
		ns, nm  string
		wantErr bool
	}{
		{name: "namespaced", obj: pod("ns", "a", nil), key: "ns/a", ns: "ns", nm: "a"},
		{name: "cluster-scoped", obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, key: "n1", nm: "n1"},
		{name: "tombstone", obj: DeletedFinalStateUnknown{Key: "ns/b"}, key: "ns/b", ns: "ns", nm: "b"},
		{name: "not an object", obj: 42, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := KeyFunc(tt.obj)
			if (err != nil) != tt.wantErr {
				t.Fatalf("KeyFunc err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if key != tt.key {
				t.Errorf("KeyFunc = %q, want %q", key, tt.key)
			}
			ns, nm, err := SplitKey(key)
			if err != nil || ns != tt.ns || nm != tt.nm {
				t.Errorf("SplitKey(%q) = %q, %q, %v, want %q, %q", key, ns, nm, err, tt.ns, tt.nm)
			}
		})
	}
	if _, _, err := SplitKey("a/b/c"); err == nil {
		t.Error("SplitKey(a/b/c) succeeded")
	}
}

func byLabel(label string) IndexFunc {
	return func(obj runtime.Object) ([]string, error) {
		p := obj.(*corev1.Pod)
		if v, ok := p.Labels[label]; ok {
			return []string{v}, nil
		}
		return nil, nil
	}
}

func TestIndexer(t *testing.T) {
	type op struct {
		kind string // add, update, delete, replace
		objs []*corev1.Pod
	}
	tests := []struct {
		name      string
		ops       []op
		wantKeys  []string
		wantByApp map[string][]string // app value -> keys
		wantByNS  map[string][]string
	}{
		{
			name:      "add",
			ops:       []op{{"add", []*corev1.Pod{pod("a", "p1", map[string]string{"app": "web"}), pod("b", "p2", map[string]string{"app": "web"})}}},
			wantKeys:  []string{"a/p1", "b/p2"},
			wantByApp: map[string][]string{"web": {"a/p1", "b/p2"}},
			wantByNS:  map[string][]string{"a": {"a/p1"}, "b": {"b/p2"}},
		},
		{
			name: "update moves the index entry",
			ops: []op{
				{"add", []*corev1.Pod{pod("a", "p1", map[string]string{"app": "web"})}},
				{"update", []*corev1.Pod{pod("a", "p1", map[string]string{"app": "db"})}},
			},
			wantKeys:  []string{"a/p1"},
			wantByApp: map[string][]string{"web": {}, "db": {"a/p1"}},
			wantByNS:  map[string][]string{"a": {"a/p1"}},
		},
		{
			name: "update dropping the label",
			ops: []op{
				{"add", []*corev1.Pod{pod("a", "p1", map[string]string{"app": "web"})}},
				{"update", []*corev1.Pod{pod("a", "p1", nil)}},
			},
			wantKeys:  []string{"a/p1"},
			wantByApp: map[string][]string{"web": {}},
		},
		{
			name: "delete clears indexes",
			ops: []op{
				{"add", []*corev1.Pod{pod("a", "p1", map[string]string{"app": "web"}), pod("a", "p2", map[string]string{"app": "web"})}},
				{"delete", []*corev1.Pod{pod("a", "p1", nil)}},
			},
			wantKeys:  []string{"a/p2"},
			wantByApp: map[string][]string{"web": {"a/p2"}},
			wantByNS:  map[string][]string{"a": {"a/p2"}},
		},
		{
			name: "replace rebuilds",
			ops: []op{
				{"add", []*corev1.Pod{pod("a", "p1", map[string]string{"app": "web"})}},
				{"replace", []*corev1.Pod{pod("b", "p3", map[string]string{"app": "db"})}},
			},
			wantKeys:  []string{"b/p3"},
			wantByApp: map[string][]string{"web": {}, "db": {"b/p3"}},
			wantByNS:  map[string][]string{"a": {}, "b": {"b/p3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := NewIndexer(Indexers{NamespaceIndex: NamespaceIndexFunc, "app": byLabel("app")})
			for _, o := range tt.ops {
				var objs []runtime.Object
				for _, p := range o.objs {
					objs = append(objs, p)
				}
				for _, obj := range objs {
					var err error
					switch o.kind {
					case "add":
						err = idx.Add(obj)
					case "update":
						err = idx.Update(obj)
					case "delete":
						err = idx.Delete(obj)
					}
					if err != nil {
						t.Fatalf("%s: %v", o.kind, err)
					}
				}
				if o.kind == "replace" {
					if err := idx.Replace(objs); err != nil {
						t.Fatal(err)
					}
				}
			}
			if diff := cmp.Diff(tt.wantKeys, sorted(idx.ListKeys())); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			check := func(index string, want map[string][]string) {
				for v, keys := range want {
					got, err := idx.IndexKeys(index, v)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(keys, got); diff != "" {
						t.Errorf("IndexKeys(%s, %s) (-want +got):\n%s", index, v, diff)
					}
					objs, _ := idx.ByIndex(index, v)
					if len(objs) != len(keys) {
						t.Errorf("ByIndex(%s, %s) = %d objects, want %d", index, v, len(objs), len(keys))
					}
				}
			}
			check("app", tt.wantByApp)
			check(NamespaceIndex, tt.wantByNS)
		})
	}
}

func TestIndexerMisc(t *testing.T) {
	idx := NewIndexer(nil)
	p := pod("a", "p1", map[string]string{"app": "web"})
	if err := idx.Add(p); err != nil {
		t.Fatal(err)
	}
	if _, err := idx.ByIndex("app", "web"); err == nil {
		t.Error("ByIndex on a missing index succeeded")
	}
	if err := idx.AddIndexers(Indexers{"app": byLabel("app")}); err != nil {
		t.Fatal(err)
	}
	if err := idx.AddIndexers(Indexers{"app": byLabel("app")}); err == nil {
		t.Error("AddIndexers with a duplicate name succeeded")
	}
	if keys, _ := idx.IndexKeys("app", "web"); !cmp.Equal(keys, []string{"a/p1"}) {
		t.Errorf("IndexKeys after AddIndexers = %v, want [a/p1]", keys)
	}
	if vals := idx.ListIndexFuncValues("app"); !cmp.Equal(vals, []string{"web"}) {
		t.Errorf("ListIndexFuncValues = %v, want [web]", vals)
	}
	same, err := idx.Index("app", pod("x", "y", map[string]string{"app": "web"}))
	if err != nil || len(same) != 1 {
		t.Errorf("Index = %v, %v, want one object", same, err)
	}
	got, ok, err := idx.Get(pod("a", "p1", nil))
	if err != nil || !ok || got != p {
		t.Errorf("Get = %v, %v, %v, want the stored pod", got, ok, err)
	}
	if _, ok, _ := idx.GetByKey("a/nope"); ok {
		t.Error("GetByKey of a missing key found something")
	}
}

func TestLister(t *testing.T) {
	idx := NewIndexer(Indexers{NamespaceIndex: NamespaceIndexFunc})
	for _, p := range []*corev1.Pod{
		pod("a", "web-1", map[string]string{"app": "web"}),
		pod("a", "db-1", map[string]string{"app": "db"}),
		pod("b", "web-2", map[string]string{"app": "web"}),
	} {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	l := NewLister[*corev1.Pod](idx)
	names := func(pods []*corev1.Pod) []string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Namespace+"/"+p.Name)
		}
		return sorted(out)
	}
	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	tests := []struct {
		name string
		got  []*corev1.Pod
		want []string
	}{
		{"all", l.List(labels.Everything()), []string{"a/db-1", "a/web-1", "b/web-2"}},
		{"nil selector", l.List(nil), []string{"a/db-1", "a/web-1", "b/web-2"}},
		{"selector", l.List(web), []string{"a/web-1", "b/web-2"}},
		{"namespace", l.ByNamespace("a").List(nil), []string{"a/db-1", "a/web-1"}},
		{"namespace and selector", l.ByNamespace("a").List(web), []string{"a/web-1"}},
		{"empty namespace", l.ByNamespace("c").List(nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, names(tt.got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if p, err := l.Get("a", "web-1"); err != nil || p.Name != "web-1" {
		t.Errorf("Get(a, web-1) = %v, %v", p, err)
	}
	if p, err := l.ByNamespace("b").Get("web-2"); err != nil || p.Name != "web-2" {
		t.Errorf("ByNamespace(b).Get(web-2) = %v, %v", p, err)
	}
	_, err := l.Get("b", "db-1")
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Get of a missing pod: err = %v, want NotFound", err)
	}
	if st := err.(apierrors.APIStatus).Status(); st.Details.Kind != "pods" || st.Details.Name != "db-1" {
		t.Errorf("NotFound details = %+v, want pods db-1", st.Details)
	}
}

func TestFactoryForResource(t *testing.T) {
	f := NewFilteredFactory(nil, 0, "ns", nil)
	pods := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	a, b := f.ForResource(pods), f.ForResource(pods)
	if a != b {
		t.Error("ForResource returned two informers for one resource")
	}
	inf, lister := ForType[*corev1.Pod](f)
	if inf != a {
		t.Error("ForType returned another informer than ForResource")
	}
	if _, err := inf.GetIndexer().ByIndex(NamespaceIndex, "ns"); err != nil {
		t.Errorf("factory informer has no namespace index: %v", err)
	}
	if got := lister.List(nil); len(got) != 0 {
		t.Errorf("lister of an unstarted informer lists %d", len(got))
	}
	// Nothing started: nothing to wait for.
	if got := f.WaitForCacheSync(context.Background()); len(got) != 0 {
		t.Errorf("WaitForCacheSync = %v, want empty", got)
	}
}

// A namespace lister answers equality selectors from the label index; the
// result must be exactly what scanning the namespace gives.
func TestNamespaceListerLabelIndex(t *testing.T) {
	idx := NewIndexer(Indexers{NamespaceIndex: NamespaceIndexFunc, LabelIndex: LabelIndexFunc})
	pod := func(ns, name string, lbls map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls}}
	}
	for _, p := range []*corev1.Pod{
		pod("a", "web-1", map[string]string{"app": "web", "tier": "fe"}),
		pod("a", "web-2", map[string]string{"app": "web", "tier": "be"}),
		pod("a", "db-1", map[string]string{"app": "db"}),
		pod("b", "web-3", map[string]string{"app": "web", "tier": "fe"}),
		pod("a", "bare", nil),
	} {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	// An update moves a pod between index values.
	if err := idx.Update(pod("a", "db-1", map[string]string{"app": "web", "tier": "fe"})); err != nil {
		t.Fatal(err)
	}
	l := NewLister[*corev1.Pod](idx).ByNamespace("a")
	names := func(pods []*corev1.Pod) string {
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		sel, want string
		indexed   bool
	}{
		{"app=web", "db-1,web-1,web-2", true},
		{"app=web,tier=fe", "db-1,web-1", true},
		{"app in (web)", "db-1,web-1,web-2", true},
		{"app in (web,db)", "db-1,web-1,web-2", false}, // several values: scanned
		{"app!=web", "bare", false},
		{"app=db", "", true},
		{"tier", "db-1,web-1,web-2", false},
		{"app=web,tier notin (fe)", "web-2", true},
	} {
		s, err := labels.Parse(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(l.List(s)); got != tc.want {
			t.Errorf("List(%q) = %q, want %q", tc.sel, got, tc.want)
		}
		if _, ok := l.byLabel(s); ok != tc.indexed {
			t.Errorf("List(%q): index used = %v, want %v", tc.sel, ok, tc.indexed)
		}
	}
	if got := names(l.List(labels.Everything())); got != "bare,db-1,web-1,web-2" {
		t.Errorf("List(everything) = %q", got)
	}
}
