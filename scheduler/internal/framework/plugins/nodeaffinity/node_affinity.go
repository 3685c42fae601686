// Package nodeaffinity filters nodes by the pod's nodeSelector and required
// node affinity, and scores them by its preferred node affinity terms.
package nodeaffinity

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "NodeAffinity"

// ErrReasonPod is upstream's reason.
const ErrReasonPod = "node(s) didn't match Pod's node affinity/selector"

const (
	preFilterStateKey framework.StateKey = "PreFilter" + Name
	preScoreStateKey  framework.StateKey = "PreScore" + Name
)

// Plugin is the NodeAffinity filter and scorer.
type Plugin struct{}

var (
	_ framework.PreFilterPlugin = Plugin{}
	_ framework.FilterPlugin    = Plugin{}
	_ framework.PreScorePlugin  = Plugin{}
	_ framework.ScorePlugin     = Plugin{}
)

// New builds the plugin. (Upstream's addedAffinity arg is not supported.)
func New([]byte) (framework.Plugin, error) { return Plugin{}, nil }

// Name implements framework.Plugin.
func (Plugin) Name() string { return Name }

// NodeSelectorTerm is a compiled corev1.NodeSelectorTerm: its label and
// field requirements are ANDed.
type NodeSelectorTerm struct {
	labels labels.Selector
	fields fields.Selector
	// matchNone is set for a term with no requirements, which matches no
	// node, and for one that did not parse.
	matchNone bool
}

// Match says whether node matches the term.
func (t *NodeSelectorTerm) Match(node *corev1.Node) bool {
	if t.matchNone {
		return false
	}
	if t.labels != nil && !t.labels.Matches(labels.Set(node.Labels)) {
		return false
	}
	if t.fields != nil && !t.fields.Matches(fields.Set{"metadata.name": node.Name}) {
		return false
	}
	return true
}

// CompileTerm compiles a term; an invalid one matches nothing, as upstream.
func CompileTerm(term *corev1.NodeSelectorTerm) NodeSelectorTerm {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return NodeSelectorTerm{matchNone: true}
	}
	var out NodeSelectorTerm
	if len(term.MatchExpressions) > 0 {
		sel := labels.NewSelector()
		for _, r := range term.MatchExpressions {
			req, err := requirement(r.Key, r.Operator, r.Values)
			if err != nil {
				return NodeSelectorTerm{matchNone: true}
			}
			sel = sel.Add(*req)
		}
		out.labels = sel
	}
	if len(term.MatchFields) > 0 {
		var sels []fields.Selector
		for _, r := range term.MatchFields {
			if r.Key != "metadata.name" || len(r.Values) != 1 {
				return NodeSelectorTerm{matchNone: true}
			}
			switch r.Operator {
			case corev1.NodeSelectorOpIn:
				sels = append(sels, fields.OneTermEqualSelector(r.Key, r.Values[0]))
			case corev1.NodeSelectorOpNotIn:
				sels = append(sels, fields.OneTermNotEqualSelector(r.Key, r.Values[0]))
			default:
				return NodeSelectorTerm{matchNone: true}
			}
		}
		out.fields = fields.AndSelectors(sels...)
	}
	return out
}

func requirement(key string, op corev1.NodeSelectorOperator, values []string) (*labels.Requirement, error) {
	var sop selection.Operator
	switch op {
	case corev1.NodeSelectorOpIn:
		sop = selection.In
	case corev1.NodeSelectorOpNotIn:
		sop = selection.NotIn
	case corev1.NodeSelectorOpExists:
		sop = selection.Exists
	case corev1.NodeSelectorOpDoesNotExist:
		sop = selection.DoesNotExist
	case corev1.NodeSelectorOpGt:
		sop = selection.GreaterThan
	case corev1.NodeSelectorOpLt:
		sop = selection.LessThan
	default:
		return nil, fmt.Errorf("%q is not a valid node selector operator", op)
	}
	return labels.NewRequirement(key, sop, values)
}

// RequiredNodeAffinity is a pod's nodeSelector and required node affinity,
// compiled.
type RequiredNodeAffinity struct {
	selector labels.Selector
	// terms are ORed; nil means no required affinity.
	terms []NodeSelectorTerm
}

// GetRequiredNodeAffinity compiles pod's node constraints.
func GetRequiredNodeAffinity(pod *corev1.Pod) RequiredNodeAffinity {
	var r RequiredNodeAffinity
	if len(pod.Spec.NodeSelector) > 0 {
		r.selector = labels.SelectorFromSet(pod.Spec.NodeSelector)
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		r.terms = make([]NodeSelectorTerm, 0, len(terms))
		for i := range terms {
			r.terms = append(r.terms, CompileTerm(&terms[i]))
		}
	}
	return r
}

// Match says whether node satisfies both the selector and the terms.
func (r *RequiredNodeAffinity) Match(node *corev1.Node) bool {
	if r.selector != nil && !r.selector.Matches(labels.Set(node.Labels)) {
		return false
	}
	if r.terms == nil {
		return true
	}
	for i := range r.terms {
		if r.terms[i].Match(node) {
			return true
		}
	}
	return false
}

// PreFilter compiles the pod's constraints once.
func (Plugin) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod) *framework.Status {
	r := GetRequiredNodeAffinity(pod)
	state.Write(preFilterStateKey, &r)
	if r.selector == nil && r.terms == nil {
		// Nothing to check: every node passes, so Filter is skipped (as
		// upstream's PreFilter returns Skip).
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Filter rejects nodes that do not match the pod's nodeSelector or
// required node affinity.
func (Plugin) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	node := ni.Node()
	if node == nil {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonPod)
	}
	var r *RequiredNodeAffinity
	if d, ok := state.Read(preFilterStateKey); ok {
		r = d.(*RequiredNodeAffinity)
	} else {
		v := GetRequiredNodeAffinity(pod)
		r = &v
	}
	if !r.Match(node) {
		return statusNotMatch
	}
	return nil
}

type preferredTerm struct {
	weight int64
	term   NodeSelectorTerm
}

type preScoreState []preferredTerm

func preferredTerms(pod *corev1.Pod) preScoreState {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return nil
	}
	var out preScoreState
	for i := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		p := &a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i]
		if p.Weight == 0 {
			continue
		}
		out = append(out, preferredTerm{weight: int64(p.Weight), term: CompileTerm(&p.Preference)})
	}
	return out
}

// PreScore compiles the preferred terms; Skip when there are none.
func (Plugin) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	terms := preferredTerms(pod)
	if len(terms) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(preScoreStateKey, terms)
	return nil
}

// Score sums the weights of the preferred terms the node matches.
func (Plugin) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	var terms preScoreState
	if d, ok := state.Read(preScoreStateKey); ok {
		terms = d.(preScoreState)
	} else {
		terms = preferredTerms(pod)
	}
	var score int64
	for i := range terms {
		if terms[i].term.Match(ni.Node()) {
			score += terms[i].weight
		}
	}
	return score, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore scales the highest sum to 100.
func (Plugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, false, scores)
}

// statusNotMatch is Filter's rejection, shared by every node (a status
// naming its plugin is never changed).
var statusNotMatch = framework.NewPluginStatus(Name, framework.UnschedulableAndUnresolvable, ErrReasonPod)
