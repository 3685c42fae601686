package app_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/pkg/client"
)

// gcDeployment creates a 2-replica Deployment in a new namespace and waits
// for its ReplicaSet and pods.
func (e *env) gcDeployment(t *testing.T, ns string) (*appsv1.Deployment, *appsv1.ReplicaSet) {
	t.Helper()
	e.namespace(ns)
	lbls := map[string]string{"app": ns}
	d, err := client.For[*appsv1.Deployment](e.Client).Create(context.Background(), ns, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: podTemplate(lbls, "nginx"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var rs *appsv1.ReplicaSet
	eventually(t, "ReplicaSet with 2 pods", func(ctx context.Context) (bool, error) {
		rss, _, err := client.For[*appsv1.ReplicaSet](e.Client).List(ctx, ns, metav1.ListOptions{})
		if err != nil || len(rss) != 1 {
			return false, fmt.Errorf("%d ReplicaSets (%v)", len(rss), err)
		}
		rs = rss[0]
		pods, err := e.activePods(ctx, ns, labels.SelectorFromSet(lbls))
		return err == nil && len(pods) == 2, fmt.Errorf("%d pods (%v)", len(pods), err)
	})
	return d, rs
}

// counts returns how many ReplicaSets and pods ns holds.
func (e *env) counts(ctx context.Context, ns string) (int, int, error) {
	rss, _, err := client.For[*appsv1.ReplicaSet](e.Client).List(ctx, ns, metav1.ListOptions{})
	if err != nil {
		return 0, 0, err
	}
	pods, _, err := client.For[*corev1.Pod](e.Client).List(ctx, ns, metav1.ListOptions{})
	return len(rss), len(pods), err
}

func (e *env) deleteDeployment(t *testing.T, ns string, policy *metav1.DeletionPropagation) {
	t.Helper()
	if _, err := client.For[*appsv1.Deployment](e.Client).Delete(context.Background(), ns, "web", metav1.DeleteOptions{PropagationPolicy: policy}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) waitDeploymentGone(t *testing.T, ns string) {
	t.Helper()
	eventually(t, "Deployment gone", func(ctx context.Context) (bool, error) {
		_, err := client.For[*appsv1.Deployment](e.Client).Get(ctx, ns, "web")
		return apierrors.IsNotFound(err), err
	})
}

// testGCBackground: deleting a Deployment (default propagation) removes
// its ReplicaSet and pods.
func (e *env) testGCBackground(t *testing.T) {
	ns := "gc-background"
	e.gcDeployment(t, ns)
	e.deleteDeployment(t, ns, nil)
	e.waitDeploymentGone(t, ns)
	eventually(t, "ReplicaSets and pods collected", func(ctx context.Context) (bool, error) {
		rss, pods, err := e.counts(ctx, ns)
		return err == nil && rss == 0 && pods == 0, fmt.Errorf("%d ReplicaSets, %d pods (%v)", rss, pods, err)
	})
}

// testGCOrphan: propagationPolicy Orphan leaves the ReplicaSet, without its
// ownerReference, and its pods.
func (e *env) testGCOrphan(t *testing.T) {
	ns := "gc-orphan"
	_, rs := e.gcDeployment(t, ns)
	orphan := metav1.DeletePropagationOrphan
	e.deleteDeployment(t, ns, &orphan)
	e.waitDeploymentGone(t, ns)
	got, err := client.For[*appsv1.ReplicaSet](e.Client).Get(context.Background(), ns, rs.Name)
	if err != nil {
		t.Fatalf("orphaned ReplicaSet: %v", err)
	}
	if got.UID != rs.UID || len(got.OwnerReferences) != 0 || got.DeletionTimestamp != nil {
		t.Errorf("orphaned ReplicaSet: uid %s (want %s), ownerReferences %v, deletionTimestamp %v; want no owners, not deleting",
			got.UID, rs.UID, got.OwnerReferences, got.DeletionTimestamp)
	}
	pods, err := e.activePods(context.Background(), ns, labels.Everything())
	if err != nil || len(pods) != 2 {
		t.Fatalf("%d pods after orphaning (%v), want 2", len(pods), err)
	}
	for _, p := range pods {
		if !ownedBy(p, string(rs.UID)) {
			t.Errorf("pod %s lost its ReplicaSet owner", p.Name)
		}
	}
}

// testGCForeground: the Deployment stays, with the foregroundDeletion
// finalizer, until its pods and ReplicaSet are gone, the pods first.
func (e *env) testGCForeground(t *testing.T) {
	ns := "gc-foreground"
	e.gcDeployment(t, ns)
	fg := metav1.DeletePropagationForeground
	e.deleteDeployment(t, ns, &fg)
	eventually(t, "Deployment gone after its dependents", func(ctx context.Context) (bool, error) {
		rss, pods, err := e.counts(ctx, ns)
		if err != nil {
			return false, err
		}
		if rss == 0 && pods > 0 {
			t.Fatalf("ReplicaSet gone while %d pods remain", pods)
		}
		d, err := client.For[*appsv1.Deployment](e.Client).Get(ctx, ns, "web")
		if err == nil {
			if d.DeletionTimestamp == nil || !slices.Contains(d.Finalizers, metav1.FinalizerDeleteDependents) {
				t.Fatalf("terminating Deployment: deletionTimestamp %v, finalizers %v; want set, foregroundDeletion", d.DeletionTimestamp, d.Finalizers)
			}
			return false, fmt.Errorf("deployment still there, finalizers %v", d.Finalizers)
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		// Gone: its dependents went first.
		rss, pods, err = e.counts(ctx, ns)
		if err != nil {
			return false, err
		}
		if rss != 0 || pods != 0 {
			t.Fatalf("Deployment gone while %d ReplicaSets and %d pods remain", rss, pods)
		}
		return true, nil
	})
}

// ownerRefTo returns a reference to owner, of the given kind.
func ownerRefTo(owner metav1.Object, apiVersion, kind string, block bool) metav1.OwnerReference {
	r := metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID()}
	if block {
		r.BlockOwnerDeletion = new(true)
	}
	return r
}

// testGCConfigMaps: the collector watches every served resource, not only
// the workload ones: ConfigMaps owned by a Deployment or by another
// ConfigMap are collected with their owner, and a foreground deletion waits
// for a ConfigMap dependent that blocks owner deletion.
func (e *env) testGCConfigMaps(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("gc-configmaps")
	cms := client.For[*corev1.ConfigMap](e.Client)
	deps := client.For[*appsv1.Deployment](e.Client)
	newCM := func(name string, refs ...metav1.OwnerReference) *corev1.ConfigMap {
		t.Helper()
		cm, err := cms.Create(ctx, ns, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: refs}, Data: map[string]string{"k": name}})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	gone := func(names ...string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			for _, name := range names {
				if _, err := cms.Get(ctx, ns, name); !apierrors.IsNotFound(err) {
					return false, fmt.Errorf("configmap %s: %v", name, err)
				}
			}
			return true, nil
		}
	}

	// Background: a Deployment owns a ConfigMap, which owns another.
	lbls := map[string]string{"app": "cm-owner"}
	d, err := deps.Create(ctx, ns, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "owner"},
		Spec:       appsv1.DeploymentSpec{Replicas: new(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: podTemplate(lbls, "nginx")},
	})
	if err != nil {
		t.Fatal(err)
	}
	child := newCM("child", ownerRefTo(d, "apps/v1", "Deployment", false))
	newCM("grandchild", ownerRefTo(child, "v1", "ConfigMap", false))
	unrelated := newCM("unrelated")
	if _, err := deps.Delete(ctx, ns, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ConfigMaps owned by the deleted Deployment collected", gone("child", "grandchild"))
	if got, err := cms.Get(ctx, ns, "unrelated"); err != nil || got.UID != unrelated.UID || got.DeletionTimestamp != nil {
		t.Errorf("unrelated ConfigMap: %v, %v; want it untouched", got, err)
	}

	// Foreground: the owner waits for its blocking dependent, held by a
	// finalizer, and goes once the dependent does.
	owner := newCM("fg-owner")
	const hold = "example.com/hold"
	dep, err := cms.Create(ctx, ns, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "fg-dependent", Finalizers: []string{hold},
		OwnerReferences: []metav1.OwnerReference{ownerRefTo(owner, "v1", "ConfigMap", true)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	fg := metav1.DeletePropagationForeground
	if _, err := cms.Delete(ctx, ns, "fg-owner", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "blocking dependent deleted by the collector", func(ctx context.Context) (bool, error) {
		got, err := cms.Get(ctx, ns, "fg-dependent")
		return err == nil && got.DeletionTimestamp != nil, err
	})
	// The dependent is terminating but still there: the owner waits.
	got, err := cms.Get(ctx, ns, "fg-owner")
	if err != nil || got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("owner while its blocking dependent remains: %v, %v; want it terminating with the foregroundDeletion finalizer", got, err)
	}
	update(t, cms, ns, dep.Name, func(cm *corev1.ConfigMap) { cm.Finalizers = nil })
	eventually(t, "owner gone after its dependent", gone("fg-dependent", "fg-owner"))
}
