package fieldmanager

import (
	"bytes"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// createMemo remembers the managedFields the structured-merge-diff field
// manager computed for creates, by content: on create (an empty live
// object, no managedFields sent) the result depends only on the kind, the
// subresource, the manager and the new object less the metadata fields the
// field manager strips (name, namespace, uid, resourceVersion, generation,
// creationTimestamp, selfLink), of which only presence matters. Only the
// time differs between two such creates.
type createMemo struct {
	mu   sync.RWMutex
	seed maphash.Seed
	m    map[uint64]memoEntry
}

type memoEntry struct {
	key     []byte
	entries []metav1.ManagedFieldsEntry
}

// maxCreateMemo bounds the memo; when full it starts over.
const maxCreateMemo = 512

func (c *createMemo) get(key []byte) ([]metav1.ManagedFieldsEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.m == nil {
		return nil, false
	}
	e, ok := c.m[maphash.Bytes(c.seed, key)]
	if !ok || !bytes.Equal(e.key, key) {
		return nil, false
	}
	return e.entries, true
}

// put remembers the entries of a create by manager if they are what a
// create makes: at most one entry, manager's.
func (c *createMemo) put(key []byte, entries []metav1.ManagedFieldsEntry, manager string) {
	if len(entries) > 1 || (len(entries) == 1 && (entries[0].Manager != manager || entries[0].Time == nil)) {
		return
	}
	saved := make([]metav1.ManagedFieldsEntry, len(entries))
	for i := range entries {
		entries[i].DeepCopyInto(&saved[i])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCreateMemo {
		if c.m == nil {
			c.seed = maphash.MakeSeed()
		}
		c.m = make(map[uint64]memoEntry, maxCreateMemo)
	}
	c.m[maphash.Bytes(c.seed, key)] = memoEntry{key: bytes.Clone(key), entries: saved}
}

// stamp copies remembered entries with the time of this write.
func stamp(entries []metav1.ManagedFieldsEntry, now time.Time) []metav1.ManagedFieldsEntry {
	if len(entries) == 0 {
		return nil
	}
	out := make([]metav1.ManagedFieldsEntry, len(entries))
	for i := range entries {
		entries[i].DeepCopyInto(&out[i])
		out[i].Time = &metav1.Time{Time: now}
	}
	return out
}

// marshaler is a type with a deterministic protobuf encoding (the
// generated k8s.io/api types).
type marshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

func releaseKey(b *[]byte) { keyBufs.Put(b) }

// createKey is the memo key of a create of obj (in a pooled buffer, to
// give back with releaseKey), or nil when obj cannot be keyed (no protobuf
// encoding, or managedFields were sent, which the field manager would start
// from).
func createKey(gvk schema.GroupVersionKind, obj runtime.Object, manager, sub string) (*[]byte, metav1.Object) {
	pm, ok := obj.(marshaler)
	if !ok {
		return nil, nil
	}
	acc, err := meta.Accessor(obj)
	if err != nil || len(acc.GetManagedFields()) > 0 {
		return nil, nil
	}
	// The stripped fields stand in by presence only, restored after.
	name, ns, uid, rv, link, gen, ts := acc.GetName(), acc.GetNamespace(), acc.GetUID(), acc.GetResourceVersion(), acc.GetSelfLink(), acc.GetGeneration(), acc.GetCreationTimestamp()
	acc.SetName(present(name))
	acc.SetNamespace(present(ns))
	acc.SetUID(types.UID(present(string(uid))))
	acc.SetResourceVersion(present(rv))
	acc.SetSelfLink(present(link))
	if gen != 0 {
		acc.SetGeneration(1)
	}
	if !ts.IsZero() {
		acc.SetCreationTimestamp(metav1.Unix(1, 0))
	}
	key := keyBufs.Get().(*[]byte)
	buf := append((*key)[:0], gvk.Group...)
	buf = append(buf, 0)
	buf = append(buf, gvk.Version...)
	buf = append(buf, 0)
	buf = append(buf, gvk.Kind...)
	buf = append(buf, 0)
	buf = append(buf, sub...)
	buf = append(buf, 0)
	buf = append(buf, manager...)
	buf = append(buf, 0)
	n := len(buf)
	buf = slices.Grow(buf, pm.Size())[:n+pm.Size()]
	_, err = pm.MarshalToSizedBuffer(buf[n:])
	*key = buf
	acc.SetName(name)
	acc.SetNamespace(ns)
	acc.SetUID(uid)
	acc.SetResourceVersion(rv)
	acc.SetSelfLink(link)
	acc.SetGeneration(gen)
	acc.SetCreationTimestamp(ts)
	if err != nil {
		releaseKey(key)
		return nil, nil
	}
	return key, acc
}

func present(s string) string {
	if s == "" {
		return ""
	}
	return "x"
}
