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

// resourceKind says where a scored resource is kept in a
// framework.Resource, so the per-node amounts are read without comparing
// resource names.
type resourceKind uint8

const (
	kindOther resourceKind = iota // in Scalar, not an extended resource
	kindCPU
	kindMemory
	kindEphemeralStorage
	kindPods
	kindScalar // an extended resource: left out when the pod asks for none
)

func kindsOf(resources []ResourceSpec) []resourceKind {
	out := make([]resourceKind, len(resources))
	for i, r := range resources {
		switch r.Name {
		case corev1.ResourceCPU:
			out[i] = kindCPU
		case corev1.ResourceMemory:
			out[i] = kindMemory
		case corev1.ResourceEphemeralStorage:
			out[i] = kindEphemeralStorage
		case corev1.ResourcePods:
			out[i] = kindPods
		default:
			if framework.IsScalarResourceName(r.Name) {
				out[i] = kindScalar
			}
		}
	}
	return out
}

// amount is r.Get(name) for a resource of kind k.
func amount(r *framework.Resource, k resourceKind, name corev1.ResourceName) int64 {
	switch k {
	case kindCPU:
		return r.MilliCPU
	case kindMemory:
		return r.Memory
	case kindEphemeralStorage:
		return r.EphemeralStorage
	case kindPods:
		return r.AllowedPodNumber
	}
	return r.Scalar[name]
}

// allocationScore is upstream's resourceAllocationScorer.score: for each
// resource, the node's requested amount plus the pod's, against the node's
// allocatable; a resource the node lacks, or an extended resource the pod
// does not ask for, is left out. kinds are kindsOf(resources) (nil: computed).
func allocationScore(resources []ResourceSpec, kinds []resourceKind, score scorer, podReq *framework.Resource, ni *framework.NodeInfo, useRequested bool) int64 {
	if len(kinds) != len(resources) {
		kinds = kindsOf(resources)
	}
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
	for i := range resources {
		k, name := kinds[i], resources[i].Name
		podAmount := amount(podReq, k, name)
		if k == kindScalar && podAmount == 0 {
			continue
		}
		alloc := amount(&ni.Allocatable, k, name)
		if alloc == 0 {
			continue
		}
		allocatable[i] = alloc
		requested[i] = amount(nodeReq, k, name) + podAmount
	}
	return score.score(resources, requested, allocatable)
}
