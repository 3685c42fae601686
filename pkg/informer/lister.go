package informer

import (
	"fmt"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
)

// Lister reads objects of type T (e.g. *corev1.Pod) from an informer's
// cache. Returned objects are shared with the cache: deep-copy before
// changing them.
type Lister[T runtime.Object] struct {
	indexer Indexer
	gr      schema.GroupResource
}

// NewLister returns a lister over indexer, whose objects are T.
func NewLister[T runtime.Object](indexer Indexer) *Lister[T] {
	l := &Lister[T]{indexer: indexer}
	if r, err := scheme.ResourceFor(newOf[T]()); err == nil {
		l.gr = r.GVR.GroupResource()
	} else {
		l.gr = schema.GroupResource{Resource: fmt.Sprintf("%T", newOf[T]())}
	}
	return l
}

// List returns the objects matching selector (nil matches everything).
func (l *Lister[T]) List(selector labels.Selector) []T {
	return filter[T](l.indexer.List(), selector)
}

// Get returns the object namespace/name (namespace "" for cluster-scoped
// objects), or a NotFound error.
func (l *Lister[T]) Get(namespace, name string) (T, error) {
	var zero T
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	obj, ok, err := l.indexer.GetByKey(key)
	if err != nil {
		return zero, err
	}
	if !ok {
		return zero, apierrors.NewNotFound(l.gr, name)
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("cached object %s is %T, not %T", key, obj, zero)
	}
	return t, nil
}

// ByNamespace returns a lister limited to namespace.
func (l *Lister[T]) ByNamespace(namespace string) NamespaceLister[T] {
	return NamespaceLister[T]{l: l, namespace: namespace}
}

// NamespaceLister reads the objects of one namespace.
type NamespaceLister[T runtime.Object] struct {
	l         *Lister[T]
	namespace string
}

// List returns the namespace's objects matching selector (nil matches
// everything).
func (n NamespaceLister[T]) List(selector labels.Selector) []T {
	if objs, ok := n.byLabel(selector); ok {
		return filter[T](objs, selector)
	}
	objs, err := n.l.indexer.ByIndex(NamespaceIndex, n.namespace)
	if err != nil { // no namespace index: scan
		objs = nil
		for _, obj := range n.l.indexer.List() {
			if m, err := meta.Accessor(obj); err == nil && m.GetNamespace() == n.namespace {
				objs = append(objs, obj)
			}
		}
	}
	return filter[T](objs, selector)
}

// byLabel returns the objects carrying the selector's most selective
// required label (key=value, or key in (value)), from the label index; ok
// is false when the selector requires no such label or there is no index.
func (n NamespaceLister[T]) byLabel(selector labels.Selector) (objs []runtime.Object, ok bool) {
	if selector == nil {
		return nil, false
	}
	sizer, isSizer := n.l.indexer.(indexSizer)
	reqs, selectable := selector.Requirements()
	if !isSizer || !selectable {
		return nil, false
	}
	best, bestLen := "", -1
	for _, r := range reqs {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		vals := r.Values()
		if vals.Len() != 1 {
			continue
		}
		v := LabelIndexValue(n.namespace, r.Key(), vals.List()[0])
		size, err := sizer.IndexLen(LabelIndex, v)
		if err != nil {
			return nil, false
		}
		if bestLen < 0 || size < bestLen {
			best, bestLen = v, size
		}
	}
	if bestLen < 0 {
		return nil, false
	}
	objs, err := n.l.indexer.ByIndex(LabelIndex, best)
	if err != nil {
		return nil, false
	}
	return objs, true
}

// Get returns the named object of the namespace, or a NotFound error.
func (n NamespaceLister[T]) Get(name string) (T, error) { return n.l.Get(n.namespace, name) }

func filter[T runtime.Object](objs []runtime.Object, selector labels.Selector) []T {
	out := make([]T, 0, len(objs))
	for _, obj := range objs {
		t, ok := obj.(T)
		if !ok {
			continue
		}
		if selector != nil && !selector.Empty() {
			m, err := meta.Accessor(obj)
			if err != nil || !selector.Matches(labels.Set(m.GetLabels())) {
				continue
			}
		}
		out = append(out, t)
	}
	return out
}
