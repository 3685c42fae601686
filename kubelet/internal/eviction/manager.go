// Package eviction is the kubelet's eviction manager, as upstream's
// pkg/kubelet/eviction: every 10 s it reads the node's signals
// (memory.available, nodefs.available and nodefs.inodesFree of the
// kubelet's root, imagefs.available and imagefs.inodesFree of the
// runtime's, pid.available) from the stats provider, compares them with
// the hard thresholds of --eviction-hard, reports the node's
// MemoryPressure, DiskPressure and PIDPressure (held for
// --eviction-pressure-transition-period after the last time a threshold
// was met) and, while a threshold is met, evicts one pod per cycle: the
// first of the pods ranked as upstream ranks them for the starved
// resource that is not critical. The evicted pod's containers are killed
// at once (grace 0: the thresholds are hard), its status becomes phase
// Failed, reason Evicted, and an Evicted Event says why.
package eviction

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
)

// Reason is the evicted pods' status reason and their Events'.
const Reason = "Evicted"

// DefaultInterval is how often the signals are read (upstream's
// evictionMonitoringPeriod).
const DefaultInterval = 10 * time.Second

// StatsSource is the stats provider (*stats.Provider): its summary of the
// last samples, and the node's memory and root filesystem read afresh
// (nil: the summary's).
type StatsSource interface {
	Summary(ctx context.Context, onlyCPUAndMemory bool) (*stats.Summary, error)
	FreshNode() (*stats.MemoryStats, *stats.FsStats, error)
}

// Evicter stops an evicted pod: kills its containers with no grace and
// writes status (phase Failed, reason Evicted) as the pod's status.
type Evicter interface {
	Evict(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error
}

// Recorder records Events; pkg/events' *Recorder is one.
type Recorder interface {
	Eventf(obj runtime.Object, eventType, reason, action, format string, args ...any)
}

// Config configures a Manager.
type Config struct {
	Thresholds []Threshold
	// PressureTransitionPeriod is how long a pressure condition holds
	// after its threshold was last met (5 min).
	PressureTransitionPeriod time.Duration
	Interval                 time.Duration // DefaultInterval when 0
	Stats                    StatsSource
	// Pods returns the pods bound to the node.
	Pods     func() []*corev1.Pod
	Evicter  Evicter
	Recorder Recorder // nil: no Events
	Logger   *zap.Logger
	Now      func() time.Time // time.Now when nil
}

// Manager is the eviction manager.
type Manager struct {
	cfg    Config
	logger *zap.Logger

	mu sync.Mutex
	// met are the thresholds met at the last cycle (held until their
	// minimum reclaim is free).
	met []Threshold
	// lastObserved is when each pressure condition's threshold was last met.
	lastObserved map[corev1.NodeConditionType]time.Time
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.PressureTransitionPeriod <= 0 {
		cfg.PressureTransitionPeriod = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, logger: cfg.Logger, lastObserved: map[corev1.NodeConditionType]time.Time{}}
}

// Run checks the signals every Interval until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	if len(m.cfg.Thresholds) == 0 {
		return
	}
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := m.Synchronize(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("eviction manager cycle failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// UnderPressure reports whether the node has the pressure condition t
// (MemoryPressure, DiskPressure, PIDPressure).
func (m *Manager) UnderPressure(t corev1.NodeConditionType) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.lastObserved[t]
	return ok && m.cfg.Now().Sub(last) < m.cfg.PressureTransitionPeriod
}

// Synchronize runs one cycle: it reads the signals, updates the pressure
// conditions and, when a threshold is met, evicts one pod, which it
// returns.
func (m *Manager) Synchronize(ctx context.Context) (*corev1.Pod, error) {
	summary, err := m.cfg.Stats.Summary(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("read the node's stats: %w", err)
	}
	// The node's memory and root filesystem afresh (the summary's may be
	// from before the last eviction ended).
	if mem, fs, err := m.cfg.Stats.FreshNode(); err != nil {
		m.logger.Warn("read the node's memory and filesystem", zap.Error(err))
	} else {
		if mem != nil {
			summary.Node.Memory = mem
		}
		if fs != nil {
			summary.Node.Fs = fs
		}
	}
	obs := observe(summary)
	now := m.cfg.Now()
	m.mu.Lock()
	met := mergeThresholds(thresholdsMet(m.cfg.Thresholds, obs, false), thresholdsMet(m.met, obs, true))
	for _, t := range met {
		m.lastObserved[signalCondition(t.Signal)] = now
	}
	newlyMet := len(met) > 0 && len(m.met) == 0
	m.met = met
	m.mu.Unlock()
	if len(met) == 0 {
		return nil, nil
	}
	sort.SliceStable(met, func(i, j int) bool { return signalOrder(met[i].Signal) < signalOrder(met[j].Signal) })
	t := met[0]
	o := obs[t.Signal]
	if newlyMet {
		m.logger.Warn("eviction threshold met", zap.String("signal", string(t.Signal)), zap.Stringer("threshold", t.Value),
			zap.Int64("available", o.available), zap.Int64("capacity", o.capacity))
	}
	var active []*corev1.Pod
	for _, p := range m.cfg.Pods() {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			active = append(active, p)
		}
	}
	statsOf := statsByUID(summary)
	rankPods(active, t.Signal, statsOf)
	for _, p := range active {
		if isCritical(p) {
			m.logger.Info("a critical pod is not evicted", zap.String("pod", p.Namespace+"/"+p.Name))
			continue
		}
		msg := evictionMessage(p, t, o, statsOf)
		m.logger.Info("evicting pod", zap.String("pod", p.Namespace+"/"+p.Name), zap.String("signal", string(t.Signal)), zap.String("message", msg))
		if m.cfg.Recorder != nil {
			m.cfg.Recorder.Eventf(p, corev1.EventTypeWarning, Reason, "", "%s", msg)
		}
		if err := m.cfg.Evicter.Evict(ctx, p, evictedStatus(p, msg, now)); err != nil {
			return nil, fmt.Errorf("evict pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		return p, nil
	}
	m.logger.Warn("eviction threshold met but no pod can be evicted", zap.String("signal", string(t.Signal)))
	return nil, nil
}

// Upstream's annotations of the pod's config source: static (file,
// http) and mirror pods are critical.
const (
	configSourceAnnotation = "kubernetes.io/config.source"
	configMirrorAnnotation = "kubernetes.io/config.mirror"
	// systemCriticalPriority is upstream's scheduling.SystemCriticalPriority.
	systemCriticalPriority = 2_000_000_000
)

// isCritical is upstream's IsCriticalPod: static and mirror pods, and
// pods of system-critical priority, are never evicted.
func isCritical(p *corev1.Pod) bool {
	if src, ok := p.Annotations[configSourceAnnotation]; ok && src != "api" {
		return true
	}
	if _, ok := p.Annotations[configMirrorAnnotation]; ok {
		return true
	}
	return p.Spec.Priority != nil && *p.Spec.Priority >= systemCriticalPriority
}

// evictionMessage is upstream's: the starved resource, the threshold and
// what was available, and each container using more than it requested.
func evictionMessage(p *corev1.Pod, t Threshold, o observation, statsOf podStatsFunc) string {
	res := signalResource(t.Signal)
	var b strings.Builder
	fmt.Fprintf(&b, "The node was low on resource: %v. ", res)
	fmt.Fprintf(&b, "Threshold quantity: %v, available: %v. ", quantity(res, t.Value.amount(o.capacity)), quantity(res, o.available))
	ps, ok := statsOf(p)
	if !ok {
		return strings.TrimSpace(b.String())
	}
	for _, cs := range ps.Containers {
		for _, c := range p.Spec.Containers {
			if c.Name != cs.Name {
				continue
			}
			var usage *resource.Quantity
			switch res {
			case corev1.ResourceMemory:
				if cs.Memory != nil && cs.Memory.WorkingSetBytes != nil {
					usage = resource.NewQuantity(int64(*cs.Memory.WorkingSetBytes), resource.BinarySI)
				}
			case corev1.ResourceEphemeralStorage:
				if cs.Rootfs != nil && cs.Rootfs.UsedBytes != nil && cs.Logs != nil && cs.Logs.UsedBytes != nil {
					usage = resource.NewQuantity(int64(*cs.Rootfs.UsedBytes+*cs.Logs.UsedBytes), resource.BinarySI)
				}
			}
			req := c.Resources.Requests[res]
			if usage != nil && usage.Cmp(req) > 0 {
				fmt.Fprintf(&b, "Container %s was using %s, request is %s, has larger consumption of %v. ", c.Name, usage.String(), req.String(), res)
			}
		}
	}
	return strings.TrimSpace(b.String())
}

func quantity(res corev1.ResourceName, v int64) *resource.Quantity {
	if res == corev1.ResourceMemory || res == corev1.ResourceEphemeralStorage {
		return resource.NewQuantity(v, resource.BinarySI)
	}
	return resource.NewQuantity(v, resource.DecimalSI)
}

// evictedStatus is the evicted pod's status, as upstream's kubelet writes
// it: phase Failed, reason Evicted, the DisruptionTarget condition,
// not ready, its running containers terminated.
func evictedStatus(p *corev1.Pod, msg string, now time.Time) corev1.PodStatus {
	st := *p.Status.DeepCopy()
	st.Phase, st.Reason, st.Message = corev1.PodFailed, Reason, msg
	at := metav1.NewTime(now.Truncate(time.Second))
	setCond := func(c corev1.PodCondition) {
		for i := range st.Conditions {
			if st.Conditions[i].Type == c.Type {
				if st.Conditions[i].Status != c.Status {
					c.LastTransitionTime = at
				} else {
					c.LastTransitionTime = st.Conditions[i].LastTransitionTime
				}
				st.Conditions[i] = c
				return
			}
		}
		c.LastTransitionTime = at
		st.Conditions = append(st.Conditions, c)
	}
	setCond(corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: corev1.PodReasonTerminationByKubelet, Message: msg})
	setCond(corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodFailed"})
	setCond(corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "PodFailed"})
	for _, sts := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range sts {
			cs := &sts[i]
			cs.Ready = false
			if r := cs.State.Running; r != nil {
				cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: "Error", StartedAt: r.StartedAt, FinishedAt: at, ContainerID: cs.ContainerID,
				}}
			}
		}
	}
	return st
}
