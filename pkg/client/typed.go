package client

import (
	"context"
	"fmt"
	"reflect"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// Typed is a client for one resource whose objects are T, e.g.
// Typed[*corev1.Pod].
type Typed[T runtime.Object] struct {
	c   *Client
	gvr schema.GroupVersionResource
}

// For returns the typed client of T's resource. T is a pointer to a served
// type, e.g. *corev1.Pod.
func For[T runtime.Object](c *Client) *Typed[T] {
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("client.For: %v is not a pointer type", typ)) // programming error
	}
	obj, _ := reflect.New(typ.Elem()).Interface().(runtime.Object)
	r, err := scheme.ResourceFor(obj)
	if err != nil {
		panic(fmt.Sprintf("client.For: %v", err)) // programming error: T is not a served type
	}
	return &Typed[T]{c: c, gvr: r.GVR}
}

// GVR is the resource the client addresses.
func (t *Typed[T]) GVR() schema.GroupVersionResource { return t.gvr }

func cast[T runtime.Object](obj runtime.Object, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	out, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("unexpected object type %T", obj)
	}
	return out, nil
}

// Get reads one object.
func (t *Typed[T]) Get(ctx context.Context, ns, name string) (T, error) {
	return cast[T](t.c.Get(ctx, t.gvr, ns, name, metav1.GetOptions{}))
}

// List returns the matching items and the list's metadata.
func (t *Typed[T]) List(ctx context.Context, ns string, opts metav1.ListOptions) ([]T, metav1.ListMeta, error) {
	_, objs, lm, err := t.c.listItems(ctx, t.gvr, ns, opts)
	if err != nil {
		return nil, metav1.ListMeta{}, err
	}
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		v, err := cast[T](o, nil)
		if err != nil {
			return nil, metav1.ListMeta{}, err
		}
		out = append(out, v)
	}
	return out, lm, nil
}

// Create creates obj in ns (empty for cluster-scoped kinds).
func (t *Typed[T]) Create(ctx context.Context, ns string, obj T) (T, error) {
	return cast[T](t.c.Create(ctx, t.gvr, ns, obj, metav1.CreateOptions{}))
}

// Update replaces obj.
func (t *Typed[T]) Update(ctx context.Context, ns string, obj T) (T, error) {
	return cast[T](t.c.Update(ctx, t.gvr, ns, obj, metav1.UpdateOptions{}))
}

// UpdateStatus replaces obj's status.
func (t *Typed[T]) UpdateStatus(ctx context.Context, ns string, obj T) (T, error) {
	return cast[T](t.c.UpdateStatus(ctx, t.gvr, ns, obj, metav1.UpdateOptions{}))
}

// Patch patches the named object.
func (t *Typed[T]) Patch(ctx context.Context, ns, name string, pt types.PatchType, data []byte, sub ...string) (T, error) {
	return cast[T](t.c.Patch(ctx, t.gvr, ns, name, pt, data, metav1.PatchOptions{}, sub...))
}

// Delete deletes the named object; finished says whether it is gone.
func (t *Typed[T]) Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (finished bool, err error) {
	_, finished, err = t.c.Delete(ctx, t.gvr, ns, name, opts)
	return finished, err
}

// Watch watches the resource.
func (t *Typed[T]) Watch(ctx context.Context, ns string, opts metav1.ListOptions) (watch.Interface, error) {
	return t.c.Watch(ctx, t.gvr, ns, opts)
}
