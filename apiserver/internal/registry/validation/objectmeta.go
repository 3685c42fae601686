package validation

import (
	"unicode"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Every function here checks its input with byte loops and plain
// comparisons and, only when something is invalid, calls the apimachinery
// function of the same name to produce the exact errors. Field paths are
// built only on those error paths.

// ValidateLabelName is metav1validation.ValidateLabelName.
func ValidateLabelName(labelName string, fldPath *field.Path) field.ErrorList {
	if qualifiedName(labelName, false) {
		return field.ErrorList{}
	}
	return metav1validation.ValidateLabelName(labelName, fldPath)
}

// ValidateLabels is metav1validation.ValidateLabels.
func ValidateLabels(labels map[string]string, fldPath *field.Path) field.ErrorList {
	if labelsValid(labels) {
		return field.ErrorList{}
	}
	return metav1validation.ValidateLabels(labels, fldPath)
}

func labelsValid(labels map[string]string) bool {
	for k, v := range labels {
		if !qualifiedName(k, false) || !labelValue(v) {
			return false
		}
	}
	return true
}

// ValidateLabelSelector is metav1validation.ValidateLabelSelector.
func ValidateLabelSelector(ps *metav1.LabelSelector, opts metav1validation.LabelSelectorValidationOptions, fldPath *field.Path) field.ErrorList {
	if ps == nil || labelSelectorValid(ps, opts) {
		return field.ErrorList{}
	}
	return metav1validation.ValidateLabelSelector(ps, opts, fldPath)
}

func labelSelectorValid(ps *metav1.LabelSelector, opts metav1validation.LabelSelectorValidationOptions) bool {
	if !labelsValid(ps.MatchLabels) {
		return false
	}
	for i := range ps.MatchExpressions {
		sr := &ps.MatchExpressions[i]
		switch sr.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(sr.Values) == 0 {
				return false
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(sr.Values) > 0 {
				return false
			}
		default:
			if !opts.AllowUnknownOperatorInRequirement {
				return false
			}
		}
		if !qualifiedName(sr.Key, false) {
			return false
		}
		if !opts.AllowInvalidLabelValueInSelector {
			for _, v := range sr.Values {
				if !labelValue(v) {
					return false
				}
			}
		}
	}
	return true
}

// ValidateAnnotations is apivalidation.ValidateAnnotations: keys are
// qualified names once lowercased, and the total size is bounded.
func ValidateAnnotations(annotations map[string]string, fldPath *field.Path) field.ErrorList {
	if annotationsValid(annotations) {
		return field.ErrorList{}
	}
	return apivalidation.ValidateAnnotations(annotations, fldPath)
}

func annotationsValid(annotations map[string]string) bool {
	var size int64
	for k, v := range annotations {
		// For ASCII keys, strings.ToLower only maps A-Z to a-z, which is
		// the same as accepting A-Z in the prefix (the name part accepts
		// both cases anyway). Non-ASCII keys fail here and are decided by
		// apimachinery.
		if !qualifiedName(k, true) {
			return false
		}
		size += int64(len(k)) + int64(len(v))
	}
	return size <= int64(apivalidation.TotalAnnotationSizeLimitB)
}

// ValidateFinalizerName is apivalidation.ValidateFinalizerName.
func ValidateFinalizerName(stringValue string, fldPath *field.Path) field.ErrorList {
	if qualifiedName(stringValue, false) {
		return field.ErrorList{}
	}
	return apivalidation.ValidateFinalizerName(stringValue, fldPath)
}

// ValidateFinalizers is apivalidation.ValidateFinalizers.
func ValidateFinalizers(finalizers []string, fldPath *field.Path) field.ErrorList {
	if finalizersValid(finalizers) {
		return field.ErrorList{}
	}
	return apivalidation.ValidateFinalizers(finalizers, fldPath)
}

func finalizersValid(finalizers []string) bool {
	orphan, foreground := false, false
	for _, f := range finalizers {
		if !qualifiedName(f, false) {
			return false
		}
		orphan = orphan || f == metav1.FinalizerOrphanDependents
		foreground = foreground || f == metav1.FinalizerDeleteDependents
	}
	return !(orphan && foreground)
}

// ValidateOwnerReferences is apivalidation.ValidateOwnerReferences.
func ValidateOwnerReferences(ownerReferences []metav1.OwnerReference, fldPath *field.Path) field.ErrorList {
	if ownerReferencesValid(ownerReferences) {
		return field.ErrorList{}
	}
	return apivalidation.ValidateOwnerReferences(ownerReferences, fldPath)
}

func ownerReferencesValid(refs []metav1.OwnerReference) bool {
	controllers := 0
	for i := range refs {
		ref := &refs[i]
		if ref.APIVersion == "" || ref.Kind == "" || ref.Name == "" || ref.UID == "" {
			return false
		}
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil || gv.Version == "" {
			return false
		}
		if _, banned := apivalidation.BannedOwners[gv.WithKind(ref.Kind)]; banned {
			return false
		}
		if ref.Controller != nil && *ref.Controller {
			if controllers++; controllers > 1 {
				return false
			}
		}
	}
	return true
}

// validateManagedFields is metav1validation.ValidateManagedFields with the
// CoveredByDeclarative option on fldPath.Child(child), as ObjectMeta
// validation calls it.
func validateManagedFields(entries []metav1.ManagedFieldsEntry, fldPath *field.Path, child string) field.ErrorList {
	if managedFieldsValid(entries) {
		return nil
	}
	return metav1validation.ValidateManagedFields(entries, fldPath.Child(child), metav1validation.CoveredByDeclarative)
}

func managedFieldsValid(entries []metav1.ManagedFieldsEntry) bool {
	for i := range entries {
		e := &entries[i]
		switch e.Operation {
		case metav1.ManagedFieldsOperationApply, metav1.ManagedFieldsOperationUpdate:
		default:
			return false
		}
		if len(e.FieldsType) > 0 && e.FieldsType != "FieldsV1" {
			return false
		}
		if len(e.Manager) > metav1validation.FieldManagerMaxLength || !printable(e.Manager) {
			return false
		}
		if len(e.Subresource) > metav1validation.MaxSubresourceNameLength {
			return false
		}
	}
	return true
}

// printable mirrors ValidateFieldManager's unicode.IsPrint loop.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			for _, r := range s[i:] {
				if !unicode.IsPrint(r) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// ValidateObjectMetaAccessor is apivalidation.ValidateObjectMetaAccessor:
// it validates an object's metadata on creation, after name generation.
func ValidateObjectMetaAccessor(meta metav1.Object, requiresNamespace bool, nameFn ValidateNameFunc, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList

	if generateName := meta.GetGenerateName(); len(generateName) != 0 {
		if msgs := nameFn(generateName, true); len(msgs) > 0 {
			p := fldPath.Child("generateName")
			for _, msg := range msgs {
				allErrs = append(allErrs, field.Invalid(p, generateName, msg))
			}
		}
	}
	if name := meta.GetName(); len(name) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), "name or generateName is required"))
	} else if msgs := nameFn(name, false); len(msgs) > 0 {
		p := fldPath.Child("name")
		for _, msg := range msgs {
			allErrs = append(allErrs, field.Invalid(p, name, msg))
		}
	}

	namespace := meta.GetNamespace()
	if requiresNamespace {
		if len(namespace) == 0 {
			allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), ""))
		} else if msgs := ValidateNamespaceName(namespace, false); len(msgs) > 0 {
			p := fldPath.Child("namespace")
			for _, msg := range msgs {
				allErrs = append(allErrs, field.Invalid(p, namespace, msg))
			}
		}
	} else if len(namespace) != 0 {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("namespace"), "not allowed on this type"))
	}

	allErrs = append(allErrs, validateGeneration(meta.GetGeneration(), fldPath)...)
	allErrs = append(allErrs, validateCommon(meta, fldPath)...)
	if f := meta.GetFinalizers(); !finalizersValid(f) {
		allErrs = append(allErrs, apivalidation.ValidateFinalizers(f, fldPath.Child("finalizers"))...)
	}
	return append(allErrs, validateManagedFields(meta.GetManagedFields(), fldPath, "managedFields")...)
}

func validateGeneration(generation int64, fldPath *field.Path) field.ErrorList {
	if generation >= 0 {
		return nil
	}
	return apivalidation.ValidateNonnegativeField(generation, fldPath.Child("generation")).MarkCoveredByDeclarative()
}

// validateCommon checks labels, annotations and ownerReferences, in that
// order, as both create and update validation do.
func validateCommon(meta metav1.Object, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if l := meta.GetLabels(); !labelsValid(l) {
		allErrs = append(allErrs, metav1validation.ValidateLabels(l, fldPath.Child("labels"))...)
	}
	if a := meta.GetAnnotations(); !annotationsValid(a) {
		allErrs = append(allErrs, apivalidation.ValidateAnnotations(a, fldPath.Child("annotations"))...)
	}
	if o := meta.GetOwnerReferences(); !ownerReferencesValid(o) {
		allErrs = append(allErrs, apivalidation.ValidateOwnerReferences(o, fldPath.Child("ownerReferences"))...)
	}
	return allErrs
}

// ValidateObjectMetaAccessorUpdate is
// apivalidation.ValidateObjectMetaAccessorUpdate: it validates an object's
// metadata when updated.
func ValidateObjectMetaAccessorUpdate(newMeta, oldMeta metav1.Object, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList

	// Finalizers cannot be added if the object is already being deleted.
	if oldMeta.GetDeletionTimestamp() != nil {
		if n, o := newMeta.GetFinalizers(), oldMeta.GetFinalizers(); !subset(n, o) {
			allErrs = append(allErrs, apivalidation.ValidateNoNewFinalizers(n, o, fldPath.Child("finalizers"))...)
		}
	}

	// Reject updates that don't specify a resource version
	if len(newMeta.GetResourceVersion()) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("resourceVersion"), newMeta.GetResourceVersion(), "must be specified for an update"))
	}

	// Generation shouldn't be decremented
	allErrs = append(allErrs, validateGeneration(newMeta.GetGeneration(), fldPath)...)
	if newMeta.GetGeneration() < oldMeta.GetGeneration() {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("generation"), newMeta.GetGeneration(), "must not be decremented"))
	}

	// Immutable fields: a plain comparison first (equal here implies
	// Semantic.DeepEqual), apimachinery's check otherwise.
	if n, o := newMeta.GetName(), oldMeta.GetName(); n != o {
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(n, o, fldPath.Child("name"))...)
	}
	if n, o := newMeta.GetNamespace(), oldMeta.GetNamespace(); n != o {
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(n, o, fldPath.Child("namespace"))...)
	}
	if n, o := newMeta.GetUID(), oldMeta.GetUID(); n != o {
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(n, o, fldPath.Child("uid")).WithOrigin("immutable").MarkCoveredByDeclarative()...)
	}
	if n, o := newMeta.GetCreationTimestamp(), oldMeta.GetCreationTimestamp(); !n.Time.Equal(o.Time) {
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(n, o, fldPath.Child("creationTimestamp")).WithOrigin("immutable").MarkCoveredByDeclarative()...)
	}
	if n, o := newMeta.GetDeletionTimestamp(), oldMeta.GetDeletionTimestamp(); !(n == nil && o == nil || n != nil && o != nil && n.Time.Equal(o.Time)) {
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(n, o, fldPath.Child("deletionTimestamp")).WithOrigin("immutable").MarkCoveredByDeclarative()...)
	}
	if n, o := newMeta.GetDeletionGracePeriodSeconds(), oldMeta.GetDeletionGracePeriodSeconds(); !(n == nil && o == nil || n != nil && o != nil && *n == *o) {
		allErrs = append(allErrs, apivalidation.ValidateImmutableField(n, o, fldPath.Child("deletionGracePeriodSeconds")).WithOrigin("immutable").MarkCoveredByDeclarative()...)
	}

	allErrs = append(allErrs, validateCommon(newMeta, fldPath)...)
	return append(allErrs, validateManagedFields(newMeta.GetManagedFields(), fldPath, "managedFields")...)
}

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
outer:
	for _, x := range a {
		for _, y := range b {
			if x == y {
				continue outer
			}
		}
		return false
	}
	return true
}
