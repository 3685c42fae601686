package deployment

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolveFenceposts(t *testing.T) {
	for _, tc := range []struct {
		surge, unavailable intstr.IntOrString
		replicas           int32
		wantS, wantU       int32
	}{
		{intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2}, // surge rounds up, unavailable down
		{intstr.FromString("25%"), intstr.FromString("25%"), 1000, 250, 250},
		{intstr.FromInt32(0), intstr.FromInt32(0), 5, 0, 1}, // both zero: one unavailable
		{intstr.FromInt32(2), intstr.FromInt32(0), 5, 2, 0},
		{intstr.FromString("0%"), intstr.FromString("10%"), 5, 0, 1}, // 0.5 rounds down to 0, then 1
	} {
		s, u, err := ResolveFenceposts(&tc.surge, &tc.unavailable, tc.replicas)
		if err != nil || s != tc.wantS || u != tc.wantU {
			t.Errorf("ResolveFenceposts(%s, %s, %d) = %d, %d, %v; want %d, %d", tc.surge.String(), tc.unavailable.String(), tc.replicas, s, u, err, tc.wantS, tc.wantU)
		}
	}
}

func rs(replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
}

func TestNewRSNewReplicas(t *testing.T) {
	surge, unavailable := intstr.FromInt32(2), intstr.FromInt32(1)
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Replicas: new(int32(10)),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
	}}
	for _, tc := range []struct {
		name     string
		old, new int32
		want     int32
	}{
		{"start: surge 2", 10, 0, 2},
		{"at the surge cap", 9, 3, 3},
		{"room for more", 5, 5, 7},
		{"never beyond replicas", 0, 9, 10},
	} {
		newRS := rs(tc.new)
		got, err := NewRSNewReplicas(d, []*appsv1.ReplicaSet{rs(tc.old), newRS}, newRS)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	recreate := d.DeepCopy()
	recreate.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if got, _ := NewRSNewReplicas(recreate, []*appsv1.ReplicaSet{rs(10), rs(0)}, rs(0)); got != 10 {
		t.Errorf("Recreate: got %d, want 10", got)
	}
	if got := MaxUnavailable(recreate); got != 0 {
		t.Errorf("Recreate MaxUnavailable = %d, want 0", got)
	}
}

func TestHashAndEquality(t *testing.T) {
	a := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "v1"}}}}
	b := *a.DeepCopy()
	b.Labels[PodTemplateHashLabel] = ComputeHash(&a, nil)
	if !EqualIgnoreHash(&a, &b) {
		t.Error("templates differing only by the hash label are not equal")
	}
	if ComputeHash(&a, nil) != ComputeHash(a.DeepCopy(), nil) {
		t.Error("hash is not stable")
	}
	one := int32(1)
	if ComputeHash(&a, nil) == ComputeHash(&a, &one) {
		t.Error("collision count does not change the hash")
	}
	c := *a.DeepCopy()
	c.Spec.Containers[0].Image = "v2"
	if EqualIgnoreHash(&a, &c) || ComputeHash(&a, nil) == ComputeHash(&c, nil) {
		t.Error("different images compare equal or hash the same")
	}
}

// Right after a scale-down the old ReplicaSet's status still counts the
// pods being deleted; they must not count towards the availability that
// allows the next scale-down.
func TestKeptAvailable(t *testing.T) {
	rs := func(spec, available int32) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: &spec}, Status: appsv1.ReplicaSetStatus{AvailableReplicas: available}}
	}
	for _, tc := range []struct {
		rss  []*appsv1.ReplicaSet
		want int32
	}{
		{[]*appsv1.ReplicaSet{rs(75, 100), rs(25, 25)}, 100}, // old just scaled down from 100: counts 75
		{[]*appsv1.ReplicaSet{rs(100, 100), rs(25, 0)}, 100},
		{[]*appsv1.ReplicaSet{rs(50, 40), nil, rs(0, 3)}, 40},
	} {
		if got := keptAvailable(tc.rss); got != tc.want {
			t.Errorf("keptAvailable = %d, want %d", got, tc.want)
		}
	}
}
