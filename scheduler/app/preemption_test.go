package app_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
)

// TestPreemption: a pod of a high PriorityClass that fits nowhere evicts
// the lower-priority pods of the node where that suffices, never a pod of
// higher priority, and is nominated to that node.
func TestPreemption(t *testing.T) {
	env := harness.Start(t)
	c := env.Client
	ctx := context.Background()
	for name, v := range map[string]int32{"low": 10, "high": 1000, "top": 5000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: v}
		if _, err := client.For[*schedulingv1.PriorityClass](c).Create(ctx, "", pc); err != nil {
			t.Fatalf("create PriorityClass %s: %v", name, err)
		}
	}
	createNode(t, c, fixture.Node("n1", "2", "4Gi").Label(corev1.LabelHostname, "n1").Obj())
	createNode(t, c, fixture.Node("n2", "2", "4Gi").Label(corev1.LabelHostname, "n2").Obj())
	startScheduler(t, env, nil)

	withClass := func(p *corev1.Pod, class string) *corev1.Pod {
		p.Spec.PriorityClassName = class
		return p
	}
	place := map[string]string{"low-a": "n1", "top": "n1", "low-b": "n2", "low-c": "n2"}
	for name, node := range place {
		class := "low"
		if name == "top" {
			class = "top"
		}
		createPod(t, c, withClass(fixture.Pod(name).Container("1", "100Mi").NodeSelector(map[string]string{corev1.LabelHostname: node}).Obj(), class))
	}
	for name, node := range place {
		if got := waitBound(t, c, name); got != node {
			t.Fatalf("%s bound to %s, want %s", name, got, node)
		}
	}

	createPod(t, c, withClass(fixture.Pod("preemptor").Container("2", "100Mi").Obj(), "high"))
	waitFor(t, "preemptor to be nominated to n2", func() (bool, error) {
		p, err := client.For[*corev1.Pod](c).Get(ctx, "default", "preemptor")
		if err != nil {
			return false, err
		}
		return p.Status.NominatedNodeName == "n2", nil
	})
	gone := func(name string) (bool, error) {
		p, err := client.For[*corev1.Pod](c).Get(ctx, "default", name)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return p.DeletionTimestamp != nil, nil
	}
	for _, v := range []string{"low-b", "low-c"} {
		waitFor(t, v+" to be evicted", func() (bool, error) { return gone(v) })
	}
	for _, keep := range []string{"low-a", "top"} {
		if g, err := gone(keep); err != nil || g {
			t.Errorf("%s was evicted (err %v), want it kept", keep, err)
		}
	}
}
