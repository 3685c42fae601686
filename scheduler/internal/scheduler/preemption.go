package scheduler

import (
	"context"
	"fmt"
	"math"
	"slices"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// priorityResolver gives a pod's priority: spec.priority, else its
// PriorityClass's value, else the global default class's, else 0 (what
// upstream's Priority admission plugin writes into spec.priority).
type priorityResolver struct {
	classes *informer.Lister[*schedulingv1.PriorityClass]
}

func (r *priorityResolver) priority(pod *corev1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	if r == nil || r.classes == nil {
		return 0
	}
	if name := pod.Spec.PriorityClassName; name != "" {
		if pc, err := r.classes.Get("", name); err == nil {
			return pc.Value
		}
		return 0
	}
	var def *schedulingv1.PriorityClass
	for _, pc := range r.classes.List(nil) {
		if pc.GlobalDefault && (def == nil || pc.Value < def.Value) {
			def = pc
		}
	}
	if def != nil {
		return def.Value
	}
	return 0
}

// withPriority returns pod, or a copy with spec.priority resolved if it
// was unset and resolves to non-zero, so the queue orders it.
func (r *priorityResolver) withPriority(pod *corev1.Pod) *corev1.Pod {
	if pod.Spec.Priority != nil {
		return pod
	}
	p := r.priority(pod)
	if p == 0 {
		return pod
	}
	c := pod.DeepCopy()
	c.Spec.Priority = &p
	return c
}

// candidate is a node where preemption would let the pod fit, with the
// pods to evict.
type candidate struct {
	node    string
	victims []*corev1.Pod
}

// findCandidates simulates, on every node rejected for a reason eviction
// could fix, removing the pods of lower priority than pod, then reprieves
// as many of them as still lets pod fit, most important first.
func (s *Scheduler) findCandidates(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, d Diagnosis) []candidate {
	prio := s.priorities.priority(pod)
	var nodes []*framework.NodeInfo
	for _, ni := range s.snapshot.List() {
		if st, ok := d.NodeToStatus[ni.Node().Name]; ok && st.Code() == framework.Unschedulable {
			nodes = append(nodes, ni)
		}
	}
	results := make([]*candidate, len(nodes))
	s.fwk.Parallelizer().Until(ctx, len(nodes), func(i int) {
		results[i] = s.selectVictimsOnNode(ctx, state, pod, prio, nodes[i])
	})
	var out []candidate
	for _, c := range results {
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

func (s *Scheduler) selectVictimsOnNode(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, prio int32, ni *framework.NodeInfo) *candidate {
	var potential []*corev1.Pod
	for _, pi := range ni.Pods {
		if s.priorities.priority(pi.Pod) < prio {
			potential = append(potential, pi.Pod)
		}
	}
	if len(potential) == 0 {
		return nil
	}
	clone := ni.Clone()
	for _, p := range potential {
		clone.RemovePod(p)
	}
	if !s.fwk.RunFilterPlugins(ctx, state, pod, clone).IsSuccess() {
		return nil
	}
	// Most important first: higher priority, then older.
	slices.SortStableFunc(potential, func(a, b *corev1.Pod) int {
		pa, pb := s.priorities.priority(a), s.priorities.priority(b)
		if pa != pb {
			return int(pb) - int(pa)
		}
		return podStartTime(a).Compare(podStartTime(b).Time)
	})
	var victims []*corev1.Pod
	for _, p := range potential {
		clone.AddPod(p)
		if !s.fwk.RunFilterPlugins(ctx, state, pod, clone).IsSuccess() {
			clone.RemovePod(p)
			victims = append(victims, p)
		}
	}
	if len(victims) == 0 {
		return nil
	}
	return &candidate{node: ni.Node().Name, victims: victims}
}

func podStartTime(p *corev1.Pod) metav1.Time {
	if p.Status.StartTime != nil {
		return *p.Status.StartTime
	}
	return p.CreationTimestamp
}

// pickOneNode chooses among candidates as upstream does: the lowest
// highest-priority victim, then the lowest sum of priorities, then the
// fewest victims, then the latest-started highest-priority victims, then
// the first.
func (s *Scheduler) pickOneNode(cands []candidate) *candidate {
	if len(cands) == 0 {
		return nil
	}
	type key struct {
		highest int32
		sum     int64
		n       int
		start   metav1.Time
	}
	keyOf := func(c *candidate) key {
		k := key{highest: math.MinInt32}
		for _, v := range c.victims {
			p := s.priorities.priority(v)
			k.sum += int64(p) + math.MaxInt32 + 1
			if p > k.highest {
				k.highest = p
			}
		}
		k.n = len(c.victims)
		first := true
		for _, v := range c.victims {
			if s.priorities.priority(v) == k.highest {
				if t := podStartTime(v); first || t.Before(&k.start) {
					k.start, first = t, false
				}
			}
		}
		return k
	}
	best, bestKey := &cands[0], keyOf(&cands[0])
	for i := 1; i < len(cands); i++ {
		k := keyOf(&cands[i])
		better := false
		switch {
		case k.highest != bestKey.highest:
			better = k.highest < bestKey.highest
		case k.sum != bestKey.sum:
			better = k.sum < bestKey.sum
		case k.n != bestKey.n:
			better = k.n < bestKey.n
		default:
			better = bestKey.start.Before(&k.start)
		}
		if better {
			best, bestKey = &cands[i], k
		}
	}
	return best
}

// preempt evicts lower-priority pods so that pod may fit, and returns the
// node nominated for it ("" when preemption cannot help or is not
// allowed).
func (s *Scheduler) preempt(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, fe *FitError, logger *zap.Logger) (string, error) {
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy == corev1.PreemptNever {
		return "", nil
	}
	prio := s.priorities.priority(pod)
	// A pod whose earlier preemption is still in progress waits for it.
	if nn := pod.Status.NominatedNodeName; nn != "" {
		if ni, ok := s.snapshot.Get(nn); ok {
			for _, pi := range ni.Pods {
				if pi.Pod.DeletionTimestamp != nil && s.priorities.priority(pi.Pod) < prio {
					return "", nil
				}
			}
		}
	}
	best := s.pickOneNode(s.findCandidates(ctx, state, pod, fe.Diagnosis))
	if best == nil {
		return "", nil
	}
	for _, v := range best.victims {
		if _, err := s.pods.Delete(ctx, v.Namespace, v.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &v.UID}}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("preempt pod %s/%s: %w", v.Namespace, v.Name, err)
		}
		s.recorder.Eventf(v, corev1.EventTypeNormal, "Preempted", "Preempting",
			"Preempted by pod %s on node %s", pod.UID, best.node)
		logger.Info("preempted pod", zap.String("victim", v.Namespace+"/"+v.Name), zap.String("node", best.node))
	}
	s.metrics.preemptionVictims.Observe(float64(len(best.victims)))
	return best.node, nil
}
