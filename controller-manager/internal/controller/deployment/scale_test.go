package deployment

import (
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestProportionalSizes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// sized is a ReplicaSet of replicas, last sized for a Deployment with
	// maxReplicas (replicas + maxSurge), created at minute age.
	sized := func(name string, replicas, maxReplicas int32, minute int) *appsv1.ReplicaSet {
		r := rs(replicas)
		r.Name = name
		r.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(minute) * time.Minute))
		r.Annotations = map[string]string{MaxReplicasAnnotation: strconv.Itoa(int(maxReplicas))}
		return r
	}
	deployment := func(replicas int32) *appsv1.Deployment {
		pct := intstr.FromString("25%")
		return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &pct, MaxUnavailable: &pct}},
		}}
	}
	for _, tc := range []struct {
		name      string
		replicas  int32
		all       []*appsv1.ReplicaSet
		wantNames []string
		want      []int32
	}{
		{
			// A stalled rollout of 10 (old 8, new 5 of at most 13) scaled
			// to 20 (at most 25): 8*25/13 = 15.4, 5*25/13 = 9.6.
			name: "up", replicas: 20,
			all:       []*appsv1.ReplicaSet{sized("new", 5, 13, 1), sized("old", 8, 13, 0)},
			wantNames: []string{"old", "new"}, want: []int32{15, 10},
		},
		{
			name: "down", replicas: 10,
			all:       []*appsv1.ReplicaSet{sized("new", 10, 25, 1), sized("old", 15, 25, 0)},
			wantNames: []string{"old", "new"}, want: []int32{8, 5},
		},
		{
			// Equal sizes: growing favours the newer one with the leftover.
			name: "up ties", replicas: 5,
			all:       []*appsv1.ReplicaSet{sized("old", 2, 4, 0), sized("new", 2, 4, 1)},
			wantNames: []string{"new", "old"}, want: []int32{4, 3},
		},
		{
			name: "to zero", replicas: 0,
			all:       []*appsv1.ReplicaSet{sized("old", 3, 13, 0), sized("new", 4, 13, 1)},
			wantNames: []string{"new", "old"}, want: []int32{0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := proportionalSizes(deployment(tc.replicas), tc.all)
			var names []string
			var total int32
			for i, r := range tc.all {
				names = append(names, r.Name)
				total += got[i]
			}
			if !slices.Equal(names, tc.wantNames) || !slices.Equal(got, tc.want) {
				t.Errorf("sizes %v %v, want %v %v", names, got, tc.wantNames, tc.want)
			}
			if allowed := tc.replicas + MaxSurge(deployment(tc.replicas)); tc.replicas > 0 && total != allowed {
				t.Errorf("total %d, want replicas+maxSurge %d", total, allowed)
			}
		})
	}
}

func TestActiveOrLatest(t *testing.T) {
	older, newer := rs(0), rs(0)
	older.Name, newer.Name = "older", "newer"
	newer.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := activeOrLatest(nil, []*appsv1.ReplicaSet{newer, older}); got != newer {
		t.Errorf("none active: got %v, want the newest", got)
	}
	active := rs(3)
	if got := activeOrLatest(newer, []*appsv1.ReplicaSet{active, older}); got != active {
		t.Errorf("one active: got %v, want it", got)
	}
	if got := activeOrLatest(rs(1), []*appsv1.ReplicaSet{active}); got != nil {
		t.Errorf("two active: got %v, want nil", got)
	}
}
