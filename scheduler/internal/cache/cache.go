// Package cache is the scheduler's view of the cluster: every node with
// the pods on it, bound ones from the informers and assumed ones whose
// binding is in flight. A scheduling cycle reads a Snapshot, refreshed
// incrementally from the cache.
package cache

import (
	"fmt"
	"maps"
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
	// imageNodes maps a normalised image name to the nodes holding it;
	// imagesChanged says whether it changed since the last UpdateSnapshot.
	imageNodes    map[string]map[string]struct{}
	imagesChanged bool
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

		imageNodes: map[string]map[string]struct{}{},
	}
}

// setNodeImages replaces node name's images old by new in imageNodes.
func (c *Cache) setNodeImages(name string, old, new map[string]int64) {
	for img := range old {
		if _, ok := new[img]; ok {
			continue
		}
		c.imagesChanged = true
		if set := c.imageNodes[img]; set != nil {
			delete(set, name)
			if len(set) == 0 {
				delete(c.imageNodes, img)
			}
		}
	}
	for img := range new {
		if _, ok := old[img]; ok {
			continue
		}
		c.imagesChanged = true
		set := c.imageNodes[img]
		if set == nil {
			set = map[string]struct{}{}
			c.imageNodes[img] = set
		}
		set[name] = struct{}{}
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
	var oldImages map[string]int64
	if ni.Node() == nil {
		c.removed = true // the node list changes
	} else {
		oldImages = ni.ImageSizes
	}
	ni.SetNode(node)
	c.setNodeImages(node.Name, oldImages, ni.ImageSizes)
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
	if ni.Node() != nil {
		c.setNodeImages(node.Name, ni.ImageSizes, nil)
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
	// havePodsWithAffinity and havePodsWithRequiredAntiAffinity are the
	// nodes of list with such pods.
	havePodsWithAffinity             nodeList
	havePodsWithRequiredAntiAffinity nodeList
	// havePodsScoringAffinity are the nodes with pods with required
	// affinity or preferred (anti-)affinity terms: the only existing pods
	// that score an incoming pod without preferred terms of its own.
	havePodsScoringAffinity nodeList
	// imageNumNodes counts the nodes holding each image.
	imageNumNodes map[string]int
	// labelNodes indexes the pods by namespace and label: for each, the
	// nodes holding such pods and how many. It is kept up to date node by
	// node, so selectors with an equality requirement visit only the nodes
	// with candidate pods.
	labelNodes map[framework.PodLabel]map[string]int
	// terminatingLabelNodes is the same for the pods being deleted only
	// (usually empty), so that counts of live pods come from the index.
	terminatingLabelNodes map[framework.PodLabel]map[string]int
	// antiTerms indexes the existing pods' required anti-affinity terms
	// (node by node, as labelNodes); antiUnindexed counts the terms left
	// out (not interned).
	antiTerms     map[framework.TermKey]*framework.TermNodes
	antiUnindexed int
	// topology caches TopologyValues per label key until a node is added,
	// removed or relabelled.
	topologyMu sync.Mutex
	topology   map[string]map[string]int
}

// TopologyValues returns each value of node label key and how many nodes
// carry it, computed once per key until the nodes' labels change.
func (s *Snapshot) TopologyValues(key string) map[string]int {
	s.topologyMu.Lock()
	defer s.topologyMu.Unlock()
	if vals, ok := s.topology[key]; ok {
		return vals
	}
	vals := map[string]int{}
	for _, ni := range s.list {
		if v, ok := ni.Node().Labels[key]; ok {
			vals[v]++
		}
	}
	if s.topology == nil {
		s.topology = map[string]map[string]int{}
	}
	s.topology[key] = vals
	return vals
}

func (s *Snapshot) forgetTopology() {
	s.topologyMu.Lock()
	s.topology = nil
	s.topologyMu.Unlock()
}

func (s *Snapshot) indexPods(ni *framework.NodeInfo, name string, delta int) {
	for _, pi := range ni.Pods {
		s.indexPod(pi, name, delta)
	}
}

// reindexPods moves the index from old to new, two versions of node
// name's info: only the pods that are in one and not the other are
// counted (a cycle adds or removes one pod of a node, and re-counting
// every pod of the node cost more than the rest of the snapshot update).
func (s *Snapshot) reindexPods(old, new *framework.NodeInfo, name string) {
	if len(old.Pods) > 32 || len(new.Pods) > 32 {
		in := make(map[*framework.PodInfo]bool, len(old.Pods))
		for _, pi := range old.Pods {
			in[pi] = true
		}
		for _, pi := range new.Pods {
			if in[pi] {
				delete(in, pi)
			} else {
				s.indexPod(pi, name, 1)
			}
		}
		for pi := range in {
			s.indexPod(pi, name, -1)
		}
		return
	}
	for _, pi := range old.Pods {
		if !slices.Contains(new.Pods, pi) {
			s.indexPod(pi, name, -1)
		}
	}
	for _, pi := range new.Pods {
		if !slices.Contains(old.Pods, pi) {
			s.indexPod(pi, name, 1)
		}
	}
}

// indexPod counts pod pi on node name (delta 1) or no longer (-1) in the
// label and anti-affinity term indexes.
func (s *Snapshot) indexPod(pi *framework.PodInfo, name string, delta int) {
	for i := range pi.RequiredAntiAffinityTerms {
		t := &pi.RequiredAntiAffinityTerms[i]
		if t.ID() == 0 {
			s.antiUnindexed += delta
			continue
		}
		if s.antiTerms == nil {
			s.antiTerms = map[framework.TermKey]*framework.TermNodes{}
		}
		key := framework.TermKey{ID: t.ID(), TopologyKey: t.TopologyKey}
		e := s.antiTerms[key]
		if e == nil {
			if delta < 0 {
				continue
			}
			e = &framework.TermNodes{Term: t, Nodes: map[string]int{}}
			s.antiTerms[key] = e
		}
		e.Nodes[name] += delta
		if e.Nodes[name] <= 0 {
			delete(e.Nodes, name)
			if len(e.Nodes) == 0 {
				delete(s.antiTerms, key)
			}
		}
	}
	terminating := pi.Pod.DeletionTimestamp != nil
	if terminating && s.terminatingLabelNodes == nil {
		s.terminatingLabelNodes = map[framework.PodLabel]map[string]int{}
	}
	for k, v := range pi.Pod.Labels {
		key := framework.PodLabel{Namespace: pi.Pod.Namespace, Key: k, Value: v}
		countLabel(s.labelNodes, key, name, delta)
		if terminating {
			countLabel(s.terminatingLabelNodes, key, name, delta)
		}
	}
}

func countLabel(index map[framework.PodLabel]map[string]int, key framework.PodLabel, name string, delta int) {
	m := index[key]
	if m == nil {
		if delta < 0 {
			return
		}
		m = map[string]int{}
		index[key] = m
	}
	m[name] += delta
	if m[name] <= 0 {
		delete(m, name)
		if len(m) == 0 {
			delete(index, key)
		}
	}
}

// NodesWithPodLabel returns the nodes holding pods of namespace with label
// key=value, and how many such pods each holds. The map must not be
// changed.
func (s *Snapshot) NodesWithPodLabel(l framework.PodLabel) map[string]int { return s.labelNodes[l] }

// NodesWithTerminatingPodLabel is NodesWithPodLabel for the pods being
// deleted only (read only).
func (s *Snapshot) NodesWithTerminatingPodLabel(l framework.PodLabel) map[string]int {
	return s.terminatingLabelNodes[l]
}

// RequiredAntiAffinityTerms returns the distinct required anti-affinity
// terms of the pods and the nodes holding them (read only).
func (s *Snapshot) RequiredAntiAffinityTerms() (map[framework.TermKey]*framework.TermNodes, bool) {
	return s.antiTerms, s.antiUnindexed == 0
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{infos: map[string]*framework.NodeInfo{}, index: map[string]int{}, labelNodes: map[framework.PodLabel]map[string]int{}}
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

// HavePodsWithAffinityList returns the nodes with pods that have
// inter-pod affinity or anti-affinity.
func (s *Snapshot) HavePodsWithAffinityList() []*framework.NodeInfo {
	return s.havePodsWithAffinity.list
}

// HavePodsWithRequiredAntiAffinityList returns the nodes with pods that
// have required anti-affinity.
func (s *Snapshot) HavePodsWithRequiredAntiAffinityList() []*framework.NodeInfo {
	return s.havePodsWithRequiredAntiAffinity.list
}

// HavePodsWithScoringAffinityList returns the nodes with pods that have
// required affinity or preferred affinity or anti-affinity terms.
func (s *Snapshot) HavePodsWithScoringAffinityList() []*framework.NodeInfo {
	return s.havePodsScoringAffinity.list
}

func hasScoringAffinity(ni *framework.NodeInfo) bool {
	for _, pi := range ni.PodsWithAffinity {
		if len(pi.RequiredAffinityTerms) > 0 || len(pi.PreferredAffinityTerms) > 0 || len(pi.PreferredAntiAffinityTerms) > 0 {
			return true
		}
	}
	return false
}

// nodeList is a set of nodes kept in a slice (in no particular order),
// updated node by node: a cycle changes one or two nodes, and rebuilding
// the lists of nodes with affinity pods from all nodes each time cost as
// much as the cycle's filters.
type nodeList struct {
	list  []*framework.NodeInfo
	index map[string]int
}

// set puts ni (named name) in the list if in, else takes it out.
func (l *nodeList) set(name string, ni *framework.NodeInfo, in bool) {
	if l.index == nil {
		l.index = map[string]int{}
	}
	i, had := l.index[name]
	switch {
	case had && in:
		l.list[i] = ni
	case in:
		l.index[name] = len(l.list)
		l.list = append(l.list, ni)
	case had:
		last := len(l.list) - 1
		if i != last {
			moved := l.list[last]
			l.list[i] = moved
			l.index[moved.Node().Name] = i
		}
		l.list[last] = nil
		l.list = l.list[:last]
		delete(l.index, name)
	}
}

func (l *nodeList) reset() {
	l.list = nil
	l.index = map[string]int{}
}

// ImageNumNodes returns how many nodes hold image (a normalised name).
func (s *Snapshot) ImageNumNodes(image string) int { return s.imageNumNodes[image] }

var _ framework.NodeInfoLister = (*Snapshot)(nil)

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
	// affinityChanged: the lists of nodes with pods with affinity are
	// rebuilt (else they are updated node by node).
	affinityChanged := rebuild
	if full {
		s.infos = make(map[string]*framework.NodeInfo, len(c.nodes))
		s.labelNodes = map[framework.PodLabel]map[string]int{}
		s.terminatingLabelNodes = nil
		s.antiTerms, s.antiUnindexed = nil, 0
		for name, ni := range c.nodes {
			if ni.Node() != nil {
				clone := ni.Clone()
				s.infos[name] = clone
				s.indexPods(clone, name, 1)
			}
		}
	} else {
		for name := range c.dirty {
			ni, ok := c.nodes[name]
			old, had := s.infos[name]
			if !ok || ni.Node() == nil {
				if had {
					s.indexPods(old, name, -1)
					delete(s.infos, name)
					rebuild = true
					affinityChanged = true
				}
				s.havePodsWithAffinity.set(name, nil, false)
				s.havePodsWithRequiredAntiAffinity.set(name, nil, false)
				s.havePodsScoringAffinity.set(name, nil, false)
				continue
			}
			clone := ni.Clone()
			if had {
				s.reindexPods(old, clone, name)
			} else {
				s.indexPods(clone, name, 1)
			}
			if old, ok := s.infos[name]; !ok || !maps.Equal(old.Node().Labels, clone.Node().Labels) {
				s.forgetTopology()
			}
			s.havePodsWithAffinity.set(name, clone, len(clone.PodsWithAffinity) > 0)
			s.havePodsWithRequiredAntiAffinity.set(name, clone, len(clone.PodsWithRequiredAntiAffinity) > 0)
			s.havePodsScoringAffinity.set(name, clone, hasScoringAffinity(clone))
			if i, ok := s.index[name]; ok && !rebuild {
				s.list[i] = clone
			} else {
				rebuild = true
			}
			s.infos[name] = clone
		}
	}
	if rebuild {
		s.forgetTopology()
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
	if affinityChanged {
		s.havePodsWithAffinity.reset()
		s.havePodsWithRequiredAntiAffinity.reset()
		s.havePodsScoringAffinity.reset()
		for _, ni := range s.list {
			name := ni.Node().Name
			if len(ni.PodsWithAffinity) > 0 {
				s.havePodsWithAffinity.set(name, ni, true)
			}
			if len(ni.PodsWithRequiredAntiAffinity) > 0 {
				s.havePodsWithRequiredAntiAffinity.set(name, ni, true)
			}
			if hasScoringAffinity(ni) {
				s.havePodsScoringAffinity.set(name, ni, true)
			}
		}
	}
	if full || c.imagesChanged {
		s.imageNumNodes = make(map[string]int, len(c.imageNodes))
		for img, set := range c.imageNodes {
			s.imageNumNodes[img] = len(set)
		}
		c.imagesChanged = false
	}
	if len(c.dirty) > 256 {
		// A cleared map keeps its size, and ranging over it costs as
		// much as over the full one: after a burst (every node added at
		// start) the next cycles would each walk thousands of empty slots.
		c.dirty = map[string]struct{}{}
	} else {
		clear(c.dirty)
	}
	c.removed = false
	s.generation = c.generation
	c.snapshotGeneration = c.generation
}
