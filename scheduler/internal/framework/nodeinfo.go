package framework

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodInfo is a pod on a node with its precomputed requests.
type PodInfo struct {
	Pod *corev1.Pod
	// Requested is what fitting counts; NonZeroRequested what scoring
	// counts (missing cpu/memory requests defaulted).
	Requested, NonZeroRequested Resource
	// The pod's inter-pod affinity terms, parsed once.
	RequiredAffinityTerms, RequiredAntiAffinityTerms   []AffinityTerm
	PreferredAffinityTerms, PreferredAntiAffinityTerms []WeightedAffinityTerm
}

// NewPodInfo computes pod's requests and parses its affinity terms.
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod, Requested: PodRequests(pod, false), NonZeroRequested: PodRequests(pod, true)}
	pi.setAffinityTerms()
	return pi
}

// NodeInfo is a node with the pods on it (bound or assumed) and their
// aggregate requests. The scheduler's cache owns the live ones; a
// scheduling cycle reads clones in a Snapshot.
type NodeInfo struct {
	node *corev1.Node
	// Pods are the pods on the node, assumed ones included.
	Pods []*PodInfo
	// Requested and NonZeroRequested sum the pods' requests.
	Requested, NonZeroRequested Resource
	// Allocatable is the node's status.allocatable.
	Allocatable Resource
	// PodsWithAffinity are the pods with inter-pod affinity or
	// anti-affinity terms; PodsWithRequiredAntiAffinity those with
	// required anti-affinity terms. Both are subsets of Pods.
	PodsWithAffinity             []*PodInfo
	PodsWithRequiredAntiAffinity []*PodInfo
	// UsedPorts are the host ports the pods use.
	UsedPorts HostPortInfo
	// ImageSizes maps the node's normalised image names to their sizes.
	ImageSizes map[string]int64
	// Generation increases on every change; snapshots copy only what
	// changed.
	Generation int64
}

// NewNodeInfo returns a node info holding pods (node set later).
func NewNodeInfo(pods ...*corev1.Pod) *NodeInfo {
	n := &NodeInfo{UsedPorts: HostPortInfo{}}
	for _, p := range pods {
		n.AddPod(p)
	}
	return n
}

// Node returns the node, nil if it was deleted while pods remain.
func (n *NodeInfo) Node() *corev1.Node {
	if n == nil {
		return nil
	}
	return n.node
}

// SetNode sets the node and its allocatable.
func (n *NodeInfo) SetNode(node *corev1.Node) {
	n.node = node
	n.Allocatable = NewResource(node.Status.Allocatable)
	n.ImageSizes = NodeImageSizes(node)
}

// NodeImageSizes maps every name of every image in node's status to its
// size.
func NodeImageSizes(node *corev1.Node) map[string]int64 {
	if len(node.Status.Images) == 0 {
		return nil
	}
	m := make(map[string]int64, len(node.Status.Images))
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			m[NormalizedImageName(name)] = img.SizeBytes
		}
	}
	return m
}

// NormalizedImageName adds ":latest" to an image name with neither tag nor
// digest, as upstream does.
func NormalizedImageName(name string) string {
	if strings.LastIndex(name, ":") <= strings.LastIndex(name, "/") && !strings.Contains(name, "@") {
		name += ":latest"
	}
	return name
}

// RemoveNode clears the node, keeping the pods.
func (n *NodeInfo) RemoveNode() { n.node = nil }

// AddPod accounts for pod.
func (n *NodeInfo) AddPod(pod *corev1.Pod) { n.AddPodInfo(NewPodInfo(pod)) }

// AddPodInfo accounts for a pod whose requests are computed.
func (n *NodeInfo) AddPodInfo(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	n.Requested.AddResource(&pi.Requested)
	n.NonZeroRequested.AddResource(&pi.NonZeroRequested)
	n.UsedPorts.addPod(pi.Pod, 1)
	if pi.HasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinityTerms) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
}

func removeFrom(list []*PodInfo, uid types.UID) []*PodInfo {
	for i, pi := range list {
		if pi.Pod.UID == uid {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last]
		}
	}
	return list
}

// RemovePod removes the pod with pod's UID; false if it was not there.
func (n *NodeInfo) RemovePod(pod *corev1.Pod) bool {
	for i, pi := range n.Pods {
		if pi.Pod.UID != pod.UID {
			continue
		}
		last := len(n.Pods) - 1
		n.Pods[i] = n.Pods[last]
		n.Pods[last] = nil
		n.Pods = n.Pods[:last]
		n.Requested.SubResource(&pi.Requested)
		n.NonZeroRequested.SubResource(&pi.NonZeroRequested)
		n.UsedPorts.addPod(pi.Pod, -1)
		if pi.HasAffinity() {
			n.PodsWithAffinity = removeFrom(n.PodsWithAffinity, pod.UID)
		}
		if len(pi.RequiredAntiAffinityTerms) > 0 {
			n.PodsWithRequiredAntiAffinity = removeFrom(n.PodsWithRequiredAntiAffinity, pod.UID)
		}
		return true
	}
	return false
}

// Clone copies n so that later changes to n do not show in the copy. Pods
// themselves are shared (they are never modified).
func (n *NodeInfo) Clone() *NodeInfo {
	c := &NodeInfo{
		node:             n.node,
		Pods:             append([]*PodInfo(nil), n.Pods...),
		Requested:        n.Requested.Clone(),
		NonZeroRequested: n.NonZeroRequested.Clone(),
		Allocatable:      n.Allocatable.Clone(),
		UsedPorts:        n.UsedPorts.clone(),
		ImageSizes:       n.ImageSizes, // replaced, never modified
		Generation:       n.Generation,
	}
	if len(n.PodsWithAffinity) > 0 {
		c.PodsWithAffinity = append([]*PodInfo(nil), n.PodsWithAffinity...)
	}
	if len(n.PodsWithRequiredAntiAffinity) > 0 {
		c.PodsWithRequiredAntiAffinity = append([]*PodInfo(nil), n.PodsWithRequiredAntiAffinity...)
	}
	return c
}

// HasPod says whether a pod with uid is on the node.
func (n *NodeInfo) HasPod(uid types.UID) bool {
	for _, pi := range n.Pods {
		if pi.Pod.UID == uid {
			return true
		}
	}
	return false
}

// DefaultBindAllHostIP is the host IP of a hostPort with none given.
const DefaultBindAllHostIP = "0.0.0.0"

// ProtocolPort is a protocol and port.
type ProtocolPort struct {
	Protocol string
	Port     int32
}

// HostPortInfo counts the host ports in use, by host IP.
type HostPortInfo map[string]map[ProtocolPort]int

// Add records one use of ip/protocol/port.
func (h HostPortInfo) Add(ip, protocol string, port int32) { h.add(ip, protocol, port, 1) }

func (h HostPortInfo) add(ip, protocol string, port int32, delta int) {
	if port <= 0 {
		return
	}
	ip, protocol = sanitize(ip, protocol)
	pp := ProtocolPort{Protocol: protocol, Port: port}
	m := h[ip]
	if m == nil {
		if delta < 0 {
			return
		}
		m = map[ProtocolPort]int{}
		h[ip] = m
	}
	m[pp] += delta
	if m[pp] <= 0 {
		delete(m, pp)
		if len(m) == 0 {
			delete(h, ip)
		}
	}
}

// CheckConflict says whether ip/protocol/port collides with a port in use:
// the same port on the same IP, or on 0.0.0.0 from either side.
func (h HostPortInfo) CheckConflict(ip, protocol string, port int32) bool {
	if port <= 0 {
		return false
	}
	ip, protocol = sanitize(ip, protocol)
	pp := ProtocolPort{Protocol: protocol, Port: port}
	if ip == DefaultBindAllHostIP {
		for _, m := range h {
			if m[pp] > 0 {
				return true
			}
		}
		return false
	}
	for _, key := range []string{DefaultBindAllHostIP, ip} {
		if h[key][pp] > 0 {
			return true
		}
	}
	return false
}

func (h HostPortInfo) addPod(pod *corev1.Pod, delta int) {
	for _, p := range PodHostPorts(pod) {
		h.add(p.HostIP, string(p.Protocol), p.HostPort, delta)
	}
}

func (h HostPortInfo) clone() HostPortInfo {
	c := make(HostPortInfo, len(h))
	for ip, m := range h {
		cm := make(map[ProtocolPort]int, len(m))
		for k, v := range m {
			cm[k] = v
		}
		c[ip] = cm
	}
	return c
}

func sanitize(ip, protocol string) (string, string) {
	if ip == "" {
		ip = DefaultBindAllHostIP
	}
	if protocol == "" {
		protocol = string(corev1.ProtocolTCP)
	}
	return ip, protocol
}

// PodHostPorts returns the container ports of pod that take a host port:
// its containers' and its restartable (sidecar) init containers'.
func PodHostPorts(pod *corev1.Pod) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				out = append(out, p)
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return out
}
