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
