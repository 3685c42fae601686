package imagelocality

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func withImages(n *corev1.Node, images ...corev1.ContainerImage) *corev1.Node {
	n.Status.Images = images
	return n
}

func podWithImages(images ...string) *corev1.Pod {
	p := fixture.Pod("p").Obj()
	for _, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: img, Image: img})
	}
	return p
}

func TestScore(t *testing.T) {
	const mb = 1024 * 1024
	// node1 has a 40MB and a 300MB image, node2 a 250MB one and a 2GB one,
	// node3 nothing.
	nodes := []*corev1.Node{
		withImages(fixture.Node("node1", "1", "1Gi").Obj(),
			corev1.ContainerImage{Names: []string{"gcr.io/40:latest", "gcr.io/40:v1"}, SizeBytes: 40 * mb},
			corev1.ContainerImage{Names: []string{"gcr.io/300:latest"}, SizeBytes: 300 * mb}),
		withImages(fixture.Node("node2", "1", "1Gi").Obj(),
			corev1.ContainerImage{Names: []string{"gcr.io/250:latest"}, SizeBytes: 250 * mb},
			corev1.ContainerImage{Names: []string{"gcr.io/2000:latest"}, SizeBytes: 2000 * mb}),
		fixture.Node("node3", "1", "1Gi").Obj(),
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want map[string]int64
	}{
		// Upstream's cases, with three nodes: 40MB on 1 of 3 nodes scales
		// to 13MB, below the 23MB threshold.
		{"small image", podWithImages("gcr.io/40"), map[string]int64{"node1": 0, "node2": 0, "node3": 0}},
		// Three containers cap at 3000MB. node1: 40/3 + 300/3 = 113MB:
		// 100*(113-23)/(3000-23) = 3; node2: 250/3 = 83MB: 100*60/2977 = 2.
		{"two containers", podWithImages("gcr.io/40", "gcr.io/300", "gcr.io/250"), map[string]int64{"node1": 3, "node2": 2, "node3": 0}},
		{"tag and no tag are the same image", podWithImages("gcr.io/300:latest"), map[string]int64{"node1": 7, "node2": 0, "node3": 0}},
		// 300/3 = 100MB: 100*77/977 = 7; 2000/3 = 667MB: 100*644/977 = 65.
		{"huge image", podWithImages("gcr.io/2000"), map[string]int64{"node1": 0, "node2": 65, "node3": 0}},
	}
	snap := cache.NewSnapshotFrom(nodes, nil)
	pl, err := New(nil, framework.NewHandle(snap, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := pl.(*Plugin)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ni := range snap.List() {
				got, st := p.Score(context.Background(), framework.NewCycleState(), tt.pod, ni)
				if !st.IsSuccess() {
					t.Fatal(st.Message())
				}
				if want := tt.want[ni.Node().Name]; got != want {
					t.Errorf("Score(%s) = %d, want %d", ni.Node().Name, got, want)
				}
			}
		})
	}
}

func TestImageSpreadCounting(t *testing.T) {
	img := corev1.ContainerImage{Names: []string{"busybox"}, SizeBytes: 500 * 1024 * 1024}
	nodes := []*corev1.Node{
		withImages(fixture.Node("a", "1", "1Gi").Obj(), img),
		withImages(fixture.Node("b", "1", "1Gi").Obj(), img),
	}
	snap := cache.NewSnapshotFrom(nodes, nil)
	if got := snap.ImageNumNodes("busybox:latest"); got != 2 {
		t.Errorf("ImageNumNodes(busybox:latest) = %d, want 2", got)
	}
}

// TestPreScoreSkip checks that the plugin is skipped only when no node
// holds any of the pod's images (every score would be 0).
func TestPreScoreSkip(t *testing.T) {
	nodes := []*corev1.Node{
		withImages(fixture.Node("node1", "1", "1Gi").Obj(), corev1.ContainerImage{Names: []string{"gcr.io/a:v1"}, SizeBytes: 1 << 30}),
		fixture.Node("node2", "1", "1Gi").Obj(),
	}
	snap := cache.NewSnapshotFrom(nodes, nil)
	pl, err := New(nil, framework.NewHandle(snap, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := pl.(*Plugin)
	for _, tt := range []struct {
		pod  *corev1.Pod
		skip bool
	}{
		{podWithImages("gcr.io/b"), true},
		{podWithImages("gcr.io/b", "gcr.io/a:v1"), false},
	} {
		st := p.PreScore(context.Background(), framework.NewCycleState(), tt.pod, snap.List())
		if got := st.IsSkip(); got != tt.skip {
			t.Errorf("PreScore(%v) skip = %v, want %v", tt.pod.Spec.Containers, got, tt.skip)
		}
	}
}
