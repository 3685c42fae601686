package eviction

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
)

// podStatsFunc is a pod's stats from the summary, false when it has none.
type podStatsFunc func(*corev1.Pod) (stats.PodStats, bool)

func statsByUID(s *stats.Summary) podStatsFunc {
	byUID := map[string]stats.PodStats{}
	if s != nil {
		for _, p := range s.Pods {
			byUID[p.PodRef.UID] = p
		}
	}
	return func(p *corev1.Pod) (stats.PodStats, bool) {
		ps, ok := byUID[string(p.UID)]
		return ps, ok
	}
}

// rankPods orders the pods for eviction to reclaim signal's resource, as
// upstream's rank functions: for memory and disk space the pods whose
// usage exceeds their requests first, then by priority (lowest first),
// then by usage above requests (largest first); for inodes and pids by
// priority, then usage. Pods without stats go first, as upstream's.
func rankPods(pods []*corev1.Pod, signal Signal, statsOf podStatsFunc) {
	res := signalResource(signal)
	usage := func(p *corev1.Pod) (int64, bool) {
		ps, ok := statsOf(p)
		if !ok {
			return 0, false
		}
		return podUsage(ps, signal), true
	}
	type key struct {
		found    bool
		exceeds  bool
		priority int32
		above    int64 // usage - request
	}
	keys := make(map[*corev1.Pod]key, len(pods))
	for _, p := range pods {
		u, found := usage(p)
		var req int64
		if res == corev1.ResourceMemory || res == corev1.ResourceEphemeralStorage {
			r := podRequest(p, res)
			req = r.Value()
		}
		keys[p] = key{found: found, exceeds: u > req, priority: priority(p), above: u - req}
	}
	withRequests := res == corev1.ResourceMemory || res == corev1.ResourceEphemeralStorage
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := keys[pods[i]], keys[pods[j]]
		if a.found != b.found {
			return !a.found
		}
		if withRequests && a.exceeds != b.exceeds {
			return a.exceeds
		}
		if a.priority != b.priority {
			return a.priority < b.priority
		}
		return a.above > b.above
	})
}

func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// podUsage is what the pod uses of signal's resource: the containers'
// working set for memory; for nodefs its ephemeral storage (writable
// layers, logs, local volumes), for imagefs its writable layers; inodes
// likewise; the process count for pids.
func podUsage(ps stats.PodStats, signal Signal) int64 {
	var u uint64
	switch signal {
	case SignalMemoryAvailable:
		for _, c := range ps.Containers {
			if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
				u += *c.Memory.WorkingSetBytes
			}
		}
	case SignalNodeFsAvailable:
		if e := ps.EphemeralStorage; e != nil && e.UsedBytes != nil {
			u = *e.UsedBytes
		}
	case SignalNodeFsInodesFree:
		if e := ps.EphemeralStorage; e != nil && e.InodesUsed != nil {
			u = *e.InodesUsed
		}
	case SignalImageFsAvailable, SignalImageFsInodesFree:
		for _, c := range ps.Containers {
			if c.Rootfs == nil {
				continue
			}
			if signal == SignalImageFsAvailable && c.Rootfs.UsedBytes != nil {
				u += *c.Rootfs.UsedBytes
			}
			if signal == SignalImageFsInodesFree && c.Rootfs.InodesUsed != nil {
				u += *c.Rootfs.InodesUsed
			}
		}
	case SignalPIDAvailable:
		if ps.ProcessStats != nil && ps.ProcessStats.ProcessCount != nil {
			u = *ps.ProcessStats.ProcessCount
		}
	}
	return int64(u)
}

// podRequest is the pod's effective request of res, as upstream's
// resource helpers: the regular containers and sidecars summed, or the
// largest init container (with the sidecars started before it) when
// more, plus the pod overhead.
func podRequest(p *corev1.Pod, res corev1.ResourceName) resource.Quantity {
	var sum, sidecars, maxInit resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests[res]; ok {
			sum.Add(q)
		}
	}
	for _, c := range p.Spec.InitContainers {
		q := c.Resources.Requests[res]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sum.Add(q)
			sidecars.Add(q)
			continue
		}
		q.Add(sidecars)
		if q.Cmp(maxInit) > 0 {
			maxInit = q
		}
	}
	if maxInit.Cmp(sum) > 0 {
		sum = maxInit
	}
	if q, ok := p.Spec.Overhead[res]; ok {
		sum.Add(q)
	}
	return sum
}
