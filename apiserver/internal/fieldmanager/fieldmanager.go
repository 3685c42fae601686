// Package fieldmanager tracks field ownership (metadata.managedFields) and
// serves server-side apply, with apimachinery's structured-merge-diff field
// manager over the OpenAPI schemas the apiserver generates.
package fieldmanager

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// Managers builds one field manager per kind and subresource.
type Managers struct {
	tc managedfields.TypeConverter

	mu   sync.Mutex
	byID map[managerID]*managedfields.FieldManager

	creates createMemo
}

type managerID struct {
	gvk schema.GroupVersionKind
	sub string
}

// New builds the type converter from the OpenAPI v3 schemas.
func New(schemas map[string]*spec.Schema) (*Managers, error) {
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		return nil, fmt.Errorf("field manager type converter: %w", err)
	}
	return &Managers{tc: tc, byID: map[managerID]*managedfields.FieldManager{}}, nil
}

// Defaulter is what a kind's strategy offers to default objects.
type Defaulter interface{ Default(obj runtime.Object) }

type defaulter struct{ d Defaulter }

func (d defaulter) Default(obj runtime.Object) {
	if d.d != nil {
		d.d.Default(obj)
	}
}

// For returns the field manager of a kind ("" or "status" subresource).
func (m *Managers) For(gvk schema.GroupVersionKind, sub string, d Defaulter) (*managedfields.FieldManager, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := managerID{gvk: gvk, sub: sub}
	if fm, ok := m.byID[id]; ok {
		return fm, nil
	}
	fm, err := managedfields.NewDefaultFieldManager(m.tc, scheme.Scheme, defaulter{d}, scheme.Scheme, gvk, gvk.GroupVersion(), sub, nil)
	if err != nil {
		return nil, fmt.Errorf("field manager for %v: %w", gvk, err)
	}
	m.byID[id] = fm
	return fm, nil
}

type managerKey struct{}

// WithManager records in ctx the field manager name of a request; writes
// made with such a context update managedFields.
func WithManager(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, managerKey{}, name)
}

// ManagerFrom returns the field manager name of a request, if any.
func ManagerFrom(ctx context.Context) (string, bool) {
	name, ok := ctx.Value(managerKey{}).(string)
	return name, ok && name != ""
}

// DefaultManager derives a manager name from a User-Agent, as upstream
// does: its first path segment ("kubectl/v1.32.4 (linux/amd64)" gives
// "kubectl").
func DefaultManager(userAgent string) string {
	name, _, _ := strings.Cut(userAgent, "/")
	name = strings.TrimSpace(name)
	if len(name) > 128 {
		name = name[:128]
	}
	return name
}

// Tracker updates managedFields for the writes of one kind.
type Tracker struct {
	Managers *Managers
	GVK      schema.GroupVersionKind
	Default  Defaulter
}

// Track returns obj with managedFields updated for a write by manager
// (live is nil on create). Failures leave obj unchanged: ownership
// tracking never blocks a write.
func (t *Tracker) Track(live, obj runtime.Object, manager, sub string) runtime.Object {
	fm, err := t.Managers.For(t.GVK, sub, t.Default)
	if err != nil {
		return obj
	}
	var key *[]byte
	if live == nil {
		// A create: the managed set is a function of the object's content
		// (less the fields the field manager strips), so creates of the
		// same content (a controller's pods, a load test) reuse it.
		var acc metav1.Object
		if key, acc = createKey(t.GVK, obj, manager, sub); key != nil {
			defer releaseKey(key)
			if entries, ok := t.Managers.creates.get(*key); ok {
				obj.GetObjectKind().SetGroupVersionKind(t.GVK)
				acc.SetManagedFields(stamp(entries, time.Now().UTC()))
				return obj
			}
		}
		var err error
		if live, err = scheme.Scheme.New(t.GVK); err != nil {
			return obj
		}
	}
	live.GetObjectKind().SetGroupVersionKind(t.GVK)
	obj.GetObjectKind().SetGroupVersionKind(t.GVK)
	out := fm.UpdateNoErrors(live, obj, manager)
	if key != nil && out == obj {
		if acc, err := meta.Accessor(out); err == nil {
			t.Managers.creates.put(*key, acc.GetManagedFields(), manager)
		}
	}
	return out
}

// Apply merges an applied configuration into live (an empty object of the
// kind when creating) for manager; conflicts with other managers' fields
// fail with 409 unless force.
func (t *Tracker) Apply(live, applied runtime.Object, manager, sub string, force bool) (runtime.Object, error) {
	fm, err := t.Managers.For(t.GVK, sub, t.Default)
	if err != nil {
		return nil, err
	}
	live.GetObjectKind().SetGroupVersionKind(t.GVK)
	return fm.Apply(live, applied, manager, force)
}

// WithoutManager returns ctx with no field manager: writes made with it
// leave managedFields as they are (server-side apply has set them).
func WithoutManager(ctx context.Context) context.Context {
	return context.WithValue(ctx, managerKey{}, "")
}
