package framework

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// NodeInfoLister is the read side of a scheduling cycle's snapshot.
type NodeInfoLister interface {
	// List returns every node, in a stable order.
	List() []*NodeInfo
	// Get returns one node's info.
	Get(name string) (*NodeInfo, bool)
	// HavePodsWithAffinityList returns the nodes with at least one pod
	// that has pod affinity or anti-affinity terms.
	HavePodsWithAffinityList() []*NodeInfo
	// HavePodsWithRequiredAntiAffinityList returns the nodes with at least
	// one pod that has required anti-affinity terms.
	HavePodsWithRequiredAntiAffinityList() []*NodeInfo
	// HavePodsWithScoringAffinityList returns the nodes with at least one
	// pod that has required affinity or preferred affinity or
	// anti-affinity terms (a subset of HavePodsWithAffinityList).
	HavePodsWithScoringAffinityList() []*NodeInfo
	// RequiredAntiAffinityTerms returns the distinct required
	// anti-affinity terms of the existing pods, each with the nodes
	// holding them; ok is false when some term could not be indexed
	// (then HavePodsWithRequiredAntiAffinityList must be scanned).
	RequiredAntiAffinityTerms() (terms map[TermKey]*TermNodes, ok bool)
	// TopologyValues returns, for a node label key, each value nodes
	// carry and how many nodes carry it (the topology domains of key).
	// The result is shared: do not change it.
	TopologyValues(key string) map[string]int
	// ImageNumNodes is the number of nodes holding a normalised image name.
	ImageNumNodes(image string) int
	// NodesWithPodLabel returns the names of the nodes holding pods with
	// a namespace and label, with how many each holds (read only).
	NodesWithPodLabel(l PodLabel) map[string]int
	// NodesWithTerminatingPodLabel is NodesWithPodLabel counting only
	// the pods being deleted (deletionTimestamp set).
	NodesWithTerminatingPodLabel(l PodLabel) map[string]int
}

// TermKey is a distinct affinity term (by AffinityTerm.ID) with its
// topology key.
type TermKey struct {
	ID          uint32
	TopologyKey string
}

// TermNodes is one distinct term (Term is any of the equal terms) and
// how many times it appears on each node's pods, by node name.
type TermNodes struct {
	Term  *AffinityTerm
	Nodes map[string]int
}

// PodLabel is a pod's namespace and one of its labels.
type PodLabel struct {
	Namespace, Key, Value string
}

// CandidateNodes returns the names of the nodes that may hold pods of one
// of namespaces matching sel, from the snapshot's label index, using one
// equality (or In) requirement of sel. ok is false when sel has no such
// requirement; then every node is a candidate.
func CandidateNodes(l NodeInfoLister, namespaces []string, sel labels.Selector) (nodes map[string]int, ok bool) {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, true // selects nothing
	}
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		values := r.Values().UnsortedList()
		if len(namespaces) == 1 && len(values) == 1 {
			return l.NodesWithPodLabel(PodLabel{namespaces[0], r.Key(), values[0]}), true
		}
		out := map[string]int{}
		for _, ns := range namespaces {
			for _, v := range values {
				for n, c := range l.NodesWithPodLabel(PodLabel{ns, r.Key(), v}) {
					out[n] += c
				}
			}
		}
		return out, true
	}
	return nil, false
}

// SingleLabel returns the label sel requires when that is its only
// requirement (key=value, key==value or key in (value)): then the pods it
// selects in namespace ns are those NodesWithPodLabel counts.
func SingleLabel(sel labels.Selector, ns string) (PodLabel, bool) {
	reqs, selectable := sel.Requirements()
	if !selectable || len(reqs) != 1 {
		return PodLabel{}, false
	}
	r := reqs[0]
	switch r.Operator() {
	case selection.Equals, selection.DoubleEquals, selection.In:
	default:
		return PodLabel{}, false
	}
	if r.Values().Len() != 1 {
		return PodLabel{}, false
	}
	return PodLabel{Namespace: ns, Key: r.Key(), Value: r.Values().UnsortedList()[0]}, true
}

// ObjectLister reads the informer caches of the objects some plugins
// consult: namespaces (affinity namespaceSelector) and the owners whose
// selectors default topology spreading uses.
type ObjectLister interface {
	Namespace(name string) (*corev1.Namespace, bool)
	Namespaces() []*corev1.Namespace
	Services(namespace string) []*corev1.Service
	ReplicationController(namespace, name string) (*corev1.ReplicationController, bool)
	ReplicaSet(namespace, name string) (*appsv1.ReplicaSet, bool)
	StatefulSet(namespace, name string) (*appsv1.StatefulSet, bool)
}

// Handle is what a plugin may use beyond its arguments, as upstream's
// framework.Handle.
type Handle interface {
	// SnapshotSharedLister is the current cycle's snapshot.
	SnapshotSharedLister() NodeInfoLister
	// ObjectLister is nil when the scheduler has no such informers (tests).
	ObjectLister() ObjectLister
	// Parallelizer runs per-node work of PreFilter and PreScore.
	Parallelizer() Parallelizer
}

// NewHandle returns a handle over a snapshot and an object lister (nil
// allowed).
func NewHandle(snapshot NodeInfoLister, objects ObjectLister) Handle {
	return staticHandle{snapshot, objects, NewParallelizer(4)}
}

type staticHandle struct {
	snapshot NodeInfoLister
	objects  ObjectLister
	parallel Parallelizer
}

func (h staticHandle) SnapshotSharedLister() NodeInfoLister { return h.snapshot }
func (h staticHandle) ObjectLister() ObjectLister           { return h.objects }
func (h staticHandle) Parallelizer() Parallelizer           { return h.parallel }
