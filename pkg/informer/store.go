package informer

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// DeletedFinalStateUnknown is handed to DeleteFunc in place of an object
// that was deleted while the informer was not watching (found missing on a
// relist). Obj is the last state the informer knew and may be stale.
type DeletedFinalStateUnknown struct {
	Key string
	Obj runtime.Object
}

// KeyFunc returns obj's store key: "namespace/name", or "name" for
// cluster-scoped objects. A DeletedFinalStateUnknown yields its Key, so
// delete handlers can pass what they receive.
func KeyFunc(obj any) (string, error) {
	switch o := obj.(type) {
	case DeletedFinalStateUnknown:
		return o.Key, nil
	case *DeletedFinalStateUnknown:
		return o.Key, nil
	case string:
		return o, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", fmt.Errorf("object has no meta: %w", err)
	}
	if ns := m.GetNamespace(); ns != "" {
		return ns + "/" + m.GetName(), nil
	}
	return m.GetName(), nil
}

// SplitKey splits a store key into namespace and name.
func SplitKey(key string) (namespace, name string, err error) {
	parts := strings.Split(key, "/")
	switch len(parts) {
	case 1:
		return "", parts[0], nil
	case 2:
		return parts[0], parts[1], nil
	}
	return "", "", fmt.Errorf("unexpected key format: %q", key)
}

// IndexFunc computes the index values of an object.
type IndexFunc func(obj runtime.Object) ([]string, error)

// Indexers names index functions.
type Indexers map[string]IndexFunc

// NamespaceIndex is the name of the index by namespace.
const NamespaceIndex = "namespace"

// LabelIndex is the name of the index by namespace and label: one value
// per label, LabelIndexValue(namespace, key, value).
const LabelIndex = "namespace-label"

// LabelIndexValue is the LabelIndex value of label key=value in namespace.
func LabelIndexValue(namespace, key, value string) string {
	return namespace + "\x00" + key + "=" + value
}

// LabelIndexFunc indexes objects by namespace and each of their labels, so
// that a lister answers a selector from the objects carrying one of its
// labels instead of scanning the namespace.
func LabelIndexFunc(obj runtime.Object) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("object has no meta: %w", err)
	}
	lbls := m.GetLabels()
	out := make([]string, 0, len(lbls))
	for k, v := range lbls {
		out = append(out, LabelIndexValue(m.GetNamespace(), k, v))
	}
	return out, nil
}

// indexSizer is implemented by the indexer: how many objects an index
// value holds, without copying them.
type indexSizer interface {
	IndexLen(indexName, value string) (int, error)
}

// NamespaceIndexFunc indexes objects by namespace.
func NamespaceIndexFunc(obj runtime.Object) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("object has no meta: %w", err)
	}
	return []string{m.GetNamespace()}, nil
}

// Store is a thread-safe map of objects by key.
type Store interface {
	Add(obj runtime.Object) error
	Update(obj runtime.Object) error
	Delete(obj runtime.Object) error
	Get(obj runtime.Object) (item runtime.Object, exists bool, err error)
	GetByKey(key string) (item runtime.Object, exists bool, err error)
	List() []runtime.Object
	ListKeys() []string
	// Replace swaps the whole content.
	Replace(objs []runtime.Object) error
}

// Indexer is a Store with named indexes.
type Indexer interface {
	Store
	// ByIndex returns the objects whose index indexName has value.
	ByIndex(indexName, value string) ([]runtime.Object, error)
	// IndexKeys returns the keys of the objects whose index indexName has value.
	IndexKeys(indexName, value string) ([]string, error)
	// Index returns the objects sharing any index value with obj.
	Index(indexName string, obj runtime.Object) ([]runtime.Object, error)
	// ListIndexFuncValues returns the values present in an index.
	ListIndexFuncValues(indexName string) []string
	GetIndexers() Indexers
	// AddIndexers adds indexes and builds them over the current content.
	AddIndexers(newIndexers Indexers) error
}

// NewIndexer returns an empty thread-safe Indexer keyed by KeyFunc.
func NewIndexer(indexers Indexers) Indexer {
	s := &indexer{items: map[string]runtime.Object{}, indexers: Indexers{}, indices: map[string]index{}}
	for name, f := range indexers {
		s.indexers[name] = f
		s.indices[name] = index{}
	}
	return s
}

// index maps an index value to the set of keys having it.
type index map[string]map[string]struct{}

type indexer struct {
	mu       sync.RWMutex
	items    map[string]runtime.Object
	indexers Indexers
	indices  map[string]index
}

func (s *indexer) Add(obj runtime.Object) error { return s.Update(obj) }

func (s *indexer) Update(obj runtime.Object) error {
	key, err := KeyFunc(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(key, obj)
}

// put stores obj at key and updates every index; s.mu is held. The object is
// stored even when an index function fails; the error is returned.
func (s *indexer) put(key string, obj runtime.Object) error {
	old, hadOld := s.items[key]
	s.items[key] = obj
	var firstErr error
	for name, f := range s.indexers {
		if hadOld {
			s.unindex(name, f, key, old)
		}
		if err := s.indexOne(name, f, key, obj); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func (s *indexer) indexOne(name string, f IndexFunc, key string, obj runtime.Object) error {
	values, err := f(obj)
	if err != nil {
		return fmt.Errorf("index %s of %s: %w", name, key, err)
	}
	idx := s.indices[name]
	for _, v := range values {
		set := idx[v]
		if set == nil {
			set = map[string]struct{}{}
			idx[v] = set
		}
		set[key] = struct{}{}
	}
	return nil
}

func (s *indexer) unindex(name string, f IndexFunc, key string, obj runtime.Object) {
	values, err := f(obj)
	if err != nil {
		return
	}
	idx := s.indices[name]
	for _, v := range values {
		if set := idx[v]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(idx, v)
			}
		}
	}
}

func (s *indexer) Delete(obj runtime.Object) error {
	key, err := KeyFunc(obj)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteKey(key)
	return nil
}

func (s *indexer) deleteKey(key string) {
	old, ok := s.items[key]
	if !ok {
		return
	}
	for name, f := range s.indexers {
		s.unindex(name, f, key, old)
	}
	delete(s.items, key)
}

func (s *indexer) Get(obj runtime.Object) (runtime.Object, bool, error) {
	key, err := KeyFunc(obj)
	if err != nil {
		return nil, false, err
	}
	return s.GetByKey(key)
}

func (s *indexer) GetByKey(key string) (runtime.Object, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	obj, ok := s.items[key]
	return obj, ok, nil
}

func (s *indexer) List() []runtime.Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]runtime.Object, 0, len(s.items))
	for _, obj := range s.items {
		out = append(out, obj)
	}
	return out
}

func (s *indexer) ListKeys() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.items))
	for k := range s.items {
		out = append(out, k)
	}
	return out
}

func (s *indexer) Replace(objs []runtime.Object) error {
	items := make(map[string]runtime.Object, len(objs))
	for _, obj := range objs {
		key, err := KeyFunc(obj)
		if err != nil {
			return err
		}
		items[key] = obj
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = map[string]runtime.Object{}
	for name := range s.indexers {
		s.indices[name] = index{}
	}
	var firstErr error
	for key, obj := range items {
		if err := s.put(key, obj); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func (s *indexer) IndexKeys(indexName, value string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.indices[indexName]
	if !ok {
		return nil, fmt.Errorf("index %q does not exist", indexName)
	}
	set := idx[value]
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// IndexLen is how many objects hold value in the index.
func (s *indexer) IndexLen(indexName, value string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.indices[indexName]
	if !ok {
		return 0, fmt.Errorf("index %q does not exist", indexName)
	}
	return len(idx[value]), nil
}

func (s *indexer) ByIndex(indexName, value string) ([]runtime.Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.indices[indexName]
	if !ok {
		return nil, fmt.Errorf("index %q does not exist", indexName)
	}
	set := idx[value]
	out := make([]runtime.Object, 0, len(set))
	for k := range set {
		out = append(out, s.items[k])
	}
	return out, nil
}

func (s *indexer) Index(indexName string, obj runtime.Object) ([]runtime.Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.indexers[indexName]
	if !ok {
		return nil, fmt.Errorf("index %q does not exist", indexName)
	}
	values, err := f(obj)
	if err != nil {
		return nil, err
	}
	keys := map[string]struct{}{}
	for _, v := range values {
		for k := range s.indices[indexName][v] {
			keys[k] = struct{}{}
		}
	}
	out := make([]runtime.Object, 0, len(keys))
	for k := range keys {
		out = append(out, s.items[k])
	}
	return out, nil
}

func (s *indexer) ListIndexFuncValues(indexName string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.indices[indexName]))
	for v := range s.indices[indexName] {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func (s *indexer) GetIndexers() Indexers {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(Indexers, len(s.indexers))
	for k, v := range s.indexers {
		out[k] = v
	}
	return out
}

func (s *indexer) AddIndexers(newIndexers Indexers) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range newIndexers {
		if _, ok := s.indexers[name]; ok {
			return fmt.Errorf("indexer %q already exists", name)
		}
	}
	var firstErr error
	for name, f := range newIndexers {
		s.indexers[name] = f
		s.indices[name] = index{}
		for key, obj := range s.items {
			if err := s.indexOne(name, f, key, obj); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}
