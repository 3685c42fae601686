package garbagecollector

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/api/scheme"
)

var (
	podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	rsGVR   = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	depGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// fakeAPI holds objects by "resource/name" and records the writes.
type fakeAPI struct {
	objs    map[string]runtime.Object
	actions []string
}

func (f *fakeAPI) key(gvr schema.GroupVersionResource, name string) string {
	return gvr.Resource + "/" + name
}

func (f *fakeAPI) Get(_ context.Context, gvr schema.GroupVersionResource, _, name string, _ metav1.GetOptions) (runtime.Object, error) {
	o, ok := f.objs[f.key(gvr, name)]
	if !ok {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	return o.DeepCopyObject(), nil
}

func (f *fakeAPI) Update(_ context.Context, gvr schema.GroupVersionResource, _ string, obj runtime.Object, _ metav1.UpdateOptions) (runtime.Object, error) {
	acc, _ := meta.Accessor(obj)
	var refs []string
	for _, r := range acc.GetOwnerReferences() {
		refs = append(refs, r.Name)
	}
	f.actions = append(f.actions, fmt.Sprintf("update %s owners=%v finalizers=%v", f.key(gvr, acc.GetName()), refs, acc.GetFinalizers()))
	f.objs[f.key(gvr, acc.GetName())] = obj
	return obj, nil
}

func (f *fakeAPI) Delete(_ context.Context, gvr schema.GroupVersionResource, _, name string, opts metav1.DeleteOptions) (runtime.Object, bool, error) {
	f.actions = append(f.actions, fmt.Sprintf("delete %s %s", f.key(gvr, name), *opts.PropagationPolicy))
	return nil, true, nil
}

func ref(kind, name string, block bool) metav1.OwnerReference {
	api := "apps/v1"
	if kind == "ReplicationController" {
		api = "v1"
	}
	t := true
	r := metav1.OwnerReference{APIVersion: api, Kind: kind, Name: name, UID: types.UID(name + "-uid"), Controller: &t}
	if block {
		r.BlockOwnerDeletion = &t
	}
	return r
}

func meta1(name string, refs ...metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), OwnerReferences: refs}
}

type fixture struct {
	gc  *Collector
	api *fakeAPI
}

func newFixture(t *testing.T) *fixture {
	api := &fakeAPI{objs: map[string]runtime.Object{}}
	return &fixture{gc: newCollector(api, zaptest.NewLogger(t), controller.NewQueue("test", nil)), api: api}
}

// add stores obj in the API and the graph, as an informer event would.
func (f *fixture) add(gvr schema.GroupVersionResource, obj runtime.Object) {
	acc, _ := meta.Accessor(obj)
	f.api.objs[f.api.key(gvr, acc.GetName())] = obj
	f.gc.observe(gvr, obj)
}

// drain syncs every queued uid until the queue is empty, at most n rounds.
func (f *fixture) drain(t *testing.T) []string {
	t.Helper()
	for range 20 {
		if f.gc.queue.Len() == 0 {
			break
		}
		key, _ := f.gc.queue.Get()
		if err := f.gc.sync(context.Background(), key); err != nil {
			t.Fatalf("sync %s: %v", key, err)
		}
		f.gc.queue.Done(key)
	}
	t.Logf("actions: %q", f.api.actions)
	sort.Strings(f.api.actions)
	return f.api.actions
}

func TestBackgroundDeletesDependentsOfGoneOwner(t *testing.T) {
	f := newFixture(t)
	// The ReplicaSet's owner was never observed and is not in the API.
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: meta1("rs", ref("Deployment", "gone", true))})
	// A pod whose owner exists is kept.
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: meta1("live")})
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("kept", ref("ReplicaSet", "live", true))})
	got := f.drain(t)
	if diff := cmp.Diff([]string{"delete replicasets/rs Background"}, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestOwnerDeletedEnqueuesDependents(t *testing.T) {
	f := newFixture(t)
	rs := &appsv1.ReplicaSet{ObjectMeta: meta1("rs")}
	f.add(rsGVR, rs)
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("p1", ref("ReplicaSet", "rs", true))})
	if got := f.drain(t); len(got) != 0 {
		t.Fatalf("actions with the owner present: %v", got)
	}
	delete(f.api.objs, "replicasets/rs")
	f.gc.forget(rs)
	if diff := cmp.Diff([]string{"delete pods/p1 Background"}, f.drain(t)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestSolidOwnerKeepsDependentAndDropsDanglingRef(t *testing.T) {
	f := newFixture(t)
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: meta1("live")})
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("p", ref("ReplicaSet", "live", false), ref("ReplicaSet", "gone", false))})
	if diff := cmp.Diff([]string{"update pods/p owners=[live] finalizers=[]"}, f.drain(t)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestOwnerReplacedByAnotherUID(t *testing.T) {
	f := newFixture(t)
	// The API has an "old" ReplicaSet, but another one (another uid).
	f.api.objs["replicasets/old"] = &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "ns", UID: "other"}}
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("p", ref("ReplicaSet", "old", true))})
	if diff := cmp.Diff([]string{"delete pods/p Background"}, f.drain(t)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func deleting(m metav1.ObjectMeta, finalizer string) metav1.ObjectMeta {
	now := metav1.Now()
	m.DeletionTimestamp = &now
	m.Finalizers = []string{finalizer}
	return m
}

func TestOrphan(t *testing.T) {
	f := newFixture(t)
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("p1", ref("ReplicaSet", "rs", true))})
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("p2", ref("ReplicaSet", "rs", true), ref("ReplicationController", "other", false))})
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: meta1("rs")})
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: deleting(meta1("rs"), metav1.FinalizerOrphanDependents)})
	want := []string{
		"update pods/p1 owners=[] finalizers=[]",
		"update pods/p2 owners=[] finalizers=[]",
		"update pods/p2 owners=[rs] finalizers=[]", // "other" does not exist
		"update replicasets/rs owners=[] finalizers=[]",
	}
	if diff := cmp.Diff(want, f.drain(t)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestForeground(t *testing.T) {
	f := newFixture(t)
	f.add(depGVR, &appsv1.Deployment{ObjectMeta: meta1("d")})
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: meta1("rs", ref("Deployment", "d", true))})
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: meta1("loose", ref("Deployment", "d", false))})
	f.add(podsGVR, &corev1.Pod{ObjectMeta: meta1("p", ref("ReplicaSet", "rs", true))})
	if got := f.drain(t); len(got) != 0 {
		t.Fatalf("actions before deletion: %v", got)
	}
	f.add(depGVR, &appsv1.Deployment{ObjectMeta: deleting(meta1("d"), metav1.FinalizerDeleteDependents)})
	// The ReplicaSet with pods is deleted in the foreground, the one with
	// none in the background; the Deployment keeps its finalizer while a
	// blocking dependent remains.
	want := []string{"delete replicasets/loose Background", "delete replicasets/rs Foreground"}
	if diff := cmp.Diff(want, f.drain(t)); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
	f.api.actions = nil
	// rs is terminating in the foreground: its pod is deleted.
	f.add(rsGVR, &appsv1.ReplicaSet{ObjectMeta: deleting(meta1("rs", ref("Deployment", "d", true)), metav1.FinalizerDeleteDependents)})
	if diff := cmp.Diff([]string{"delete pods/p Background"}, f.drain(t)); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
	f.api.actions = nil
	// The loose one goes; the Deployment still waits on rs.
	f.gc.forget(&appsv1.ReplicaSet{ObjectMeta: meta1("loose", ref("Deployment", "d", false))})
	if got := f.drain(t); len(got) != 0 {
		t.Fatalf("actions while rs remains: %v", got)
	}
	// When the pod is gone, rs is finalized; when rs is gone, the Deployment is.
	f.api.actions = nil
	f.gc.forget(&corev1.Pod{ObjectMeta: meta1("p", ref("ReplicaSet", "rs", true))})
	if diff := cmp.Diff([]string{"update replicasets/rs owners=[d] finalizers=[]"}, f.drain(t)); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
	f.api.actions = nil
	f.gc.forget(&appsv1.ReplicaSet{ObjectMeta: meta1("rs", ref("Deployment", "d", true))})
	if diff := cmp.Diff([]string{"update deployments/d owners=[] finalizers=[]"}, f.drain(t)); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
}

func TestGraphLinks(t *testing.T) {
	g := newGraph()
	g.upsert(identity{GVR: podsGVR, Name: "p", UID: "p"}, []metav1.OwnerReference{ref("ReplicaSet", "a", true)}, nil, false)
	if !g.hasDependents("a-uid") {
		t.Fatalf("a has no dependents after p named it")
	}
	// p switches owner: a loses it.
	g.upsert(identity{GVR: podsGVR, Name: "p", UID: "p"}, []metav1.OwnerReference{ref("ReplicaSet", "b", true)}, nil, false)
	if g.hasDependents("a-uid") || !g.hasDependents("b-uid") {
		t.Errorf("after the owner change: a has dependents %v, b %v; want false, true", g.hasDependents("a-uid"), g.hasDependents("b-uid"))
	}
	g.remove("p")
	if g.hasDependents("b-uid") || g.observed("p") {
		t.Errorf("removed pod still linked")
	}
	if s := fmt.Sprint(g.dependents); !strings.Contains(s, "map[]") {
		t.Errorf("dependents index not emptied: %s", s)
	}
}

// The collector watches every served resource but events, so that any
// kind may own or be owned (a ConfigMap owned by a Deployment, a Secret by
// a ConfigMap, ...).
func TestResourcesCoverServed(t *testing.T) {
	got := map[schema.GroupVersionResource]bool{}
	for _, gvr := range Resources() {
		got[gvr] = true
	}
	for _, r := range scheme.Resources() {
		want := r.GVR.Resource != "events"
		if got[r.GVR] != want {
			t.Errorf("watching %v = %v, want %v", r.GVR, got[r.GVR], want)
		}
	}
	for _, gvr := range []schema.GroupVersionResource{
		{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "secrets"}, {Version: "v1", Resource: "services"},
		{Version: "v1", Resource: "namespaces"}, {Version: "v1", Resource: "nodes"}, podsGVR, rsGVR, depGVR,
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	} {
		if !got[gvr] {
			t.Errorf("%v not watched", gvr)
		}
	}
	if n := len(got); n != len(scheme.Resources())-1 {
		t.Errorf("watching %d resources, want every served one but events (%d)", n, len(scheme.Resources())-1)
	}
}
