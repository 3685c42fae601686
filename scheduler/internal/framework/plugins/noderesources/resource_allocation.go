// Package noderesources holds the NodeResourcesFit filter and scorer and
// the NodeResourcesBalancedAllocation scorer.
package noderesources

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// ResourceSpec is a resource and its weight in a score.
type ResourceSpec struct {
	Name   corev1.ResourceName `json:"name"`
	Weight int64               `json:"weight"`
}

// DefaultResources are the resources scores weigh by default.
var DefaultResources = []ResourceSpec{{Name: corev1.ResourceCPU, Weight: 1}, {Name: corev1.ResourceMemory, Weight: 1}}

func validateResources(rs []ResourceSpec) error {
	for _, r := range rs {
		if r.Weight <= 0 || r.Weight > 100 {
			return fmt.Errorf("resource %q: weight %d is not in [1, 100]", r.Name, r.Weight)
		}
	}
	return nil
}

// scorer turns the requested and allocatable amounts of each resource into
// a score in [0, 100].
// A strategy is a plain value (not a func) so that the per-node amounts
// can live on the stack.
type scorer int

const (
	leastAllocated scorer = iota
	mostAllocated
	balanced
)

func (s scorer) score(resources []ResourceSpec, requested, allocatable []int64) int64 {
	switch s {
	case mostAllocated:
		return mostAllocatedScore(resources, requested, allocatable)
	case balanced:
		return balancedScore(requested, allocatable)
	default:
		return leastAllocatedScore(resources, requested, allocatable)
	}
}

// maxStackResources is how many scored resources fit the stack buffers of
// allocationScore; more are allocated.
const maxStackResources = 8

// allocationScore is upstream's resourceAllocationScorer.score: for each
// resource, the node's requested amount plus the pod's, against the node's
// allocatable; a resource the node lacks, or an extended resource the pod
// does not ask for, is left out.
func allocationScore(resources []ResourceSpec, score scorer, podReq *framework.Resource, ni *framework.NodeInfo, useRequested bool) int64 {
	var reqBuf, allocBuf [maxStackResources]int64
	requested, allocatable := reqBuf[:0], allocBuf[:0]
	if len(resources) > maxStackResources {
		requested, allocatable = make([]int64, 0, len(resources)), make([]int64, 0, len(resources))
	}
	requested, allocatable = requested[:len(resources)], allocatable[:len(resources)]
	nodeReq := &ni.NonZeroRequested
	if useRequested {
		nodeReq = &ni.Requested
	}
	for i, r := range resources {
		podAmount := podReq.Get(r.Name)
		if framework.IsScalarResourceName(r.Name) && podAmount == 0 {
			continue
		}
		alloc := ni.Allocatable.Get(r.Name)
		if alloc == 0 {
			continue
		}
		allocatable[i] = alloc
		requested[i] = nodeReq.Get(r.Name) + podAmount
	}
	return score.score(resources, requested, allocatable)
}
