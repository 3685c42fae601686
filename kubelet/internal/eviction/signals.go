package eviction

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
)

// observation is one signal's reading: what is available of capacity.
type observation struct {
	available int64
	capacity  int64
	at        time.Time
}

// observations are the signals read from one summary.
type observations map[Signal]observation

// observe reads the signals from the node's summary as upstream's
// makeSignalObservations does: memory.available is the summary's
// available memory (capacity less the root cgroup's working set) and its
// capacity that plus the working set; nodefs is the kubelet root's
// filesystem, imagefs the runtime's; pid.available is pid_max less the
// processes running.
func observe(s *stats.Summary) observations {
	out := observations{}
	if s == nil {
		return out
	}
	n := s.Node
	if m := n.Memory; m != nil && m.AvailableBytes != nil && m.WorkingSetBytes != nil {
		out[SignalMemoryAvailable] = observation{
			available: int64(*m.AvailableBytes), capacity: int64(*m.AvailableBytes + *m.WorkingSetBytes), at: m.Time.Time,
		}
	}
	fsObserve := func(fs *stats.FsStats, bytes, inodes Signal) {
		if fs == nil {
			return
		}
		if fs.AvailableBytes != nil && fs.CapacityBytes != nil {
			out[bytes] = observation{available: int64(*fs.AvailableBytes), capacity: int64(*fs.CapacityBytes), at: fs.Time.Time}
		}
		if fs.InodesFree != nil && fs.Inodes != nil {
			out[inodes] = observation{available: int64(*fs.InodesFree), capacity: int64(*fs.Inodes), at: fs.Time.Time}
		}
	}
	fsObserve(n.Fs, SignalNodeFsAvailable, SignalNodeFsInodesFree)
	if n.Runtime != nil {
		fsObserve(n.Runtime.ImageFs, SignalImageFsAvailable, SignalImageFsInodesFree)
	}
	if r := n.Rlimit; r != nil && r.MaxPID != nil && r.NumOfRunningProcesses != nil {
		out[SignalPIDAvailable] = observation{available: *r.MaxPID - *r.NumOfRunningProcesses, capacity: *r.MaxPID, at: r.Time.Time}
	}
	return out
}

// thresholdsMet are the thresholds whose signal is below their value
// (plus the minimum reclaim when enforceMinReclaim: a threshold met
// before holds until that much more is free).
func thresholdsMet(ts []Threshold, obs observations, enforceMinReclaim bool) []Threshold {
	var out []Threshold
	for _, t := range ts {
		o, ok := obs[t.Signal]
		if !ok {
			continue
		}
		want := t.Value.amount(o.capacity)
		if enforceMinReclaim && t.MinReclaim != nil {
			want += t.MinReclaim.amount(o.capacity)
		}
		if o.available < want {
			out = append(out, t)
		}
	}
	return out
}

// mergeThresholds is a ∪ b, by signal.
func mergeThresholds(a, b []Threshold) []Threshold {
	out := append([]Threshold(nil), a...)
	for _, t := range b {
		if !hasSignal(out, t.Signal) {
			out = append(out, t)
		}
	}
	return out
}

func hasSignal(ts []Threshold, s Signal) bool {
	for _, t := range ts {
		if t.Signal == s {
			return true
		}
	}
	return false
}

// Resources reclaimed, as upstream names them: inodes and pids are the
// eviction manager's own.
const (
	resourceInodes corev1.ResourceName = "inodes"
	resourcePids   corev1.ResourceName = "pids"
)

// signalResource is the resource a signal starves.
func signalResource(s Signal) corev1.ResourceName {
	switch s {
	case SignalMemoryAvailable:
		return corev1.ResourceMemory
	case SignalNodeFsAvailable, SignalImageFsAvailable:
		return corev1.ResourceEphemeralStorage
	case SignalNodeFsInodesFree, SignalImageFsInodesFree:
		return resourceInodes
	default:
		return resourcePids
	}
}

// signalCondition is the node condition a signal's pressure sets.
func signalCondition(s Signal) corev1.NodeConditionType {
	switch s {
	case SignalMemoryAvailable:
		return corev1.NodeMemoryPressure
	case SignalPIDAvailable:
		return corev1.NodePIDPressure
	default:
		return corev1.NodeDiskPressure
	}
}

// signalOrder is upstream's byEvictionPriority: memory is reclaimed first,
// then disk space, then inodes, then pids.
func signalOrder(s Signal) int {
	switch signalResource(s) {
	case corev1.ResourceMemory:
		return 0
	case corev1.ResourceEphemeralStorage:
		return 1
	case resourceInodes:
		return 2
	default:
		return 3
	}
}
