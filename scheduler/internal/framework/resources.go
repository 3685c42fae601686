package framework

import (
	corev1 "k8s.io/api/core/v1"
)

// Defaults that scoring (not fitting) assumes for a container that requests
// no cpu or memory, as upstream's, so that such pods still spread.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resource is an amount of each resource the scheduler accounts for.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// AllowedPodNumber is the node's pod capacity (allocatable only).
	AllowedPodNumber int64
	// Scalar holds extended resources (nvidia.com/gpu, hugepages-2Mi, ...).
	Scalar map[corev1.ResourceName]int64
}

// NewResource converts a ResourceList.
func NewResource(rl corev1.ResourceList) Resource {
	var r Resource
	r.Add(rl)
	return r
}

// IsZero says whether nothing is requested.
func (r *Resource) IsZero() bool {
	if r.MilliCPU != 0 || r.Memory != 0 || r.EphemeralStorage != 0 || r.AllowedPodNumber != 0 {
		return false
	}
	for _, v := range r.Scalar {
		if v != 0 {
			return false
		}
	}
	return true
}

// Get returns the amount of one resource.
func (r *Resource) Get(name corev1.ResourceName) int64 {
	switch name {
	case corev1.ResourceCPU:
		return r.MilliCPU
	case corev1.ResourceMemory:
		return r.Memory
	case corev1.ResourceEphemeralStorage:
		return r.EphemeralStorage
	case corev1.ResourcePods:
		return r.AllowedPodNumber
	}
	return r.Scalar[name]
}

func (r *Resource) set(name corev1.ResourceName, v int64) {
	switch name {
	case corev1.ResourceCPU:
		r.MilliCPU = v
	case corev1.ResourceMemory:
		r.Memory = v
	case corev1.ResourceEphemeralStorage:
		r.EphemeralStorage = v
	case corev1.ResourcePods:
		r.AllowedPodNumber = v
	default:
		if IsScalarResourceName(name) {
			if r.Scalar == nil {
				r.Scalar = map[corev1.ResourceName]int64{}
			}
			r.Scalar[name] = v
		}
	}
}

// Add adds a ResourceList.
func (r *Resource) Add(rl corev1.ResourceList) {
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		default:
			r.set(name, r.Get(name)+q.Value())
		}
	}
}

// AddResource adds o to r.
func (r *Resource) AddResource(o *Resource) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.AllowedPodNumber += o.AllowedPodNumber
	for name, v := range o.Scalar {
		r.set(name, r.Scalar[name]+v)
	}
}

// SubResource subtracts o from r.
func (r *Resource) SubResource(o *Resource) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.AllowedPodNumber -= o.AllowedPodNumber
	for name, v := range o.Scalar {
		r.set(name, r.Scalar[name]-v)
	}
}

// SetMax raises each of r's amounts to o's where o's is larger.
func (r *Resource) SetMax(o *Resource) {
	r.MilliCPU = max(r.MilliCPU, o.MilliCPU)
	r.Memory = max(r.Memory, o.Memory)
	r.EphemeralStorage = max(r.EphemeralStorage, o.EphemeralStorage)
	r.AllowedPodNumber = max(r.AllowedPodNumber, o.AllowedPodNumber)
	for name, v := range o.Scalar {
		if v > r.Scalar[name] {
			r.set(name, v)
		}
	}
}

// Clone deep-copies r.
func (r Resource) Clone() Resource {
	if r.Scalar != nil {
		s := make(map[corev1.ResourceName]int64, len(r.Scalar))
		for k, v := range r.Scalar {
			s[k] = v
		}
		r.Scalar = s
	}
	return r
}

// IsScalarResourceName says whether name is an extended resource, a
// hugepages size or an attachable-volumes count: the resources kept in
// Resource.Scalar.
func IsScalarResourceName(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourcePods, corev1.ResourceStorage:
		return false
	}
	s := string(name)
	if len(s) >= len(corev1.ResourceHugePagesPrefix) && s[:len(corev1.ResourceHugePagesPrefix)] == corev1.ResourceHugePagesPrefix {
		return true
	}
	if len(s) >= len(corev1.ResourceAttachableVolumesPrefix) && s[:len(corev1.ResourceAttachableVolumesPrefix)] == corev1.ResourceAttachableVolumesPrefix {
		return true
	}
	// Extended resources are domain-prefixed and outside kubernetes.io/
	// (except requests.* quota names, which never appear on pods).
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// PodRequests returns what pod requests, as upstream's
// resourcehelper.PodRequests: the sum of its containers; each init
// container's requests, plus the restartable (sidecar) init containers
// started before it, raise that to their maximum; sidecars are added to the
// sum; then the pod's overhead is added. Pod-level requests
// (spec.resources), when set, replace the container totals of cpu and
// memory. With nonZero, a container without a cpu or memory request counts
// as DefaultMilliCPURequest / DefaultMemoryRequest (for scoring).
func PodRequests(pod *corev1.Pod, nonZero bool) Resource {
	containerReqs := func(c *corev1.Container) Resource {
		r := NewResource(c.Resources.Requests)
		if nonZero {
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				r.MilliCPU = DefaultMilliCPURequest
			}
			if _, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok {
				r.Memory = DefaultMemoryRequest
			}
		}
		return r
	}
	var reqs Resource
	for i := range pod.Spec.Containers {
		r := containerReqs(&pod.Spec.Containers[i])
		reqs.AddResource(&r)
	}
	var sidecars, initMax Resource
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := containerReqs(c)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			reqs.AddResource(&r)
			sidecars.AddResource(&r)
			r = sidecars.Clone()
		} else {
			r.AddResource(&sidecars)
		}
		initMax.SetMax(&r)
	}
	reqs.SetMax(&initMax)
	if pr := pod.Spec.Resources; pr != nil {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := pr.Requests[name]; ok {
				if name == corev1.ResourceCPU {
					reqs.MilliCPU = q.MilliValue()
				} else {
					reqs.Memory = q.Value()
				}
			}
		}
	}
	if pod.Spec.Overhead != nil {
		reqs.Add(pod.Spec.Overhead)
	}
	return reqs
}
