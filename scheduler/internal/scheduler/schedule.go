package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Upstream's sampling bounds.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
)

// ErrNoNodesAvailable is returned when the cluster has no nodes.
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")

// Diagnosis records why nodes were rejected.
type Diagnosis struct {
	// NodeToStatus is each rejected node's status.
	NodeToStatus map[string]*framework.Status
	// PreFilterMsg is set when a PreFilter rejected the pod outright.
	PreFilterMsg string
}

// FitError says no node fits the pod.
type FitError struct {
	Pod         *corev1.Pod
	NumAllNodes int
	Diagnosis   Diagnosis
}

// Error is upstream's message: "0/3 nodes are available: 1 node(s) had
// untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
func (f *FitError) Error() string {
	msg := fmt.Sprintf("0/%v nodes are available:", f.NumAllNodes)
	if f.Diagnosis.PreFilterMsg != "" {
		return msg + fmt.Sprintf(" %v.", f.Diagnosis.PreFilterMsg)
	}
	counts := map[string]int{}
	for _, st := range f.Diagnosis.NodeToStatus {
		for _, r := range st.Reasons() {
			counts[r]++
		}
	}
	reasons := make([]string, 0, len(counts))
	for r, n := range counts {
		reasons = append(reasons, fmt.Sprintf("%v %v", n, r))
	}
	slices.Sort(reasons)
	if len(reasons) > 0 {
		msg += fmt.Sprintf(" %v.", strings.Join(reasons, ", "))
	}
	return msg
}

// numFeasibleNodesToFind is upstream's adaptive sample size: every node
// below 100; otherwise percentage of them (by default 50% less 1% per 125
// nodes, at least 5%), and at least 100.
func numFeasibleNodesToFind(percentage int32, numAllNodes int32) int32 {
	if numAllNodes < minFeasibleNodesToFind || percentage >= 100 {
		return numAllNodes
	}
	if percentage <= 0 {
		percentage = int32(50) - numAllNodes/125
		if percentage < minFeasibleNodesPercentageToFind {
			percentage = minFeasibleNodesPercentageToFind
		}
	}
	n := numAllNodes * percentage / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}

// schedulePod picks a node for pod from the snapshot.
func (s *Scheduler) schedulePod(ctx context.Context, state *framework.CycleState, pod *corev1.Pod) (string, error) {
	if s.snapshot.NumNodes() == 0 {
		return "", ErrNoNodesAvailable
	}
	feasible, diagnosis, err := s.findNodesThatFitPod(ctx, state, pod)
	if err != nil {
		return "", err
	}
	if len(feasible) == 0 {
		return "", &FitError{Pod: pod, NumAllNodes: s.snapshot.NumNodes(), Diagnosis: diagnosis}
	}
	if len(feasible) == 1 {
		return feasible[0].Node().Name, nil
	}
	scores, err := s.prioritizeNodes(ctx, state, pod, feasible)
	if err != nil {
		return "", err
	}
	return s.selectHost(scores), nil
}

// findNodesThatFitPod runs the filters over the nodes in parallel, from a
// rotating start, until enough feasible nodes are found.
func (s *Scheduler) findNodesThatFitPod(ctx context.Context, state *framework.CycleState, pod *corev1.Pod) ([]*framework.NodeInfo, Diagnosis, error) {
	diagnosis := Diagnosis{NodeToStatus: map[string]*framework.Status{}}
	nodes := s.snapshot.List()
	if st := s.fwk.RunPreFilterPlugins(ctx, state, pod); !st.IsSuccess() {
		if !st.IsRejected() {
			return nil, diagnosis, fmt.Errorf("prefilter %s: %w", st.Plugin(), st.Err())
		}
		diagnosis.PreFilterMsg = st.Message()
		for _, n := range nodes {
			diagnosis.NodeToStatus[n.Node().Name] = st
		}
		return nil, diagnosis, nil
	}
	numAll := len(nodes)
	numToFind := int(numFeasibleNodesToFind(s.percentageOfNodesToScore, int32(numAll)))
	if len(s.fwk.FilterPlugins()) == 0 {
		out := make([]*framework.NodeInfo, 0, numToFind)
		for i := 0; i < numToFind; i++ {
			out = append(out, nodes[(s.nextStartNodeIndex+i)%numAll])
		}
		s.nextStartNodeIndex = (s.nextStartNodeIndex + numToFind) % numAll
		return out, diagnosis, nil
	}

	// The buffers are the scheduling goroutine's, reused across cycles:
	// at 5,000 nodes they would be the largest allocations of a cycle.
	feasible := grow(&s.feasibleBuf, numToFind)
	statuses := grow(&s.statusBuf, numAll)
	clear(statuses)
	var found atomic.Int32
	// enough is set once numToFind nodes fit: the remaining pieces are
	// skipped one by one (as upstream's parallelizer checks its stop
	// channel per piece), not only between chunks.
	var enough atomic.Bool
	var firstErr atomic.Pointer[framework.Status]
	filterCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := s.nextStartNodeIndex
	s.fwk.Parallelizer().Until(filterCtx, numAll, func(i int) {
		if enough.Load() {
			return
		}
		ni := nodes[(start+i)%numAll]
		st := s.fwk.RunFilterPlugins(filterCtx, state, pod, ni)
		switch {
		case st.IsSuccess():
			n := found.Add(1)
			if int(n) > numToFind {
				enough.Store(true)
				cancel()
				found.Add(-1)
				return
			}
			feasible[n-1] = ni
		case st.Code() == framework.Error:
			firstErr.CompareAndSwap(nil, st)
			enough.Store(true)
			cancel()
		default:
			statuses[i] = st
		}
	})
	if st := firstErr.Load(); st != nil {
		return nil, diagnosis, fmt.Errorf("filter %s: %w", st.Plugin(), st.Err())
	}
	if err := ctx.Err(); err != nil {
		return nil, diagnosis, err
	}
	numFound := int(found.Load())
	processed := numFound
	for i, st := range statuses {
		if st == nil {
			continue
		}
		processed++
		// The rejections are only read when no node fits (the FitError
		// message and preemption): the map is not built otherwise.
		if numFound == 0 {
			diagnosis.NodeToStatus[nodes[(start+i)%numAll].Node().Name] = st
		}
	}
	clear(statuses)
	s.nextStartNodeIndex = (s.nextStartNodeIndex + processed) % numAll
	// The slice is the buffer's: it is read during this cycle only.
	return feasible[:numFound], diagnosis, nil
}

// grow returns (*buf)[:n], reallocating *buf when it is shorter.
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	return (*buf)[:n]
}

// prioritizeNodes returns each feasible node's weighted score.
func (s *Scheduler) prioritizeNodes(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, nodes []*framework.NodeInfo) ([]framework.NodeScore, error) {
	if !s.fwk.HasScorePlugins() {
		out := make([]framework.NodeScore, len(nodes))
		for i, n := range nodes {
			out[i] = framework.NodeScore{Name: n.Node().Name, Score: 1}
		}
		return out, nil
	}
	if st := s.fwk.RunPreScorePlugins(ctx, state, pod, nodes); !st.IsSuccess() {
		return nil, fmt.Errorf("prescore %s: %w", st.Plugin(), st.Err())
	}
	scores, st := s.fwk.RunScorePluginsInto(ctx, state, pod, nodes, s.scoreBuf)
	if cap(scores) > cap(s.scoreBuf) {
		s.scoreBuf = scores[:0]
	}
	if !st.IsSuccess() {
		return nil, fmt.Errorf("score %s: %w", st.Plugin(), st.Err())
	}
	return scores, nil
}

// selectHost picks a highest-scoring node, uniformly among ties.
func (s *Scheduler) selectHost(scores []framework.NodeScore) string {
	best := scores[0]
	ties := 1
	for _, ns := range scores[1:] {
		switch {
		case ns.Score > best.Score:
			best, ties = ns, 1
		case ns.Score == best.Score:
			ties++
			if s.rand.IntN(ties) == 0 {
				best = ns
			}
		}
	}
	return best.Name
}
