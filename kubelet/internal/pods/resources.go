package pods

import (
	"bufio"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// Upstream's conversions (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	// quotaPeriod is the CFS period in µs: 100 ms.
	quotaPeriod = 100000
	// minQuotaPeriod is the smallest CFS quota in µs: 1 ms.
	minQuotaPeriod = 1000
)

// milliCPUToShares converts a CPU request to cpu.shares: 1024 per CPU,
// within [2, 262144]; no request is the minimum, 2.
func milliCPUToShares(milliCPU int64) uint64 {
	if milliCPU == 0 {
		return minShares
	}
	shares := (milliCPU * sharesPerCPU) / milliCPUToCPU
	if shares < minShares {
		return minShares
	}
	if shares > maxShares {
		return maxShares
	}
	return uint64(shares)
}

// milliCPUToQuota converts a CPU limit to a CFS quota over period (µs),
// at least 1 ms; no limit is 0.
func milliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	quota := (milliCPU * period) / milliCPUToCPU
	if quota < minQuotaPeriod {
		quota = minQuotaPeriod
	}
	return quota
}

// OOM score adjustments of the QoS classes (pkg/kubelet/qos/policy.go).
const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// oomScoreAdj is the container's oom_score_adj as upstream's kubelet sets
// it: Guaranteed pods -997, BestEffort 1000, Burstable between by the share
// of the node's memory the container requests.
func oomScoreAdj(qos corev1.PodQOSClass, c *corev1.Container, memoryCapacity int64) int {
	switch qos {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case corev1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	if memoryCapacity <= 0 {
		return besteffortOOMScoreAdj - 1
	}
	req := c.Resources.Requests.Memory().Value()
	adj := 1000 - (1000*req)/memoryCapacity
	// Burstable containers stay above Guaranteed ones and below
	// BestEffort ones.
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return int(adj - 1)
	}
	return int(adj)
}

// containerResources are the container's cgroup settings, as upstream's
// kubelet computes them: cpu.shares from the CPU request (the limit when
// only that is set), a CFS quota over a 100 ms period from the CPU limit,
// the memory limit, and the QoS class's oom_score_adj.
func containerResources(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) containerruntime.Resources {
	cpuReq := c.Resources.Requests.Cpu()
	cpuLim := c.Resources.Limits.Cpu()
	var r containerruntime.Resources
	if cpuReq.IsZero() && !cpuLim.IsZero() {
		r.CPUShares = milliCPUToShares(cpuLim.MilliValue())
	} else {
		r.CPUShares = milliCPUToShares(cpuReq.MilliValue())
	}
	if q := milliCPUToQuota(cpuLim.MilliValue(), quotaPeriod); q > 0 {
		r.CPUQuota, r.CPUPeriod = q, quotaPeriod
	}
	r.MemoryLimit = c.Resources.Limits.Memory().Value()
	adj := max(oomScoreAdj(qosClass(pod), c, memoryCapacity), oomScoreAdjFloor())
	r.OOMScoreAdj = &adj
	return r
}

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/<pid>/status CapEff.
const capSysResource = 24

// oomScoreAdjFloor is the lowest oom_score_adj a container may be given:
// below the kubelet's own it takes CAP_SYS_RESOURCE, which some hosts (a
// container or sandbox running the kubelet) withhold, and runc then fails
// to start the container ("can't get final child's PID from pipe"). With
// the capability there is no floor (-1000), as upstream assumes.
var oomScoreAdjFloor = sync.OnceValue(func() int {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1000
	}
	own, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return -1000
	}
	return oomFloor(string(status), string(own))
})

// oomFloor computes oomScoreAdjFloor from /proc/self/status and
// /proc/self/oom_score_adj.
func oomFloor(status, ownAdj string) int {
	for line := range strings.Lines(status) {
		v, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil || caps&(1<<capSysResource) != 0 {
			return -1000
		}
		own, err := strconv.Atoi(strings.TrimSpace(ownAdj))
		if err != nil {
			return -1000
		}
		return own
	}
	return -1000
}

// podCgroupParent is the pod's cgroup under root, as upstream's cgroupfs
// layout: <root>/kubepods/pod<uid> for Guaranteed pods,
// <root>/kubepods/{burstable,besteffort}/pod<uid> for the others.
func podCgroupParent(root string, pod *corev1.Pod) string {
	if root == "" {
		root = "/"
	}
	p := path.Join(root, "kubepods")
	switch qosClass(pod) {
	case corev1.PodQOSBurstable:
		p = path.Join(p, "burstable")
	case corev1.PodQOSBestEffort:
		p = path.Join(p, "besteffort")
	}
	return path.Join(p, "pod"+string(pod.UID))
}

// podCgroupCandidates are the cgroups a pod of any QoS class would have.
func podCgroupCandidates(root string, uid types.UID) []string {
	var out []string
	for _, qos := range []corev1.PodQOSClass{corev1.PodQOSGuaranteed, corev1.PodQOSBurstable, corev1.PodQOSBestEffort} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: corev1.PodStatus{QOSClass: qos}}
		out = append(out, podCgroupParent(root, pod))
	}
	return out
}

// machineMemory is the node's memory from /proc/meminfo; 0 when unknown.
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
