// Package interpodaffinity filters nodes by required pod affinity and
// anti-affinity (the incoming pod's and the existing pods' anti-affinity
// against it) and scores them by preferred terms, as upstream's
// InterPodAffinity plugin.
package interpodaffinity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "InterPodAffinity"

// Upstream's reasons.
const (
	ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
	ErrReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ErrReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
)

const (
	preFilterStateKey framework.StateKey = "PreFilter" + Name
	preScoreStateKey  framework.StateKey = "PreScore" + Name
)

// Args are upstream's InterPodAffinityArgs.
type Args struct {
	// HardPodAffinityWeight scores existing pods' required affinity terms
	// the incoming pod matches (default 1, 0 to 100).
	HardPodAffinityWeight *int32 `json:"hardPodAffinityWeight,omitempty"`
	// IgnorePreferredTermsOfExistingPods skips scoring when the incoming
	// pod has no preferred terms.
	IgnorePreferredTermsOfExistingPods bool `json:"ignorePreferredTermsOfExistingPods,omitempty"`
}

// Plugin is the InterPodAffinity filter and scorer.
type Plugin struct {
	handle framework.Handle
	args   Args
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
		return nil, errors.New("InterPodAffinity needs the scheduler handle")
	}
	var args Args
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("decode args: %w", err)
		}
	}
	if args.HardPodAffinityWeight == nil {
		one := int32(1)
		args.HardPodAffinityWeight = &one
	}
	if w := *args.HardPodAffinityWeight; w < 0 || w > 100 {
		return nil, fmt.Errorf("hardPodAffinityWeight %d is not in [0, 100]", w)
	}
	return &Plugin{handle: h, args: args}, nil
}

// Name implements framework.Plugin.
func (*Plugin) Name() string { return Name }

type topologyPair struct {
	key, value string
}

// topologyToMatchedTermCount counts, per topology domain, the matches of
// some terms.
type topologyToMatchedTermCount map[topologyPair]int64

func (m topologyToMatchedTermCount) update(node *corev1.Node, key string, value int64) {
	if tv, ok := node.Labels[key]; ok {
		pair := topologyPair{key, tv}
		m[pair] += value
		if m[pair] == 0 {
			delete(m, pair)
		}
	}
}

// updateWithAffinityTerms counts pod on node for every term if it matches
// all of them.
func (m topologyToMatchedTermCount) updateWithAffinityTerms(terms []framework.AffinityTerm, pod *corev1.Pod, node *corev1.Node, value int64) {
	if podMatchesAllAffinityTerms(terms, pod) {
		for _, t := range terms {
			m.update(node, t.TopologyKey, value)
		}
	}
}

// updateWithAntiAffinityTerms counts pod on node for every term it matches.
func (m topologyToMatchedTermCount) updateWithAntiAffinityTerms(terms []framework.AffinityTerm, pod *corev1.Pod, nsLabels labels.Set, node *corev1.Node, value int64) {
	for i := range terms {
		if terms[i].Matches(pod, nsLabels) {
			m.update(node, terms[i].TopologyKey, value)
		}
	}
}

func podMatchesAllAffinityTerms(terms []framework.AffinityTerm, pod *corev1.Pod) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		// The incoming pod's namespaceSelector is merged into its
		// namespaces, so no namespace labels are needed.
		if !terms[i].Matches(pod, nil) {
			return false
		}
	}
	return true
}

type preFilterState struct {
	// existingAntiAffinityCounts: domains where existing pods' required
	// anti-affinity terms match the incoming pod.
	existingAntiAffinityCounts topologyToMatchedTermCount
	// existingAntiAffinityKeys are the topology keys of
	// existingAntiAffinityCounts, so Filter looks up the node's value of
	// each instead of every label of the node.
	existingAntiAffinityKeys []string
	// affinityCounts and antiAffinityCounts: domains with existing pods
	// matching the incoming pod's required (anti-)affinity terms.
	affinityCounts, antiAffinityCounts topologyToMatchedTermCount
	podInfo                            *framework.PodInfo
	namespaceLabels                    labels.Set
}

// namespaceLabels returns the labels of namespace ns (nil if unknown).
func (p *Plugin) namespaceLabels(ns string) labels.Set {
	if ol := p.handle.ObjectLister(); ol != nil {
		if n, ok := ol.Namespace(ns); ok {
			return labels.Set(n.Labels)
		}
	}
	return nil
}

// mergeNamespaceSelectors resolves the non-empty namespaceSelectors of the
// incoming pod's terms into namespace names, as upstream does, so that
// matching existing pods needs no namespace lookups.
func (p *Plugin) mergeNamespaceSelectors(pi *framework.PodInfo) {
	merge := func(t *framework.AffinityTerm) {
		if t.NamespaceSelector.Empty() {
			return // nothing (nil selector) or everything (empty selector)
		}
		if _, selectable := t.NamespaceSelector.Requirements(); !selectable {
			return
		}
		ns := t.Namespaces.Clone()
		if ol := p.handle.ObjectLister(); ol != nil {
			for _, n := range ol.Namespaces() {
				if t.NamespaceSelector.Matches(labels.Set(n.Labels)) {
					ns.Insert(n.Name)
				}
			}
		}
		t.SetNamespaces(ns, labels.Nothing())
	}
	for i := range pi.RequiredAffinityTerms {
		merge(&pi.RequiredAffinityTerms[i])
	}
	for i := range pi.RequiredAntiAffinityTerms {
		merge(&pi.RequiredAntiAffinityTerms[i])
	}
	for i := range pi.PreferredAffinityTerms {
		merge(&pi.PreferredAffinityTerms[i].AffinityTerm)
	}
	for i := range pi.PreferredAntiAffinityTerms {
		merge(&pi.PreferredAntiAffinityTerms[i].AffinityTerm)
	}
}

// PreFilter counts, per topology domain, the existing pods whose required
// anti-affinity the pod matches (only nodes with such pods are visited)
// and, if the pod has required terms, the existing pods matching them.
func (p *Plugin) PreFilter(ctx context.Context, state *framework.CycleState, pod *corev1.Pod) *framework.Status {
	snapshot := p.handle.SnapshotSharedLister()
	pi := framework.NewPodInfo(pod)
	p.mergeNamespaceSelectors(pi)
	s := &preFilterState{
		podInfo:                    pi,
		namespaceLabels:            p.namespaceLabels(pod.Namespace),
		existingAntiAffinityCounts: topologyToMatchedTermCount{},
		affinityCounts:             topologyToMatchedTermCount{},
		antiAffinityCounts:         topologyToMatchedTermCount{},
	}
	memo := framework.NewTermMatchMemo(pod, s.namespaceLabels)
	if terms, ok := snapshot.RequiredAntiAffinityTerms(); ok {
		// The same counts from the snapshot's index: each distinct term
		// is matched once, and only the nodes holding it are visited.
		for _, e := range terms {
			if !memo.Matches(e.Term) {
				continue
			}
			for name, n := range e.Nodes {
				if ni, ok := snapshot.Get(name); ok && ni.Node() != nil {
					s.existingAntiAffinityCounts.update(ni.Node(), e.Term.TopologyKey, int64(n))
				}
			}
		}
	} else {
		for _, ni := range snapshot.HavePodsWithRequiredAntiAffinityList() {
			node := ni.Node()
			for _, existing := range ni.PodsWithRequiredAntiAffinity {
				for i := range existing.RequiredAntiAffinityTerms {
					if t := &existing.RequiredAntiAffinityTerms[i]; memo.Matches(t) {
						s.existingAntiAffinityCounts.update(node, t.TopologyKey, 1)
					}
				}
			}
		}
	}
	for pair := range s.existingAntiAffinityCounts {
		if !slices.Contains(s.existingAntiAffinityKeys, pair.key) {
			s.existingAntiAffinityKeys = append(s.existingAntiAffinityKeys, pair.key)
		}
	}
	if len(pi.RequiredAffinityTerms) > 0 || len(pi.RequiredAntiAffinityTerms) > 0 {
		// Each node's counts apart, in parallel, then merged; only the
		// nodes holding pods that may match a term are visited.
		nodes := candidateNodes(snapshot, pi)
		affinity := make([]topologyToMatchedTermCount, len(nodes))
		anti := make([]topologyToMatchedTermCount, len(nodes))
		p.handle.Parallelizer().Until(ctx, len(nodes), func(i int) {
			node := nodes[i].Node()
			aff, an := topologyToMatchedTermCount{}, topologyToMatchedTermCount{}
			for _, existing := range nodes[i].Pods {
				aff.updateWithAffinityTerms(pi.RequiredAffinityTerms, existing.Pod, node, 1)
				an.updateWithAntiAffinityTerms(pi.RequiredAntiAffinityTerms, existing.Pod, nil, node, 1)
			}
			if len(aff) > 0 {
				affinity[i] = aff
			}
			if len(an) > 0 {
				anti[i] = an
			}
		})
		if err := ctx.Err(); err != nil {
			return framework.AsStatus(err)
		}
		for i := range nodes {
			for k, v := range affinity[i] {
				s.affinityCounts[k] += v
			}
			for k, v := range anti[i] {
				s.antiAffinityCounts[k] += v
			}
		}
	}
	state.Write(preFilterStateKey, s)
	if len(s.existingAntiAffinityCounts) == 0 && len(pi.RequiredAffinityTerms) == 0 && len(pi.RequiredAntiAffinityTerms) == 0 {
		// Filter would accept every node: it is skipped, as upstream.
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// candidateNodes returns the nodes that may hold pods matching the pod's
// required terms, from the snapshot's label index; every node when a term
// cannot be answered from it.
func candidateNodes(snapshot framework.NodeInfoLister, pi *framework.PodInfo) []*framework.NodeInfo {
	names := map[string]struct{}{}
	for _, terms := range [][]framework.AffinityTerm{pi.RequiredAffinityTerms, pi.RequiredAntiAffinityTerms} {
		for i := range terms {
			t := &terms[i]
			if _, selectable := t.NamespaceSelector.Requirements(); selectable {
				return snapshot.List() // an empty namespaceSelector: every namespace
			}
			nodes, ok := framework.CandidateNodes(snapshot, sets.List(t.Namespaces), t.Selector)
			if !ok {
				return snapshot.List()
			}
			for n := range nodes {
				names[n] = struct{}{}
			}
		}
	}
	out := make([]*framework.NodeInfo, 0, len(names))
	for n := range names {
		if ni, ok := snapshot.Get(n); ok {
			out = append(out, ni)
		}
	}
	return out
}

// Filter applies, in upstream's order, the existing pods' anti-affinity,
// then the pod's affinity, then its anti-affinity.
func (p *Plugin) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	d, ok := state.Read(preFilterStateKey)
	if !ok {
		return framework.AsStatus(errors.New("InterPodAffinity: PreFilter did not run"))
	}
	s := d.(*preFilterState)
	node := ni.Node()
	if !satisfyExistingPodsAntiAffinity(s, node) {
		return statusExistingAntiAffinity
	}
	if !satisfyPodAffinity(s, node) {
		return statusAffinity
	}
	if !satisfyPodAntiAffinity(s, node) {
		return statusAntiAffinity
	}
	return nil
}

func satisfyExistingPodsAntiAffinity(s *preFilterState, node *corev1.Node) bool {
	if len(s.existingAntiAffinityCounts) == 0 {
		return true
	}
	if s.existingAntiAffinityKeys == nil {
		for k, v := range node.Labels {
			if s.existingAntiAffinityCounts[topologyPair{k, v}] > 0 {
				return false
			}
		}
		return true
	}
	// The same test as over every label of the node: only the keys of
	// the counts can match.
	for _, k := range s.existingAntiAffinityKeys {
		if v, ok := node.Labels[k]; ok && s.existingAntiAffinityCounts[topologyPair{k, v}] > 0 {
			return false
		}
	}
	return true
}

func satisfyPodAntiAffinity(s *preFilterState, node *corev1.Node) bool {
	if len(s.antiAffinityCounts) == 0 {
		return true
	}
	for _, t := range s.podInfo.RequiredAntiAffinityTerms {
		if v, ok := node.Labels[t.TopologyKey]; ok && s.antiAffinityCounts[topologyPair{t.TopologyKey, v}] > 0 {
			return false
		}
	}
	return true
}

func satisfyPodAffinity(s *preFilterState, node *corev1.Node) bool {
	podsExist := true
	for _, t := range s.podInfo.RequiredAffinityTerms {
		v, ok := node.Labels[t.TopologyKey]
		if !ok {
			return false // every topology label must be on the node
		}
		if s.affinityCounts[topologyPair{t.TopologyKey, v}] <= 0 {
			podsExist = false
		}
	}
	if !podsExist {
		// The first pod of a group with affinity to itself may go
		// anywhere, or it would never be scheduled.
		return len(s.affinityCounts) == 0 && podMatchesAllAffinityTerms(s.podInfo.RequiredAffinityTerms, s.podInfo.Pod)
	}
	return true
}

// scoreMap sums weights per topology key and value.
type scoreMap map[string]map[string]int64

func (m scoreMap) processTerm(t *framework.AffinityTerm, weight int32, pod *corev1.Pod, nsLabels labels.Set, node *corev1.Node, multiplier int32) {
	if !t.Matches(pod, nsLabels) {
		return
	}
	v, ok := node.Labels[t.TopologyKey]
	if !ok {
		return
	}
	if m[t.TopologyKey] == nil {
		m[t.TopologyKey] = map[string]int64{}
	}
	m[t.TopologyKey][v] += int64(weight * multiplier)
}

func (m scoreMap) processTerms(terms []framework.WeightedAffinityTerm, pod *corev1.Pod, nsLabels labels.Set, node *corev1.Node, multiplier int32) {
	for i := range terms {
		m.processTerm(&terms[i].AffinityTerm, terms[i].Weight, pod, nsLabels, node, multiplier)
	}
}

type preScoreState struct {
	topologyScore scoreMap
}

// processExistingPod adds what one existing pod contributes: the incoming
// pod's preferred terms it matches, and its own required affinity
// (weighted by hardPodAffinityWeight) and preferred terms the incoming pod
// matches.
func (p *Plugin) processExistingPod(m scoreMap, in *framework.PodInfo, nsLabels labels.Set, existing *framework.PodInfo, node *corev1.Node) {
	if len(node.Labels) == 0 {
		return
	}
	m.processTerms(in.PreferredAffinityTerms, existing.Pod, nil, node, 1)
	m.processTerms(in.PreferredAntiAffinityTerms, existing.Pod, nil, node, -1)
	if w := *p.args.HardPodAffinityWeight; w > 0 {
		for i := range existing.RequiredAffinityTerms {
			m.processTerm(&existing.RequiredAffinityTerms[i], w, in.Pod, nsLabels, node, 1)
		}
	}
	m.processTerms(existing.PreferredAffinityTerms, in.Pod, nsLabels, node, 1)
	m.processTerms(existing.PreferredAntiAffinityTerms, in.Pod, nsLabels, node, -1)
}

// PreScore sums the weights per topology domain. Without preferred terms
// of its own, only the nodes with pods with affinity are visited.
func (p *Plugin) PreScore(ctx context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	snapshot := p.handle.SnapshotSharedLister()
	pi := framework.NewPodInfo(pod)
	hasConstraints := len(pi.PreferredAffinityTerms) > 0 || len(pi.PreferredAntiAffinityTerms) > 0
	if p.args.IgnorePreferredTermsOfExistingPods && !hasConstraints {
		return framework.NewStatus(framework.Skip)
	}
	p.mergeNamespaceSelectors(pi)
	nsLabels := p.namespaceLabels(pod.Namespace)
	// Without preferred terms of its own, only existing pods with
	// required affinity or preferred terms can add to the scores: the
	// nodes holding only pods with required anti-affinity are not visited.
	nodes := snapshot.HavePodsWithScoringAffinityList()
	if hasConstraints {
		nodes = snapshot.List()
	}
	m := scoreMap{}
	for _, ni := range nodes {
		if err := ctx.Err(); err != nil {
			return framework.AsStatus(err)
		}
		pods := ni.PodsWithAffinity
		if hasConstraints {
			pods = ni.Pods
		}
		for _, existing := range pods {
			p.processExistingPod(m, pi, nsLabels, existing, ni.Node())
		}
	}
	if len(m) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(preScoreStateKey, &preScoreState{topologyScore: m})
	return nil
}

// Score sums the weights of the node's topology domains.
func (p *Plugin) Score(_ context.Context, state *framework.CycleState, _ *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	d, ok := state.Read(preScoreStateKey)
	if !ok {
		return 0, nil
	}
	s := d.(*preScoreState)
	var score int64
	for key, values := range s.topologyScore {
		if v, ok := ni.Node().Labels[key]; ok {
			score += values[v]
		}
	}
	return score, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore maps [min, max] linearly to [0, MaxNodeScore].
func (p *Plugin) NormalizeScore(_ context.Context, state *framework.CycleState, _ *corev1.Pod, scores framework.NodeScoreList) *framework.Status {
	if _, ok := state.Read(preScoreStateKey); !ok {
		return nil
	}
	minCount, maxCount := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range scores {
		minCount = min(minCount, s.Score)
		maxCount = max(maxCount, s.Score)
	}
	diff := maxCount - minCount
	for i := range scores {
		var f float64
		if diff > 0 {
			f = float64(framework.MaxNodeScore) * (float64(scores[i].Score-minCount) / float64(diff))
		}
		scores[i].Score = int64(f)
	}
	return nil
}

// The rejections, shared by every node (a status naming its plugin is
// never changed).
var (
	statusExistingAntiAffinity = framework.NewPluginStatus(Name, framework.Unschedulable, ErrReasonExistingAntiAffinityRulesNotMatch)
	statusAffinity             = framework.NewPluginStatus(Name, framework.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
	statusAntiAffinity         = framework.NewPluginStatus(Name, framework.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)
)
