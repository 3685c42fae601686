package generic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/runtime/schema"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	kjson "sigs.k8s.io/json"
)

// MaxPatchSize bounds a patch body, as the request body limit does.
const MaxPatchSize = 3 << 20

// Patch applies a JSON merge patch, strategic merge patch or JSON patch to
// the current object and writes the result through the update path
// (validation, compare-and-swap, retries on a concurrent write).
func (s *Store) Patch(ctx context.Context, ns, name string, pt types.PatchType, data []byte, status, dryRun bool) (runtime.Object, error) {
	if len(data) > MaxPatchSize {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxPatchSize))
	}
	if status && !s.Resource.HasSubresource("status") {
		return nil, apierrors.NewNotFound(s.gr(), name+"/status")
	}
	switch pt {
	case types.MergePatchType, types.StrategicMergePatchType, types.JSONPatchType:
	default:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schema.GroupResource{}, "", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got %s", pt), 0, false)
	}
	mode := MainUpdate
	if status {
		mode = StatusUpdate
	}
	return s.update(ctx, ns, name, mode, dryRun, func(cur runtime.Object) (runtime.Object, error) {
		return ApplyPatch(cur, pt, data)
	})
}

// ApplyPatch returns cur with the patch applied, as a new object.
func ApplyPatch(cur runtime.Object, pt types.PatchType, data []byte) (runtime.Object, error) {
	orig, err := json.Marshal(cur)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var patched []byte
	switch pt {
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(orig, data)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(data); err == nil {
			patched, err = p.Apply(orig)
		}
	case types.StrategicMergePatchType:
		var schemaObj runtime.Object = cur.DeepCopyObject()
		patched, err = strategicpatch.StrategicMergePatch(orig, data, schemaObj)
	default:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schema.GroupResource{}, "", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got %s", pt), 0, false)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch could not be applied: %v", err))
	}
	out := cur.DeepCopyObject()
	zero, err := zeroOf(out)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if strictErrs, err := kjson.UnmarshalStrict(patched, zero); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the patch produced an invalid object: %v", err))
	} else if len(strictErrs) > 0 {
		_ = strictErrs // unknown fields are dropped, as upstream's non-strict patch decoding does
	}
	zero.GetObjectKind().SetGroupVersionKind(cur.GetObjectKind().GroupVersionKind())
	return zero, nil
}

func zeroOf(obj runtime.Object) (runtime.Object, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	return newObject(gvk)
}
