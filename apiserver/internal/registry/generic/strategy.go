// Package generic is the one registry every served resource goes through:
// create, update, delete, get, list and watch over etcd and the watch cache,
// with a Strategy per kind for what differs.
package generic

import (
	"context"

	"k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Strategy is what a kind adds to the generic registry. Objects passed in are
// the versioned k8s.io/api types (*corev1.Pod, ...), already decoded; the
// store sets uid, timestamps, resourceVersion, generation and handles
// generateName and deletion itself.
type Strategy interface {
	// NameValidator checks metadata.name (and generateName with prefix=true),
	// e.g. validation.NameIsDNSSubdomain.
	NameValidator() validation.ValidateNameFunc
	// Default fills the fields upstream defaults (restartPolicy, protocol...).
	// Called on create and on every update of the main resource.
	Default(obj runtime.Object)
	// PrepareForCreate clears what a create must not set (status for kinds
	// with a status subresource is reset to its initial value).
	PrepareForCreate(ctx context.Context, obj runtime.Object)
	// PrepareForUpdate keeps what an update of the main resource must not
	// change (the old status for kinds with a status subresource).
	PrepareForUpdate(ctx context.Context, obj, old runtime.Object)
	// PrepareForStatusUpdate keeps everything of old but the status.
	PrepareForStatusUpdate(ctx context.Context, obj, old runtime.Object)
	// Validate checks a new object's kind-specific fields (not metadata,
	// which the store validates).
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
	// ValidateUpdate checks an update, immutable fields included.
	ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// ValidateStatusUpdate checks a status update.
	ValidateStatusUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList
	// SpecChanged reports whether the update changes what generation counts
	// (spec, for most kinds); the store then bumps metadata.generation.
	SpecChanged(obj, old runtime.Object) bool
	// Fields returns the selectable fields beyond metadata.name and
	// metadata.namespace (for pods: spec.nodeName, status.phase, ...).
	Fields(obj runtime.Object) fields.Set
}
