// Package cache is the scheduler's view of the cluster: every node with
// the pods on it, bound ones from the informers and assumed ones whose
// binding is in flight. A scheduling cycle reads a Snapshot, refreshed
// incrementally from the cache.
package cache

import (
	"fmt"
	"slices"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

type podState struct {
	pod     *corev1.Pod
	assumed bool
}

// Cache holds nodes and the pods on them. It is safe for concurrent use.
type Cache struct {
	logger *zap.Logger

	mu    sync.Mutex
	nodes map[string]*framework.NodeInfo
	pods  map[types.UID]*podState
	// generation increases on every change.
	generation int64
	// dirty are the nodes changed since the last UpdateSnapshot; removed
	// says whether one was removed. snapshotGeneration is the generation
	// the last updated snapshot reached.
	dirty              map[string]struct{}
	removed            bool
	snapshotGeneration int64
}

// New returns an empty cache.
func New(logger *zap.Logger) *Cache {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Cache{
		logger: logger,
		nodes:  map[string]*framework.NodeInfo{},
		pods:   map[types.UID]*podState{},
		dirty:  map[string]struct{}{},
	}
}

func (c *Cache) touch(name string, ni *framework.NodeInfo) {
	c.generation++
	ni.Generation = c.generation
	c.dirty[name] = struct{}{}
}

func (c *Cache) nodeInfo(name string) *framework.NodeInfo {
	ni, ok := c.nodes[name]
	if !ok {
		ni = framework.NewNodeInfo()
		c.nodes[name] = ni
	}
	return ni
}

func (c *Cache) addPodLocked(pod *corev1.Pod) {
	ni := c.nodeInfo(pod.Spec.NodeName)
	ni.AddPod(pod)
	c.touch(pod.Spec.NodeName, ni)
}

func (c *Cache) removePodLocked(pod *corev1.Pod) {
	ni, ok := c.nodes[pod.Spec.NodeName]
	if !ok {
		return
	}
	ni.RemovePod(pod)
	c.touch(pod.Spec.NodeName, ni)
	if ni.Node() == nil && len(ni.Pods) == 0 {
		delete(c.nodes, pod.Spec.NodeName)
		c.removed = true
	}
}

// AssumePod accounts for pod (with spec.nodeName set) on its node before
// its binding is stored, so the next cycle sees the node's resources taken.
func (c *Cache) AssumePod(pod *corev1.Pod) error {
	if pod.Spec.NodeName == "" {
		return fmt.Errorf("assume pod %s/%s: no node name", pod.Namespace, pod.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pod.UID]; ok {
		return fmt.Errorf("assume pod %s/%s: already in the cache", pod.Namespace, pod.Name)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod, assumed: true}
	return nil
}

// ForgetPod drops an assumed pod whose binding failed.
func (c *Cache) ForgetPod(pod *corev1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.pods[pod.UID]
	if !ok {
		return nil
	}
	if !st.assumed {
		return fmt.Errorf("forget pod %s/%s: not assumed", pod.Namespace, pod.Name)
	}
	c.removePodLocked(st.pod)
	delete(c.pods, pod.UID)
	return nil
}

// IsAssumedPod says whether pod is assumed and not yet seen bound.
func (c *Cache) IsAssumedPod(pod *corev1.Pod) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.pods[pod.UID]
	return ok && st.assumed
}

// AddPod records a bound pod seen by the informer, confirming it if it was
// assumed (on whichever node it really landed).
func (c *Cache) AddPod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.pods[pod.UID]; ok {
		if st.assumed && st.pod.Spec.NodeName != pod.Spec.NodeName {
			c.logger.Info("pod was assumed on one node and bound to another", zap.String("pod", pod.Namespace+"/"+pod.Name),
				zap.String("assumedNode", st.pod.Spec.NodeName), zap.String("node", pod.Spec.NodeName))
		}
		c.removePodLocked(st.pod)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod}
}

// UpdatePod replaces a bound pod.
func (c *Cache) UpdatePod(_, newPod *corev1.Pod) { c.AddPod(newPod) }

// RemovePod drops a pod, bound or assumed.
func (c *Cache) RemovePod(pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.pods[pod.UID]
	if !ok {
		return
	}
	c.removePodLocked(st.pod)
	delete(c.pods, pod.UID)
}

// AddNode adds or replaces a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni := c.nodeInfo(node.Name)
	if ni.Node() == nil {
		c.removed = true // the node list changes
	}
	ni.SetNode(node)
	c.touch(node.Name, ni)
}

// UpdateNode replaces a node.
func (c *Cache) UpdateNode(_, newNode *corev1.Node) { c.AddNode(newNode) }

// RemoveNode removes a node; its pods stay accounted (on a node-less
// entry) until they are deleted.
func (c *Cache) RemoveNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[node.Name]
	if !ok {
		return
	}
	ni.RemoveNode()
	c.touch(node.Name, ni)
	c.removed = true
	if len(ni.Pods) == 0 {
		delete(c.nodes, node.Name)
	}
}

// Counts returns the numbers of nodes and of pods (assumed ones included).
func (c *Cache) Counts() (nodes, pods int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ni := range c.nodes {
		if ni.Node() != nil {
			nodes++
		}
	}
	return nodes, len(c.pods)
}

// Snapshot is a consistent copy of the cache's nodes for one scheduling
// cycle. Only the scheduling goroutine uses it.
type Snapshot struct {
	infos      map[string]*framework.NodeInfo
	list       []*framework.NodeInfo
	index      map[string]int
	generation int64
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{infos: map[string]*framework.NodeInfo{}, index: map[string]int{}}
}

// NewSnapshotFrom builds a snapshot of nodes and pods (for tests).
func NewSnapshotFrom(nodes []*corev1.Node, pods []*corev1.Pod) *Snapshot {
	c := New(nil)
	for _, n := range nodes {
		c.AddNode(n)
	}
	for _, p := range pods {
		c.AddPod(p)
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	return s
}

// List returns the nodes, in a stable order (by name).
func (s *Snapshot) List() []*framework.NodeInfo { return s.list }

// Get returns a node's info.
func (s *Snapshot) Get(name string) (*framework.NodeInfo, bool) {
	ni, ok := s.infos[name]
	return ni, ok
}

// NumNodes is the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.list) }

// UpdateSnapshot brings s up to date, cloning only the nodes changed since
// s was last updated (everything, if s is not the snapshot last updated).
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.generation == c.generation && s.generation == c.snapshotGeneration {
		return
	}
	full := s.generation != c.snapshotGeneration || s.generation == 0
	rebuild := full || c.removed
	if full {
		s.infos = make(map[string]*framework.NodeInfo, len(c.nodes))
		for name, ni := range c.nodes {
			if ni.Node() != nil {
				s.infos[name] = ni.Clone()
			}
		}
	} else {
		for name := range c.dirty {
			ni, ok := c.nodes[name]
			if !ok || ni.Node() == nil {
				if _, had := s.infos[name]; had {
					delete(s.infos, name)
					rebuild = true
				}
				continue
			}
			clone := ni.Clone()
			if i, ok := s.index[name]; ok && !rebuild {
				s.list[i] = clone
			} else {
				rebuild = true
			}
			s.infos[name] = clone
		}
	}
	if rebuild {
		names := make([]string, 0, len(s.infos))
		for name := range s.infos {
			names = append(names, name)
		}
		slices.Sort(names)
		s.list = make([]*framework.NodeInfo, len(names))
		s.index = make(map[string]int, len(names))
		for i, name := range names {
			s.list[i] = s.infos[name]
			s.index[name] = i
		}
	}
	clear(c.dirty)
	c.removed = false
	s.generation = c.generation
	c.snapshotGeneration = c.generation
}
