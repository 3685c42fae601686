package noderesources

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// FitName is the NodeResourcesFit plugin's name in the config.
const FitName = "NodeResourcesFit"

// Scoring strategies.
const (
	LeastAllocated = "LeastAllocated"
	MostAllocated  = "MostAllocated"
)

// Reasons, as upstream's.
const (
	ErrReasonTooManyPods = "Too many pods"
)

const preFilterStateKey framework.StateKey = "PreFilter" + FitName

// ScoringStrategy is NodeResourcesFitArgs.scoringStrategy.
type ScoringStrategy struct {
	Type      string         `json:"type,omitempty"`
	Resources []ResourceSpec `json:"resources,omitempty"`
}

// FitArgs are the NodeResourcesFit args of the config file.
type FitArgs struct {
	// IgnoredResources are extended resources not checked.
	IgnoredResources []string `json:"ignoredResources,omitempty"`
	// IgnoredResourceGroups are prefixes ("example.com") of extended
	// resources not checked.
	IgnoredResourceGroups []string         `json:"ignoredResourceGroups,omitempty"`
	ScoringStrategy       *ScoringStrategy `json:"scoringStrategy,omitempty"`
}

// Fit is the NodeResourcesFit filter and scorer.
type Fit struct {
	ignored       map[corev1.ResourceName]bool
	ignoredGroups []string
	strategy      string
	resources     []ResourceSpec
	kinds         []resourceKind
	score         scorer
}

var (
	_ framework.PreFilterPlugin = (*Fit)(nil)
	_ framework.FilterPlugin    = (*Fit)(nil)
	_ framework.ScorePlugin     = (*Fit)(nil)
)

// NewFit builds the plugin from its args (LeastAllocated on cpu and memory
// by default).
func NewFit(raw []byte) (framework.Plugin, error) {
	var args FitArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("%s args: %w", FitName, err)
		}
	}
	return NewFitWithArgs(args)
}

// NewFitWithArgs builds the plugin from decoded args.
func NewFitWithArgs(args FitArgs) (*Fit, error) {
	f := &Fit{ignored: map[corev1.ResourceName]bool{}, ignoredGroups: args.IgnoredResourceGroups, strategy: LeastAllocated, resources: DefaultResources}
	for _, r := range args.IgnoredResources {
		f.ignored[corev1.ResourceName(r)] = true
	}
	if s := args.ScoringStrategy; s != nil {
		if s.Type != "" {
			f.strategy = s.Type
		}
		if len(s.Resources) > 0 {
			f.resources = s.Resources
		}
	}
	if err := validateResources(f.resources); err != nil {
		return nil, fmt.Errorf("%s args: scoringStrategy: %w", FitName, err)
	}
	f.kinds = kindsOf(f.resources)
	switch f.strategy {
	case LeastAllocated:
		f.score = leastAllocated
	case MostAllocated:
		f.score = mostAllocated
	default:
		return nil, fmt.Errorf("%s args: scoringStrategy.type %q: want %s or %s", FitName, f.strategy, LeastAllocated, MostAllocated)
	}
	return f, nil
}

// Name implements framework.Plugin.
func (*Fit) Name() string { return FitName }

type preFilterState struct {
	requests, nonZero framework.Resource
}

func (f *Fit) state(state *framework.CycleState, pod *corev1.Pod) *preFilterState {
	if d, ok := state.Read(preFilterStateKey); ok {
		return d.(*preFilterState)
	}
	return &preFilterState{requests: framework.PodRequests(pod, false), nonZero: framework.PodRequests(pod, true)}
}

// PreFilter computes the pod's requests once.
func (f *Fit) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod) *framework.Status {
	state.Write(preFilterStateKey, &preFilterState{requests: framework.PodRequests(pod, false), nonZero: framework.PodRequests(pod, true)})
	return nil
}

// InsufficientResource is one resource a node lacks for a pod.
type InsufficientResource struct {
	Name      corev1.ResourceName
	Reason    string
	Requested int64
	Used      int64
	Capacity  int64
}

// Filter rejects a node without room for the pod's requests or for one
// more pod.
func (f *Fit) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	insufficient := f.Fits(&f.state(state, pod).requests, ni)
	if len(insufficient) == 0 {
		return nil
	}
	reasons := make([]string, len(insufficient))
	for i, r := range insufficient {
		reasons[i] = r.Reason
	}
	return framework.NewStatus(framework.Unschedulable, reasons...)
}

// Fits lists what ni lacks for a pod requesting req, as upstream's
// fitsRequest.
func (f *Fit) Fits(req *framework.Resource, ni *framework.NodeInfo) []InsufficientResource {
	var out []InsufficientResource
	if int64(len(ni.Pods))+1 > ni.Allocatable.AllowedPodNumber {
		out = append(out, InsufficientResource{Name: corev1.ResourcePods, Reason: ErrReasonTooManyPods, Requested: 1, Used: int64(len(ni.Pods)), Capacity: ni.Allocatable.AllowedPodNumber})
	}
	check := func(name corev1.ResourceName, want, alloc, used int64) {
		if want > 0 && want > alloc-used {
			out = append(out, InsufficientResource{Name: name, Reason: "Insufficient " + string(name), Requested: want, Used: used, Capacity: alloc})
		}
	}
	check(corev1.ResourceCPU, req.MilliCPU, ni.Allocatable.MilliCPU, ni.Requested.MilliCPU)
	check(corev1.ResourceMemory, req.Memory, ni.Allocatable.Memory, ni.Requested.Memory)
	check(corev1.ResourceEphemeralStorage, req.EphemeralStorage, ni.Allocatable.EphemeralStorage, ni.Requested.EphemeralStorage)
	names := make([]corev1.ResourceName, 0, len(req.Scalar))
	for name := range req.Scalar {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if f.isIgnored(name) {
			continue
		}
		check(name, req.Scalar[name], ni.Allocatable.Scalar[name], ni.Requested.Scalar[name])
	}
	return out
}

func (f *Fit) isIgnored(name corev1.ResourceName) bool {
	if f.ignored[name] {
		return true
	}
	if i := strings.IndexByte(string(name), '/'); i > 0 {
		return slices.Contains(f.ignoredGroups, string(name)[:i])
	}
	return false
}

// Score rates the node by the configured strategy.
func (f *Fit) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	return allocationScore(f.resources, f.kinds, f.score, &f.state(state, pod).nonZero, ni, false), nil
}

// ScoreExtensions implements framework.ScorePlugin: scores are already
// within [0, 100].
func (*Fit) ScoreExtensions() framework.ScoreExtensions { return nil }

// leastAllocatedScore favours nodes with more room left:
// (allocatable - requested) * 100 / allocatable, weighted over resources.
func leastAllocatedScore(resources []ResourceSpec, requested, allocatable []int64) int64 {
	var score, weights int64
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		w := resources[i].Weight
		s := int64(0)
		if requested[i] <= allocatable[i] {
			s = (allocatable[i] - requested[i]) * framework.MaxNodeScore / allocatable[i]
		}
		score += s * w
		weights += w
	}
	if weights == 0 {
		return 0
	}
	return score / weights
}

// mostAllocatedScore favours fuller nodes (bin packing):
// requested * 100 / allocatable, weighted over resources.
func mostAllocatedScore(resources []ResourceSpec, requested, allocatable []int64) int64 {
	var score, weights int64
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		w := resources[i].Weight
		r := min(requested[i], allocatable[i])
		score += r * framework.MaxNodeScore / allocatable[i] * w
		weights += w
	}
	if weights == 0 {
		return 0
	}
	return score / weights
}
