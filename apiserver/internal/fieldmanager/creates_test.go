package fieldmanager

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	"k8s.io/apimachinery/pkg/api/meta"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/randfill"

	"github.com/coxswain/coxswain/apiserver/internal/rest/openapi"
	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// TestCreateMemoMatchesFieldManager checks that creates answered from the
// memo get the managedFields the structured-merge-diff field manager
// computes, byte for byte, over random objects of every served kind.
func TestCreateMemoMatchesFieldManager(t *testing.T) {
	doc, err := openapi.New(scheme.Resources(), "v1.32.0")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := New(doc.Schemas())
	if err != nil {
		t.Fatal(err)
	}
	// slow shares fast's type converter; its memo is cleared before
	// every use, so it always runs the field manager.
	slow := &Managers{tc: fast.tc, byID: map[managerID]*managedfields.FieldManager{}}

	f := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(1), scheme.Codecs).NilChance(0.3).NumElements(0, 3).Funcs(
		func(s *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*s = intstr.FromInt32(c.Int31n(1000))
			} else {
				*s = intstr.FromString(fmt.Sprintf("p%d", c.Intn(10)))
			}
		},
		func(e *runtime.RawExtension, c randfill.Continue) {
			*e = runtime.RawExtension{Raw: []byte(fmt.Sprintf(`{"a":%d}`, c.Intn(10)))}
		},
	)
	const perKind = 40
	hits, kinds := 0, 0
	for _, res := range scheme.Resources() {
		proto, err := res.New()
		if err != nil {
			continue
		}
		if _, ok := proto.(marshaler); !ok {
			continue
		}
		kinds++
		for i := range perKind {
			obj, _ := res.New()
			f.Fill(obj)
			acc, _ := meta.Accessor(obj)
			acc.SetManagedFields(nil)
			if i%5 == 0 {
				acc.SetName("")
			}
			// Two objects that differ only in stripped fields: the
			// second must be answered from the memo.
			other := obj.DeepCopyObject()
			oacc, _ := meta.Accessor(other)
			rename(oacc)
			for _, manager := range []string{"kubectl", "bench"} {
				ft := &Tracker{Managers: fast, GVK: res.GVK(), Default: nil}
				st := &Tracker{Managers: slow, GVK: res.GVK(), Default: nil}
				ft.Track(nil, obj.DeepCopyObject(), manager, "")
				key, _ := createKey(res.GVK(), other.DeepCopyObject(), manager, "")
				if key == nil {
					t.Fatalf("%s: no key", res.Kind)
				}
				if _, ok := fast.creates.get(*key); ok {
					hits++
				} else {
					t.Errorf("%s #%d: the second create was not answered from the memo", res.Kind, i)
				}
				got := ft.Track(nil, other.DeepCopyObject(), manager, "")
				slow.creates = createMemo{}
				want := st.Track(nil, other.DeepCopyObject(), manager, "")
				if diff := cmp.Diff(clearTimes(t, want), clearTimes(t, got)); diff != "" {
					t.Fatalf("%s #%d (%s): memo differs from the field manager (-want +got):\n%s", res.Kind, i, manager, diff)
				}
			}
		}
	}
	t.Logf("%d kinds, %d memo hits", kinds, hits)
	if kinds < 10 || hits == 0 {
		t.Fatalf("only %d kinds and %d memo hits tried", kinds, hits)
	}
}

// TestCreateKeyPresence checks that objects differing in whether a
// stripped field is set get different keys, and that the key leaves the
// object as it was.
func TestCreateKeyPresence(t *testing.T) {
	gvk := corev1.SchemeGroupVersion.WithKind("Pod")
	base := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", UID: "u", Generation: 2, ResourceVersion: "5", CreationTimestamp: metav1.Unix(100, 0)}}
	orig := base.DeepCopy()
	k1 := keyOf(gvk, base, "m", "")
	if diff := cmp.Diff(orig, base); diff != "" {
		t.Fatalf("createKey changed the object (-want +got):\n%s", diff)
	}
	renamed := base.DeepCopy()
	rename(renamed)
	if k2 := keyOf(gvk, renamed, "m", ""); k2 != k1 {
		t.Errorf("renamed object got another key")
	}
	for name, mutate := range map[string]func(*corev1.Pod){
		"name":       func(p *corev1.Pod) { p.Name = "" },
		"uid":        func(p *corev1.Pod) { p.UID = "" },
		"generation": func(p *corev1.Pod) { p.Generation = 0 },
		"created":    func(p *corev1.Pod) { p.CreationTimestamp = metav1.Time{} },
		"label":      func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} },
	} {
		p := base.DeepCopy()
		mutate(p)
		if k := keyOf(gvk, p, "m", ""); k == k1 {
			t.Errorf("%s: same key as the base object", name)
		}
	}
	for _, other := range []struct{ manager, sub string }{{"n", ""}, {"m", "status"}} {
		if k := keyOf(gvk, base, other.manager, other.sub); k == k1 {
			t.Errorf("manager %q subresource %q: same key", other.manager, other.sub)
		}
	}
	withMF := base.DeepCopy()
	withMF.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "x"}}
	if k, _ := createKey(gvk, withMF, "m", ""); k != nil {
		t.Errorf("object with managedFields got key %q, want none", k)
	}
}

// keyOf is createKey as a string, "" for none.
func keyOf(gvk schema.GroupVersionKind, obj runtime.Object, manager, sub string) string {
	k, _ := createKey(gvk, obj, manager, sub)
	if k == nil {
		return ""
	}
	defer releaseKey(k)
	return string(*k)
}

// rename changes the stripped fields that are set, keeping which are.
func rename(acc metav1.Object) {
	if acc.GetName() != "" {
		acc.SetName(acc.GetName() + "-other")
	}
	if acc.GetNamespace() != "" {
		acc.SetNamespace(acc.GetNamespace() + "-other")
	}
	if acc.GetUID() != "" {
		acc.SetUID(types.UID("other-uid"))
	}
	if acc.GetResourceVersion() != "" {
		acc.SetResourceVersion("12345")
	}
	if acc.GetGeneration() != 0 {
		acc.SetGeneration(acc.GetGeneration() + 7)
	}
	if ts := acc.GetCreationTimestamp(); !ts.IsZero() {
		acc.SetCreationTimestamp(metav1.Unix(ts.Unix()+3600, 0))
	}
}

func clearTimes(t *testing.T, obj runtime.Object) runtime.Object {
	t.Helper()
	acc, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	mf := acc.GetManagedFields()
	for i := range mf {
		if mf[i].Time == nil {
			t.Fatalf("managedFields entry %d has no time", i)
		}
		mf[i].Time = nil
	}
	return obj
}
