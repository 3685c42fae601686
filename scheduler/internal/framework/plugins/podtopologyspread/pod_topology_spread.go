// Package podtopologyspread filters nodes by the pod's DoNotSchedule
// topology spread constraints and scores them by its ScheduleAnyway ones
// (or, when it has none, by the default constraints spreading the pods of
// one Service or controller across nodes and zones), as upstream's
// PodTopologySpread plugin.
package podtopologyspread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins/nodeaffinity"
)

// Name is the plugin's name in the config.
const Name = "PodTopologySpread"

// Upstream's reasons.
const (
	ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ErrReasonNodeLabelNotMatch   = ErrReasonConstraintsNotMatch + " (missing required label)"
)

// Defaulting types of Args.
const (
	SystemDefaulting = "System"
	ListDefaulting   = "List"
)

const (
	preFilterStateKey framework.StateKey = "PreFilter" + Name
	preScoreStateKey  framework.StateKey = "PreScore" + Name
)

// systemDefaultConstraints are upstream's: spread a workload's pods
// across nodes (maxSkew 3) and zones (maxSkew 5), softly.
var systemDefaultConstraints = []corev1.TopologySpreadConstraint{
	{TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway, MaxSkew: 3},
	{TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.ScheduleAnyway, MaxSkew: 5},
}

// Args are upstream's PodTopologySpreadArgs.
type Args struct {
	DefaultConstraints []corev1.TopologySpreadConstraint `json:"defaultConstraints,omitempty"`
	// DefaultingType is System (the default) or List (DefaultConstraints).
	DefaultingType string `json:"defaultingType,omitempty"`
}

// Plugin is the PodTopologySpread filter and scorer.
type Plugin struct {
	handle             framework.Handle
	defaultConstraints []corev1.TopologySpreadConstraint
	systemDefaulted    bool
}

var (
	_ framework.PreFilterPlugin = (*Plugin)(nil)
	_ framework.FilterPlugin    = (*Plugin)(nil)
	_ framework.PreScorePlugin  = (*Plugin)(nil)
	_ framework.ScorePlugin     = (*Plugin)(nil)
	_ framework.ScoreExtensions = (*Plugin)(nil)
)

// New builds the plugin from its args.
func New(raw []byte, h framework.Handle) (framework.Plugin, error) {
	if h == nil {
		return nil, errors.New("PodTopologySpread needs the scheduler handle")
	}
	var args Args
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("decode args: %w", err)
		}
	}
	p := &Plugin{handle: h}
	switch args.DefaultingType {
	case "", SystemDefaulting:
		if len(args.DefaultConstraints) > 0 {
			return nil, errors.New("defaultConstraints must be empty with defaultingType System")
		}
		p.defaultConstraints = systemDefaultConstraints
		p.systemDefaulted = true
	case ListDefaulting:
		for i, c := range args.DefaultConstraints {
			if c.LabelSelector != nil {
				return nil, fmt.Errorf("defaultConstraints[%d]: labelSelector must not be set", i)
			}
			if c.MaxSkew <= 0 || c.TopologyKey == "" {
				return nil, fmt.Errorf("defaultConstraints[%d]: maxSkew must be positive and topologyKey set", i)
			}
		}
		p.defaultConstraints = args.DefaultConstraints
	default:
		return nil, fmt.Errorf("defaultingType %q: want System or List", args.DefaultingType)
	}
	return p, nil
}

// Name implements framework.Plugin.
func (*Plugin) Name() string { return Name }

// constraint is a parsed TopologySpreadConstraint.
type constraint struct {
	MaxSkew            int32
	TopologyKey        string
	Selector           labels.Selector
	MinDomains         int32
	NodeAffinityPolicy corev1.NodeInclusionPolicy
	NodeTaintsPolicy   corev1.NodeInclusionPolicy
}

// matchNodeInclusionPolicies says whether node counts as a domain member
// for pod: it satisfies the pod's node affinity (policy Honor, the
// default) and the pod tolerates its taints (policy Honor; default Ignore).
func (c *constraint) matchNodeInclusionPolicies(pod *corev1.Pod, node *corev1.Node, required *nodeaffinity.RequiredNodeAffinity) bool {
	if c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor && !required.Match(node) {
		return false
	}
	if c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor {
		if _, untolerated := framework.FindUntoleratedTaint(node.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}); untolerated {
			return false
		}
	}
	return true
}

// filterConstraints parses the pod's constraints with action.
func filterConstraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) ([]constraint, error) {
	var out []constraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != action {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			return nil, err
		}
		if c.LabelSelector == nil {
			sel = labels.Nothing()
		}
		for _, k := range c.MatchLabelKeys {
			if v, ok := pod.Labels[k]; ok {
				if r, err := labels.NewRequirement(k, "in", []string{v}); err == nil {
					sel = sel.Add(*r)
				}
			}
		}
		out = append(out, newConstraint(c, sel))
	}
	return out, nil
}

func newConstraint(c corev1.TopologySpreadConstraint, sel labels.Selector) constraint {
	pc := constraint{
		MaxSkew:            c.MaxSkew,
		TopologyKey:        c.TopologyKey,
		Selector:           sel,
		MinDomains:         1,
		NodeAffinityPolicy: corev1.NodeInclusionPolicyHonor,
		NodeTaintsPolicy:   corev1.NodeInclusionPolicyIgnore,
	}
	if c.MinDomains != nil {
		pc.MinDomains = *c.MinDomains
	}
	if c.NodeAffinityPolicy != nil {
		pc.NodeAffinityPolicy = *c.NodeAffinityPolicy
	}
	if c.NodeTaintsPolicy != nil {
		pc.NodeTaintsPolicy = *c.NodeTaintsPolicy
	}
	return pc
}

// buildDefaultConstraints applies the default constraints with action,
// selecting the pods of the pod's Services and controller.
func (p *Plugin) buildDefaultConstraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) []constraint {
	var relevant []corev1.TopologySpreadConstraint
	for _, c := range p.defaultConstraints {
		if c.WhenUnsatisfiable == action {
			relevant = append(relevant, c)
		}
	}
	if len(relevant) == 0 {
		return nil
	}
	sel := DefaultSelector(pod, p.handle.ObjectLister())
	if sel.Empty() {
		return nil
	}
	out := make([]constraint, 0, len(relevant))
	for _, c := range relevant {
		out = append(out, newConstraint(c, sel))
	}
	return out
}

// constraints returns the pod's constraints with action, or the default
// ones when it has none at all.
func (p *Plugin) constraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) ([]constraint, error) {
	if len(pod.Spec.TopologySpreadConstraints) > 0 {
		return filterConstraints(pod, action)
	}
	return p.buildDefaultConstraints(pod, action), nil
}

// DefaultSelector merges the selectors of the Services selecting pod and
// of its controlling ReplicationController, ReplicaSet or StatefulSet, as
// upstream's helper does.
func DefaultSelector(pod *corev1.Pod, ol framework.ObjectLister) labels.Selector {
	if ol == nil {
		return labels.Everything()
	}
	set := labels.Set{}
	for _, svc := range ol.Services(pod.Namespace) {
		if svc.Spec.Selector == nil {
			continue // a nil selector selects nothing
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			set = labels.Merge(set, svc.Spec.Selector)
		}
	}
	selector := set.AsSelector()
	owner := metav1.GetControllerOfNoCopy(pod)
	if owner == nil {
		return selector
	}
	addSelector := func(ls *metav1.LabelSelector) {
		other, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return
		}
		if rs, ok := other.Requirements(); ok {
			selector = selector.Add(rs...)
		}
	}
	switch {
	case owner.APIVersion == "v1" && owner.Kind == "ReplicationController":
		if rc, ok := ol.ReplicationController(pod.Namespace, owner.Name); ok {
			set = labels.Merge(set, rc.Spec.Selector)
			selector = set.AsSelector()
		}
	case owner.APIVersion == "apps/v1" && owner.Kind == "ReplicaSet":
		if rs, ok := ol.ReplicaSet(pod.Namespace, owner.Name); ok {
			addSelector(rs.Spec.Selector)
		}
	case owner.APIVersion == "apps/v1" && owner.Kind == "StatefulSet":
		if ss, ok := ol.StatefulSet(pod.Namespace, owner.Name); ok {
			addSelector(ss.Spec.Selector)
		}
	}
	return selector
}

// candidateNodes are, for one constraint, the nodes holding pods that
// may match its selector (when indexed: the selector has an equality
// requirement the snapshot's label index answers).
type candidateNodes struct {
	indexed bool
	nodes   map[string]int
}

func candidates(l framework.NodeInfoLister, ns string, cs []constraint) []candidateNodes {
	out := make([]candidateNodes, len(cs))
	for i := range cs {
		out[i].nodes, out[i].indexed = framework.CandidateNodes(l, []string{ns}, cs[i].Selector)
	}
	return out
}

// nodeLabelsMatchConstraints says whether node has every topology key.
func nodeLabelsMatchConstraints(nodeLabels map[string]string, cs []constraint) bool {
	for _, c := range cs {
		if _, ok := nodeLabels[c.TopologyKey]; !ok {
			return false
		}
	}
	return true
}

// countPodsMatchSelector counts the node's live pods in ns matching sel.
func countPodsMatchSelector(pods []*framework.PodInfo, sel labels.Selector, ns string) int {
	if sel.Empty() {
		// An empty selector matches every pod of the namespace.
		n := 0
		for _, pi := range pods {
			if pi.Pod.DeletionTimestamp == nil && pi.Pod.Namespace == ns {
				n++
			}
		}
		return n
	}
	n := 0
	for _, pi := range pods {
		if pi.Pod.DeletionTimestamp != nil || pi.Pod.Namespace != ns {
			continue
		}
		if sel.Matches(labels.Set(pi.Pod.Labels)) {
			n++
		}
	}
	return n
}

type preFilterState struct {
	constraints []constraint
	// tpValueToMatchNum is, per constraint, the matching pods per domain
	// (domains of eligible nodes only, zero counts included).
	tpValueToMatchNum []map[string]int
	// minMatchNum is, per constraint, the smallest count of a domain.
	minMatchNum []int
	// selfMatch is, per constraint, 1 if the pod matches its own
	// selector (it adds itself to the domain it lands in), else 0.
	selfMatch []int
}

// PreFilter counts, once per cycle, the matching pods in every domain of
// every DoNotSchedule constraint, so Filter is a lookup per node.
func (p *Plugin) PreFilter(ctx context.Context, state *framework.CycleState, pod *corev1.Pod) *framework.Status {
	cs, err := p.constraints(pod, corev1.DoNotSchedule)
	if err != nil {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("invalid topology spread constraint: %v", err))
	}
	s := &preFilterState{constraints: cs}
	if len(cs) == 0 {
		// Filter would accept every node: it is skipped.
		state.Write(preFilterStateKey, s)
		return framework.NewStatus(framework.Skip)
	}
	s.selfMatch = make([]int, len(cs))
	for i := range cs {
		if cs[i].Selector.Matches(labels.Set(pod.Labels)) {
			s.selfMatch[i] = 1
		}
	}
	s.tpValueToMatchNum = make([]map[string]int, len(cs))
	for i := range cs {
		s.tpValueToMatchNum[i] = map[string]int{}
	}
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	// Each node's count per constraint (-1: the node is not in the
	// constraint's domains), in parallel, then summed per domain.
	snapshot := p.handle.SnapshotSharedLister()
	nodes := snapshot.List()
	cand := candidates(snapshot, pod.Namespace, cs)
	if everyNodeEligible(pod, cs, cand) {
		countCandidates(snapshot, nodes, cs, cand, pod.Namespace, s.tpValueToMatchNum)
		s.minMatchNum = minMatchNums(cs, s.tpValueToMatchNum)
		state.Write(preFilterStateKey, s)
		return nil
	}
	counts := make([]int, len(nodes)*len(cs))
	p.handle.Parallelizer().Until(ctx, len(nodes), func(n int) {
		node := nodes[n].Node()
		match := nodeLabelsMatchConstraints(node.Labels, cs)
		for i := range cs {
			c := &cs[i]
			if !match || !c.matchNodeInclusionPolicies(pod, node, &required) {
				counts[n*len(cs)+i] = -1
				continue
			}
			if cand[i].indexed && cand[i].nodes[node.Name] == 0 {
				continue // no pod on the node can match
			}
			counts[n*len(cs)+i] = countPodsMatchSelector(nodes[n].Pods, c.Selector, pod.Namespace)
		}
	})
	if err := ctx.Err(); err != nil {
		return framework.AsStatus(err)
	}
	for n, ni := range nodes {
		for i := range cs {
			if cnt := counts[n*len(cs)+i]; cnt >= 0 {
				s.tpValueToMatchNum[i][ni.Node().Labels[cs[i].TopologyKey]] += cnt
			}
		}
	}
	s.minMatchNum = minMatchNums(cs, s.tpValueToMatchNum)
	state.Write(preFilterStateKey, s)
	return nil
}

// minMatchNums is each constraint's smallest domain count (0 with fewer
// domains than minDomains).
func minMatchNums(cs []constraint, tpValueToMatchNum []map[string]int) []int {
	out := make([]int, len(cs))
	for i := range cs {
		m := math.MaxInt
		for _, n := range tpValueToMatchNum[i] {
			m = min(m, n)
		}
		if m == math.MaxInt || int32(len(tpValueToMatchNum[i])) < cs[i].MinDomains {
			// Fewer domains than minDomains: the global minimum is 0.
			m = 0
		}
		out[i] = m
	}
	return out
}

// everyNodeEligible says whether every node carrying the topology keys is
// a domain member (the pod has no required node affinity or node
// selector, and no constraint honours taints) and every constraint's
// matching pods are known from the label index: then only the candidate
// nodes need counting.
func everyNodeEligible(pod *corev1.Pod, cs []constraint, cand []candidateNodes) bool {
	if len(pod.Spec.NodeSelector) > 0 {
		return false
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		return false
	}
	for i := range cs {
		if cs[i].NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor || !cand[i].indexed {
			return false
		}
	}
	return true
}

// countCandidates fills each constraint's domains from every node with the
// topology keys (count 0), then counts the matching pods of the candidate
// nodes only: the same counts as visiting every node, without matching
// selectors on nodes that hold no candidate pod.
func countCandidates(snapshot framework.NodeInfoLister, nodes []*framework.NodeInfo, cs []constraint, cand []candidateNodes, ns string, tpValueToMatchNum []map[string]int) {
	if len(cs) == 1 {
		// One key: its domains are the snapshot's, kept across cycles.
		for v := range snapshot.TopologyValues(cs[0].TopologyKey) {
			tpValueToMatchNum[0][v] = 0
		}
		nodes = nil
	}
	for _, ni := range nodes {
		lbls := ni.Node().Labels
		if !nodeLabelsMatchConstraints(lbls, cs) {
			continue
		}
		for i := range cs {
			v := lbls[cs[i].TopologyKey]
			if _, ok := tpValueToMatchNum[i][v]; !ok {
				tpValueToMatchNum[i][v] = 0
			}
		}
	}
	for i := range cs {
		// A selector of one label: the index's counts less the pods
		// being deleted are the matching pods, without visiting them.
		l, single := framework.SingleLabel(cs[i].Selector, ns)
		var terminating map[string]int
		if single {
			terminating = snapshot.NodesWithTerminatingPodLabel(l)
		}
		for name, indexed := range cand[i].nodes {
			ni, ok := snapshot.Get(name)
			if !ok || ni.Node() == nil || !nodeLabelsMatchConstraints(ni.Node().Labels, cs) {
				continue
			}
			var n int
			if single {
				n = indexed - terminating[name]
			} else {
				n = countPodsMatchSelector(ni.Pods, cs[i].Selector, ns)
			}
			if n > 0 {
				tpValueToMatchNum[i][ni.Node().Labels[cs[i].TopologyKey]] += n
			}
		}
	}
}

// Filter rejects a node lacking a topology key, or where placing the pod
// would raise its domain's count more than maxSkew above the minimum.
func (p *Plugin) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	d, ok := state.Read(preFilterStateKey)
	if !ok {
		return framework.AsStatus(errors.New("PodTopologySpread: PreFilter did not run"))
	}
	s := d.(*preFilterState)
	if len(s.constraints) == 0 {
		return nil
	}
	node := ni.Node()
	for i := range s.constraints {
		c := &s.constraints[i]
		v, ok := node.Labels[c.TopologyKey]
		if !ok {
			return statusNodeLabelNotMatch
		}
		if skew := s.tpValueToMatchNum[i][v] + s.selfMatch[i] - s.minMatchNum[i]; skew > int(c.MaxSkew) {
			return statusConstraintsNotMatch
		}
	}
	return nil
}

type topologyPair struct {
	key, value string
}

type preScoreState struct {
	constraints []constraint
	// ignoredNodes lack a topology key (pod's own constraints only).
	ignoredNodes map[string]bool
	// topologyPairToPodCounts counts matching pods per domain of the
	// feasible nodes (hostname constraints are counted per node in Score).
	topologyPairToPodCounts map[topologyPair]*int64
	// topologyNormalizingWeight weighs each constraint by log(domains+2).
	topologyNormalizingWeight []float64
}

// PreScore counts the matching pods of every domain holding a feasible
// node, over every node of the cluster.
func (p *Plugin) PreScore(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, filtered []*framework.NodeInfo) *framework.Status {
	all := p.handle.SnapshotSharedLister().List()
	if len(filtered) == 0 || len(all) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	cs, err := p.constraints(pod, corev1.ScheduleAnyway)
	if err != nil {
		return framework.AsStatus(fmt.Errorf("topology spread constraints: %w", err))
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	requireAll := len(pod.Spec.TopologySpreadConstraints) > 0 || !p.systemDefaulted
	s := &preScoreState{
		constraints:             cs,
		ignoredNodes:            map[string]bool{},
		topologyPairToPodCounts: map[topologyPair]*int64{},
	}
	topoSize := make([]int, len(cs))
	for _, ni := range filtered {
		node := ni.Node()
		if requireAll && !nodeLabelsMatchConstraints(node.Labels, cs) {
			s.ignoredNodes[node.Name] = true
			continue
		}
		for i, c := range cs {
			if c.TopologyKey == corev1.LabelHostname {
				continue
			}
			pair := topologyPair{c.TopologyKey, node.Labels[c.TopologyKey]}
			if _, ok := s.topologyPairToPodCounts[pair]; !ok {
				s.topologyPairToPodCounts[pair] = new(int64)
				topoSize[i]++
			}
		}
	}
	s.topologyNormalizingWeight = make([]float64, len(cs))
	for i, c := range cs {
		sz := topoSize[i]
		if c.TopologyKey == corev1.LabelHostname {
			sz = len(filtered) - len(s.ignoredNodes)
		}
		s.topologyNormalizingWeight[i] = math.Log(float64(sz + 2))
	}
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	// The map's keys are fixed now; workers add to its counters.
	cand := candidates(p.handle.SnapshotSharedLister(), pod.Namespace, cs)
	p.handle.Parallelizer().Until(ctx, len(all), func(n int) {
		node := all[n].Node()
		if !nodeLabelsMatchConstraints(node.Labels, cs) {
			return
		}
		for i := range cs {
			c := &cs[i]
			if c.TopologyKey == corev1.LabelHostname || !c.matchNodeInclusionPolicies(pod, node, &required) {
				continue
			}
			cnt := s.topologyPairToPodCounts[topologyPair{c.TopologyKey, node.Labels[c.TopologyKey]}]
			if cnt == nil {
				continue // no feasible node in this domain
			}
			if cand[i].indexed && cand[i].nodes[node.Name] == 0 {
				continue
			}
			atomic.AddInt64(cnt, int64(countPodsMatchSelector(all[n].Pods, c.Selector, pod.Namespace)))
		}
	})
	if err := ctx.Err(); err != nil {
		return framework.AsStatus(err)
	}
	state.Write(preScoreStateKey, s)
	return nil
}

// Score is the weighted count of matching pods in the node's domains;
// the normaliser reverses it, so fewer is better.
func (p *Plugin) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	d, ok := state.Read(preScoreStateKey)
	if !ok {
		return 0, nil
	}
	s := d.(*preScoreState)
	node := ni.Node()
	if s.ignoredNodes[node.Name] {
		return 0, nil
	}
	var score float64
	for i, c := range s.constraints {
		v, ok := node.Labels[c.TopologyKey]
		if !ok {
			continue
		}
		var cnt int64
		if c.TopologyKey == corev1.LabelHostname {
			cnt = int64(countPodsMatchSelector(ni.Pods, c.Selector, pod.Namespace))
		} else {
			if p := s.topologyPairToPodCounts[topologyPair{c.TopologyKey, v}]; p != nil {
				cnt = *p
			}
		}
		score += float64(cnt)*s.topologyNormalizingWeight[i] + float64(c.MaxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore maps the lowest raw score to the highest, as upstream:
// MaxNodeScore * (max + min - score) / max; ignored nodes get 0.
func (p *Plugin) NormalizeScore(_ context.Context, state *framework.CycleState, _ *corev1.Pod, scores framework.NodeScoreList) *framework.Status {
	d, ok := state.Read(preScoreStateKey)
	if !ok {
		return nil
	}
	s := d.(*preScoreState)
	minScore, maxScore := int64(math.MaxInt64), int64(0)
	for _, sc := range scores {
		if s.ignoredNodes[sc.Name] {
			continue
		}
		minScore = min(minScore, sc.Score)
		maxScore = max(maxScore, sc.Score)
	}
	for i := range scores {
		switch {
		case s.ignoredNodes[scores[i].Name]:
			scores[i].Score = 0
		case maxScore == 0:
			scores[i].Score = framework.MaxNodeScore
		default:
			scores[i].Score = framework.MaxNodeScore * (maxScore + minScore - scores[i].Score) / maxScore
		}
	}
	return nil
}

// The rejections, shared by every node (a status naming its plugin is
// never changed).
var (
	statusNodeLabelNotMatch   = framework.NewPluginStatus(Name, framework.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
	statusConstraintsNotMatch = framework.NewPluginStatus(Name, framework.Unschedulable, ErrReasonConstraintsNotMatch)
)
