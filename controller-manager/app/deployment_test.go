package app_test

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/client"
)

// rolloutState is what kubectl rollout status looks at.
type rolloutState struct {
	d    *appsv1.Deployment
	rss  []*appsv1.ReplicaSet
	pods []*corev1.Pod
}

// observe reads a Deployment, its ReplicaSets and pods, marking every pod
// ready on the way, as kubelets would.
func (e *env) observe(ctx context.Context, ns, name string, sel labels.Selector) (rolloutState, error) {
	var st rolloutState
	pods, err := e.activePods(ctx, ns, sel)
	if err != nil {
		return st, err
	}
	if err := e.markReady(ctx, pods...); err != nil {
		return st, err
	}
	st.pods = pods
	if st.d, err = client.For[*appsv1.Deployment](e.Client).Get(ctx, ns, name); err != nil {
		return st, err
	}
	st.rss, _, err = client.For[*appsv1.ReplicaSet](e.Client).List(ctx, ns, metav1.ListOptions{})
	return st, err
}

// rolledOut is kubectl rollout status's success test.
func rolledOut(d *appsv1.Deployment) error {
	s, want := d.Status, *d.Spec.Replicas
	switch {
	case s.ObservedGeneration < d.Generation:
		return fmt.Errorf("generation %d not observed (%d)", d.Generation, s.ObservedGeneration)
	case s.UpdatedReplicas < want:
		return fmt.Errorf("%d of %d updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Errorf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Errorf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason != "NewReplicaSetAvailable" {
			return fmt.Errorf("progressing: %s", c.Reason)
		}
	}
	return nil
}

func (e *env) testDeployment(t *testing.T, strategy appsv1.DeploymentStrategy) {
	ctx := context.Background()
	ns := e.namespace("deploy-" + string(map[appsv1.DeploymentStrategyType]string{appsv1.RollingUpdateDeploymentStrategyType: "rolling", appsv1.RecreateDeploymentStrategyType: "recreate"}[strategy.Type]))
	lbls := map[string]string{"app": "shop"}
	sel := labels.SelectorFromSet(lbls)
	dcl := client.For[*appsv1.Deployment](e.Client)
	if _, err := dcl.Create(ctx, ns, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: appsv1.DeploymentSpec{
			Replicas:             new(int32(4)),
			Selector:             &metav1.LabelSelector{MatchLabels: lbls},
			Template:             podTemplate(lbls, "shop:v1"),
			Strategy:             strategy,
			RevisionHistoryLimit: new(int32(1)),
		},
	}); err != nil {
		t.Fatal(err)
	}

	var st rolloutState
	waitRollout := func(image, revision string) {
		t.Helper()
		eventually(t, "rollout of "+image, func(ctx context.Context) (bool, error) {
			var err error
			if st, err = e.observe(ctx, ns, "shop", sel); err != nil {
				return false, err
			}
			if err := rolledOut(st.d); err != nil {
				return false, err
			}
			if got := st.d.Annotations["deployment.kubernetes.io/revision"]; got != revision {
				return false, fmt.Errorf("revision %q, want %q", got, revision)
			}
			if len(st.pods) != 4 {
				return false, fmt.Errorf("%d pods", len(st.pods))
			}
			for _, p := range st.pods {
				if p.Spec.Containers[0].Image != image {
					return false, fmt.Errorf("pod %s runs %s", p.Name, p.Spec.Containers[0].Image)
				}
			}
			return true, nil
		})
	}
	waitRollout("shop:v1", "1")
	if len(st.rss) != 1 {
		t.Fatalf("got %d ReplicaSets, want 1", len(st.rss))
	}
	first := st.rss[0]
	if hash := first.Labels["pod-template-hash"]; hash == "" || first.Name != "shop-"+hash {
		t.Errorf("ReplicaSet %s with pod-template-hash %q: want name shop-<hash>", first.Name, hash)
	}
	for _, c := range []appsv1.DeploymentConditionType{appsv1.DeploymentAvailable, appsv1.DeploymentProgressing} {
		found := false
		for _, got := range st.d.Status.Conditions {
			found = found || (got.Type == c && got.Status == corev1.ConditionTrue)
		}
		if !found {
			t.Errorf("condition %s is not True: %+v", c, st.d.Status.Conditions)
		}
	}

	for i, image := range []string{"shop:v2", "shop:v3"} {
		update(t, dcl, ns, "shop", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		waitRollout(image, fmt.Sprint(i+2))
	}
	// revisionHistoryLimit 1: the current ReplicaSet and one old, scaled to 0.
	eventually(t, "history cleaned up", func(ctx context.Context) (bool, error) {
		rss, _, err := client.For[*appsv1.ReplicaSet](e.Client).List(ctx, ns, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var desc []string
		zeroed := 0
		for _, rs := range rss {
			desc = append(desc, fmt.Sprintf("%s(rev %s, %d)", rs.Name, rs.Annotations["deployment.kubernetes.io/revision"], *rs.Spec.Replicas))
			if *rs.Spec.Replicas == 0 {
				zeroed++
			}
		}
		return len(rss) == 2 && zeroed == 1, fmt.Errorf("replicasets %v", desc)
	})
}

func rollingStrategy(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}
