package garbagecollector

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// identity locates an object in the API.
type identity struct {
	GVR       schema.GroupVersionResource
	Namespace string
	Name      string
	UID       types.UID
}

// node is what the graph knows of an observed object.
type node struct {
	identity
	owners     []metav1.OwnerReference
	finalizers []string
	deleting   bool // deletionTimestamp set
	dependents map[types.UID]bool
}

func (n *node) hasFinalizer(f string) bool { return slices.Contains(n.finalizers, f) }

// deletingDependents says whether the object waits, in foreground
// deletion, for its dependents to go.
func (n *node) deletingDependents() bool {
	return n.deleting && n.hasFinalizer(metav1.FinalizerDeleteDependents)
}

// orphaning says whether the object waits for its dependents to be
// orphaned.
func (n *node) orphaning() bool {
	return n.deleting && n.hasFinalizer(metav1.FinalizerOrphanDependents)
}

// graph is the ownerReference graph: nodes by uid, each with the uids of
// the observed objects that name it as owner. Owners that were not (yet)
// observed have no node; their dependents are still indexed under their
// uid.
type graph struct {
	mu         sync.Mutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]bool
}

func newGraph() *graph {
	return &graph{nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]bool{}}
}

// upsert records an object's current state and returns the uids to process.
func (g *graph) upsert(id identity, owners []metav1.OwnerReference, finalizers []string, deleting bool) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.nodes[id.UID]
	n := &node{identity: id, owners: slices.Clone(owners), finalizers: slices.Clone(finalizers), deleting: deleting}
	g.nodes[id.UID] = n
	var out []types.UID
	oldOwners := map[types.UID]metav1.OwnerReference{}
	if old != nil {
		for _, r := range old.owners {
			oldOwners[r.UID] = r
		}
	}
	newOwners := map[types.UID]bool{}
	ownersChanged := old == nil
	for _, r := range owners {
		newOwners[r.UID] = true
		if g.dependents[r.UID] == nil {
			g.dependents[r.UID] = map[types.UID]bool{}
		}
		g.dependents[r.UID][id.UID] = true
		o, had := oldOwners[r.UID]
		if !had || blocks(o) != blocks(r) {
			ownersChanged = true
			// An owner that waits on its blocking dependents must look again.
			if on := g.nodes[r.UID]; on != nil && on.deletingDependents() {
				out = append(out, r.UID)
			}
		}
	}
	for uid := range oldOwners {
		if !newOwners[uid] {
			ownersChanged = true
			g.unlink(uid, id.UID)
			if on := g.nodes[uid]; on != nil && (on.deletingDependents() || on.orphaning()) {
				out = append(out, uid)
			}
		}
	}
	if ownersChanged && len(owners) > 0 {
		out = append(out, id.UID)
	}
	// An owner starting (or still in) foreground or orphan deletion: it and
	// its dependents need processing.
	if (n.deletingDependents() || n.orphaning()) && (old == nil || old.deletingDependents() != n.deletingDependents() || old.orphaning() != n.orphaning()) {
		out = append(out, id.UID)
		if n.deletingDependents() {
			for dep := range g.dependents[id.UID] {
				out = append(out, dep)
			}
		}
	}
	return out
}

func (g *graph) unlink(owner, dep types.UID) {
	if deps := g.dependents[owner]; deps != nil {
		delete(deps, dep)
		if len(deps) == 0 {
			delete(g.dependents, owner)
		}
	}
}

// remove forgets a deleted object and returns the uids to process: its
// dependents (their owner is gone) and its owners that wait on it.
func (g *graph) remove(uid types.UID) []types.UID {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return nil
	}
	delete(g.nodes, uid)
	var out []types.UID
	for _, r := range n.owners {
		g.unlink(r.UID, uid)
		if on := g.nodes[r.UID]; on != nil && (on.deletingDependents() || on.orphaning()) {
			out = append(out, r.UID)
		}
	}
	for dep := range g.dependents[uid] {
		out = append(out, dep)
	}
	return out
}

// get returns a copy of the node of uid, or nil.
func (g *graph) get(uid types.UID) *node {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.nodes[uid]
	if n == nil {
		return nil
	}
	cp := *n
	return &cp
}

// observed says whether an object with uid is in the graph.
func (g *graph) observed(uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nodes[uid] != nil
}

// dependentsOf returns copies of the observed dependents of uid.
func (g *graph) dependentsOf(uid types.UID) []*node {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*node
	for dep := range g.dependents[uid] {
		if n := g.nodes[dep]; n != nil {
			cp := *n
			out = append(out, &cp)
		}
	}
	slices.SortFunc(out, func(a, b *node) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// hasDependents says whether any observed object names uid as owner.
func (g *graph) hasDependents(uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for dep := range g.dependents[uid] {
		if g.nodes[dep] != nil {
			return true
		}
	}
	return false
}

func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}

// ownerRef returns n's reference to owner, if any.
func (n *node) ownerRef(owner types.UID) (metav1.OwnerReference, bool) {
	for _, r := range n.owners {
		if r.UID == owner {
			return r, true
		}
	}
	return metav1.OwnerReference{}, false
}
