package noderesources

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// BalancedAllocationName is the plugin's name in the config.
const BalancedAllocationName = "NodeResourcesBalancedAllocation"

const balancedStateKey framework.StateKey = "PreScore" + BalancedAllocationName

// BalancedAllocationArgs are the plugin's args in the config file.
type BalancedAllocationArgs struct {
	Resources []ResourceSpec `json:"resources,omitempty"`
}

// BalancedAllocation favours nodes whose resources would be used in equal
// fractions once the pod is placed.
type BalancedAllocation struct {
	resources []ResourceSpec
	kinds     []resourceKind
}

var (
	_ framework.PreScorePlugin = (*BalancedAllocation)(nil)
	_ framework.ScorePlugin    = (*BalancedAllocation)(nil)
)

// NewBalancedAllocation builds the plugin (cpu and memory by default).
func NewBalancedAllocation(raw []byte) (framework.Plugin, error) {
	var args BalancedAllocationArgs
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("%s args: %w", BalancedAllocationName, err)
		}
	}
	b := &BalancedAllocation{resources: DefaultResources}
	if len(args.Resources) > 0 {
		b.resources = args.Resources
	}
	if err := validateResources(b.resources); err != nil {
		return nil, fmt.Errorf("%s args: %w", BalancedAllocationName, err)
	}
	b.kinds = kindsOf(b.resources)
	return b, nil
}

// Name implements framework.Plugin.
func (*BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore computes the pod's requests; Skip if it requests none of the
// scored resources, as upstream.
func (b *BalancedAllocation) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	req := framework.PodRequests(pod, false)
	asks := false
	for _, r := range b.resources {
		if req.Get(r.Name) != 0 {
			asks = true
		}
	}
	if !asks {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(balancedStateKey, &req)
	return nil
}

// Score is (1 - the standard deviation of the requested fractions) * 100.
func (b *BalancedAllocation) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	var req *framework.Resource
	if d, ok := state.Read(balancedStateKey); ok {
		req = d.(*framework.Resource)
	} else {
		r := framework.PodRequests(pod, false)
		req = &r
	}
	return allocationScore(b.resources, b.kinds, balanced, req, ni, true), nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (*BalancedAllocation) ScoreExtensions() framework.ScoreExtensions { return nil }

func balancedScore(requested, allocatable []int64) int64 {
	var buf [maxStackResources]float64
	fractions := buf[:0]
	var total float64
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		f := math.Min(float64(requested[i])/float64(allocatable[i]), 1)
		total += f
		fractions = append(fractions, f)
	}
	std := 0.0
	switch {
	case len(fractions) == 2:
		std = math.Abs((fractions[0] - fractions[1]) / 2)
	case len(fractions) > 2:
		mean := total / float64(len(fractions))
		var sum float64
		for _, f := range fractions {
			sum += (f - mean) * (f - mean)
		}
		std = math.Sqrt(sum / float64(len(fractions)))
	}
	return int64((1 - std) * float64(framework.MaxNodeScore))
}
