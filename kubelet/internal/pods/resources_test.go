package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

func TestMilliCPUToShares(t *testing.T) {
	for milli, want := range map[int64]uint64{
		0: 2, 1: 2, 2: 2, 5: 5, 100: 102, 250: 256, 500: 512, 1000: 1024, 1500: 1536, 256000: 262144, 300000: 262144,
	} {
		if got := milliCPUToShares(milli); got != want {
			t.Errorf("milliCPUToShares(%d) = %d, want %d", milli, got, want)
		}
	}
}

func TestMilliCPUToQuota(t *testing.T) {
	for milli, want := range map[int64]int64{0: 0, 1: 1000, 5: 1000, 10: 1000, 100: 10000, 250: 25000, 1000: 100000, 1500: 150000} {
		if got := milliCPUToQuota(milli, quotaPeriod); got != want {
			t.Errorf("milliCPUToQuota(%d) = %d, want %d", milli, got, want)
		}
	}
}

func resources(req, lim map[corev1.ResourceName]string) corev1.ResourceRequirements {
	conv := func(m map[corev1.ResourceName]string) corev1.ResourceList {
		if m == nil {
			return nil
		}
		out := corev1.ResourceList{}
		for k, v := range m {
			out[k] = resource.MustParse(v)
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: conv(req), Limits: conv(lim)}
}

func TestContainerResources(t *testing.T) {
	const gi = int64(1 << 30)
	adj := func(v int) *int { return &v }
	for _, tc := range []struct {
		name string
		res  corev1.ResourceRequirements
		want containerruntime.Resources
	}{
		{"best effort", resources(nil, nil), containerruntime.Resources{CPUShares: 2, OOMScoreAdj: adj(1000)}},
		{"requests only", resources(map[corev1.ResourceName]string{"cpu": "250m", "memory": "1Gi"}, nil),
			containerruntime.Resources{CPUShares: 256, OOMScoreAdj: adj(1000 - 1000/4)}},
		{"limits only (requests default to them)", resources(nil, map[corev1.ResourceName]string{"cpu": "500m", "memory": "64Mi"}),
			// Guaranteed: -997, unless this host withholds CAP_SYS_RESOURCE.
			containerruntime.Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20, OOMScoreAdj: adj(max(-997, oomScoreAdjFloor()))}},
		{"burstable", resources(map[corev1.ResourceName]string{"cpu": "100m"}, map[corev1.ResourceName]string{"cpu": "2", "memory": "2Gi"}),
			containerruntime.Resources{CPUShares: 102, CPUQuota: 200000, CPUPeriod: 100000, MemoryLimit: 2 * gi, OOMScoreAdj: adj(999)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: tc.res}}}}
			got := containerResources(pod, &pod.Spec.Containers[0], 4*gi)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOOMScoreAdjBurstableBounds(t *testing.T) {
	c := &corev1.Container{Resources: resources(map[corev1.ResourceName]string{"memory": "4Gi"}, nil)}
	if got := oomScoreAdj(corev1.PodQOSBurstable, c, 1<<30); got != 3 {
		t.Errorf("a request above capacity: oom_score_adj %d, want 3 (just above Guaranteed)", got)
	}
	c = &corev1.Container{Resources: resources(map[corev1.ResourceName]string{"memory": "1"}, nil)}
	if got := oomScoreAdj(corev1.PodQOSBurstable, c, 1<<30); got != 999 {
		t.Errorf("a tiny request: oom_score_adj %d, want 999 (just below BestEffort)", got)
	}
}

func TestPodCgroupParent(t *testing.T) {
	mk := func(res corev1.ResourceRequirements) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: res}}}}
	}
	guaranteed := resources(map[corev1.ResourceName]string{"cpu": "1", "memory": "1Gi"}, map[corev1.ResourceName]string{"cpu": "1", "memory": "1Gi"})
	burstable := resources(map[corev1.ResourceName]string{"cpu": "1"}, nil)
	for _, tc := range []struct {
		root string
		pod  *corev1.Pod
		want string
	}{
		{"/", mk(guaranteed), "/kubepods/podu1"},
		{"", mk(burstable), "/kubepods/burstable/podu1"},
		{"/node-a", mk(corev1.ResourceRequirements{}), "/node-a/kubepods/besteffort/podu1"},
	} {
		if got := podCgroupParent(tc.root, tc.pod); got != tc.want {
			t.Errorf("podCgroupParent(%q) = %q, want %q", tc.root, got, tc.want)
		}
	}
	want := []string{"/kubepods/podu1", "/kubepods/burstable/podu1", "/kubepods/besteffort/podu1"}
	if diff := cmp.Diff(want, podCgroupCandidates("/", "u1")); diff != "" {
		t.Errorf("candidates (-want +got):\n%s", diff)
	}
}

func TestOOMFloor(t *testing.T) {
	for _, tc := range []struct {
		status, own string
		want        int
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", "0\n", -1000},   // CAP_SYS_RESOURCE held
		{"Name:\tx\nCapEff:\t000001fffeffffff\n", "0\n", 0},       // withheld: not below our own
		{"Name:\tx\nCapEff:\t000001fffeffffff\n", "-500\n", -500}, // a kubelet started lower
		{"Name:\tx\n", "0\n", -1000},                              // unreadable: as upstream
	} {
		if got := oomFloor(tc.status, tc.own); got != tc.want {
			t.Errorf("oomFloor(%q, %q) = %d, want %d", tc.status, tc.own, got, tc.want)
		}
	}
}
