package strategies

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

// The other core/v1 kinds.

type namespaceStrategy struct{ withStatus }

func (namespaceStrategy) NameValidator() validation.ValidateNameFunc {
	return fastvalidation.NameIsDNSLabel
}

// Default sets the kubernetes.io/metadata.name label (when the name is
// known) and the Active phase.
func (namespaceStrategy) Default(obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// PrepareForCreate starts the namespace Active with the kubernetes finalizer.
func (s namespaceStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	ns := obj.(*corev1.Namespace)
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
	s.Default(ns)
}

// PrepareForUpdate keeps the status and the finalizers, which only the
// finalize subresource changes.
func (namespaceStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	ns, oldNS := obj.(*corev1.Namespace), old.(*corev1.Namespace)
	ns.Status, ns.Spec.Finalizers = oldNS.Status, oldNS.Spec.Finalizers
}

var standardFinalizers = []string{string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents}

func (namespaceStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, f := range obj.(*corev1.Namespace).Spec.Finalizers {
		p := field.NewPath("spec", "finalizers").Index(i)
		errs = append(errs, fastvalidation.ValidateFinalizerName(string(f), p)...)
		if !strings.Contains(string(f), "/") && !slices.Contains(standardFinalizers, string(f)) {
			errs = append(errs, field.Invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

func (s namespaceStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func (namespaceStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	return oneOf(field.NewPath("status", "phase"), obj.(*corev1.Namespace).Status.Phase, corev1.NamespaceActive, corev1.NamespaceTerminating)
}

func (namespaceStrategy) Fields(obj runtime.Object) fields.Set {
	return fields.Set{"status.phase": string(obj.(*corev1.Namespace).Status.Phase)}
}

type nodeStrategy struct{ withStatus }

func (nodeStrategy) Default(obj runtime.Object) {
	node := obj.(*corev1.Node)
	switch spec := &node.Spec; {
	case spec.PodCIDR != "" && len(spec.PodCIDRs) == 0:
		spec.PodCIDRs = []string{spec.PodCIDR}
	case spec.PodCIDR == "" && len(spec.PodCIDRs) > 0:
		spec.PodCIDR = spec.PodCIDRs[0]
	}
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = node.Status.Capacity.DeepCopy()
	}
}

// PrepareForCreate keeps the status: kubelets register their node with it.
func (nodeStrategy) PrepareForCreate(context.Context, runtime.Object) {}

func (nodeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*corev1.Node).Spec
	var errs field.ErrorList
	p := field.NewPath("spec", "podCIDRs")
	for i, cidr := range spec.PodCIDRs {
		errs = append(errs, utilvalidation.IsValidCIDR(p.Index(i), cidr)...)
	}
	if len(spec.PodCIDRs) > 2 || (len(spec.PodCIDRs) == 2 && strings.Contains(spec.PodCIDRs[0], ":") == strings.Contains(spec.PodCIDRs[1], ":")) {
		errs = append(errs, field.Invalid(p, spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	seen := map[string]bool{}
	for i, t := range spec.Taints {
		tp := field.NewPath("spec", "taints").Index(i)
		errs = append(errs, fastvalidation.ValidateLabelName(t.Key, tp.Child("key"))...)
		if t.Value != "" {
			errs = append(errs, check(tp.Child("value"), t.Value, fastvalidation.IsValidLabelValue)...)
		}
		errs = append(errs, oneOf(tp.Child("effect"), t.Effect, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
		key := t.Key + ":" + string(t.Effect)
		if seen[key] {
			errs = append(errs, field.Duplicate(tp, t))
		}
		seen[key] = true
	}
	return errs
}

func (s nodeStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	spec, oldSpec := &obj.(*corev1.Node).Spec, &old.(*corev1.Node).Spec
	errs := s.Validate(ctx, obj)
	if len(oldSpec.PodCIDRs) > 0 && !slices.Equal(spec.PodCIDRs, oldSpec.PodCIDRs) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if oldSpec.ProviderID != "" && spec.ProviderID != oldSpec.ProviderID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

func (nodeStrategy) Fields(obj runtime.Object) fields.Set {
	return fields.Set{"spec.unschedulable": strconv.FormatBool(obj.(*corev1.Node).Spec.Unschedulable)}
}

// maxDataSize bounds the data of a ConfigMap or a Secret.
const maxDataSize = 1 << 20

type configMapStrategy struct{ base }

func (configMapStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	cm := obj.(*corev1.ConfigMap)
	var errs field.ErrorList
	size := 0
	for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
		p := field.NewPath("data").Key(key)
		errs = append(errs, invalid(p, key, fastvalidation.IsConfigMapKey(key))...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[key])
	}
	for _, key := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		p := field.NewPath("binaryData").Key(key)
		errs = append(errs, invalid(p, key, fastvalidation.IsConfigMapKey(key))...)
		if _, dup := cm.Data[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in data"))
		}
		size += len(cm.BinaryData[key])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxDataSize))
	}
	return errs
}

func (s configMapStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	cm, oldCM := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
	errs := s.Validate(ctx, obj)
	return append(errs, validateImmutableData(cm.Immutable, oldCM.Immutable, map[string][2]any{
		"data": {cm.Data, oldCM.Data}, "binaryData": {cm.BinaryData, oldCM.BinaryData},
	})...)
}

// validateImmutableData forbids changing the data of a ConfigMap or Secret
// marked immutable, and unmarking it.
func validateImmutableData(immutable, oldImmutable *bool, data map[string][2]any) field.ErrorList {
	if oldImmutable == nil || !*oldImmutable {
		return nil
	}
	const msg = "field is immutable when `immutable` is set"
	var errs field.ErrorList
	if immutable == nil || !*immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	for _, name := range slices.Sorted(maps.Keys(data)) {
		if !equality.Semantic.DeepEqual(data[name][0], data[name][1]) {
			errs = append(errs, field.Forbidden(field.NewPath(name), msg))
		}
	}
	return errs
}

type secretStrategy struct{ base }

// Default sets the Opaque type and merges stringData into data, as the
// conversion to the internal type does upstream.
func (secretStrategy) Default(obj runtime.Object) {
	s := obj.(*corev1.Secret)
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func (secretStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	s := obj.(*corev1.Secret)
	dataPath := field.NewPath("data")
	var errs field.ErrorList
	size := 0
	for _, key := range slices.Sorted(maps.Keys(s.Data)) {
		errs = append(errs, invalid(dataPath.Key(key), key, fastvalidation.IsConfigMapKey(key))...)
		size += len(s.Data[key])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	requireKeys := func(keys ...string) {
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				errs = append(errs, field.Required(dataPath.Key(k), ""))
			}
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg, corev1.SecretTypeDockerConfigJson:
		key := corev1.DockerConfigKey
		if s.Type == corev1.SecretTypeDockerConfigJson {
			key = corev1.DockerConfigJsonKey
		}
		data, ok := s.Data[key]
		if !ok {
			requireKeys(key)
		} else if err := json.Unmarshal(data, &map[string]any{}); err != nil {
			errs = append(errs, field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error()))
		}
	case corev1.SecretTypeBasicAuth:
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, password := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !password {
			requireKeys(corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey)
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		requireKeys(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	return errs
}

func (s secretStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	secret, oldSecret := obj.(*corev1.Secret), old.(*corev1.Secret)
	errs := s.Validate(ctx, obj)
	errs = append(errs, immutable(field.NewPath("type"), secret.Type, oldSecret.Type)...)
	return append(errs, validateImmutableData(secret.Immutable, oldSecret.Immutable, map[string][2]any{
		"data": {secret.Data, oldSecret.Data},
	})...)
}

func (secretStrategy) Fields(obj runtime.Object) fields.Set {
	return fields.Set{"type": string(obj.(*corev1.Secret).Type)}
}

type serviceAccountStrategy struct{ base }

type eventStrategy struct{ base }

func (eventStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	ev := obj.(*corev1.Event)
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	mismatch := func() {
		errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	if ev.EventTime.IsZero() {
		switch objNS := ev.InvolvedObject.Namespace; {
		case objNS == "" && ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault:
			mismatch()
		case objNS != "" && ev.Namespace != objNS:
			mismatch()
		}
		return errs
	}
	// Events of the events.k8s.io API set eventTime and its fields.
	if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
		mismatch()
	}
	errs = append(errs, required(field.NewPath("reportingComponent"), ev.ReportingController, fastvalidation.IsQualifiedName)...)
	for _, f := range []struct{ name, value string }{{"reportingInstance", ev.ReportingInstance}, {"action", ev.Action}, {"reason", ev.Reason}} {
		if f.value == "" {
			errs = append(errs, field.Required(field.NewPath(f.name), ""))
		}
	}
	return errs
}

func (s eventStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func (eventStrategy) Fields(obj runtime.Object) fields.Set {
	ev := obj.(*corev1.Event)
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	o := ev.InvolvedObject
	return fields.Set{
		"involvedObject.kind":            o.Kind,
		"involvedObject.namespace":       o.Namespace,
		"involvedObject.name":            o.Name,
		"involvedObject.uid":             string(o.UID),
		"involvedObject.apiVersion":      o.APIVersion,
		"involvedObject.resourceVersion": o.ResourceVersion,
		"involvedObject.fieldPath":       o.FieldPath,
		"reason":                         ev.Reason,
		"reportingComponent":             ev.ReportingController,
		"source":                         source,
		"type":                           ev.Type,
	}
}

// validateResourceList checks resource names and non-negative quantities.
func validateResourceList(l corev1.ResourceList, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(l) {
		p := path.Key(string(name))
		errs = append(errs, check(p, string(name), fastvalidation.IsQualifiedName)...)
		errs = append(errs, nonNegativeQuantity(p, l[name])...)
	}
	return errs
}

type resourceQuotaStrategy struct{ withStatus }

func (resourceQuotaStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*corev1.ResourceQuota).Spec
	errs := validateResourceList(spec.Hard, field.NewPath("spec", "hard"))
	for i, scope := range spec.Scopes {
		errs = append(errs, oneOf(field.NewPath("spec", "scopes").Index(i), scope, corev1.ResourceQuotaScopeTerminating,
			corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort,
			corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity,
			corev1.ResourceQuotaScopeVolumeAttributesClass)...)
	}
	return errs
}

func (s resourceQuotaStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func (resourceQuotaStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	status := &obj.(*corev1.ResourceQuota).Status
	errs := validateResourceList(status.Hard, field.NewPath("status", "hard"))
	return append(errs, validateResourceList(status.Used, field.NewPath("status", "used"))...)
}

type limitRangeStrategy struct{ base }

func (limitRangeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, item := range obj.(*corev1.LimitRange).Spec.Limits {
		p := field.NewPath("spec", "limits").Index(i)
		errs = append(errs, oneOf(p.Child("type"), item.Type, corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim)...)
		for _, l := range []struct {
			name string
			list corev1.ResourceList
		}{{"max", item.Max}, {"min", item.Min}, {"default", item.Default}, {"defaultRequest", item.DefaultRequest}, {"maxLimitRequestRatio", item.MaxLimitRequestRatio}} {
			errs = append(errs, validateResourceList(l.list, p.Child(l.name))...)
		}
		for _, name := range sortedKeys(item.Min) {
			if minQ, max := item.Min[name], item.Max[name]; !max.IsZero() && minQ.Cmp(max) > 0 {
				errs = append(errs, field.Invalid(p.Child("min").Key(string(name)), minQ.String(),
					fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), max.String())))
			}
		}
	}
	return errs
}

func (s limitRangeStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

var supportedAccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, path *field.Path, requiredMsg string) field.ErrorList {
	if len(modes) == 0 {
		return field.ErrorList{field.Required(path, requiredMsg)}
	}
	var errs field.ErrorList
	for _, m := range modes {
		if !slices.Contains(supportedAccessModes, m) {
			errs = append(errs, field.NotSupported(path, m, supportedAccessModes))
		}
	}
	if slices.Contains(modes, corev1.ReadWriteOncePod) && len(modes) > 1 {
		errs = append(errs, field.Forbidden(path, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func validateVolumeMode(path *field.Path, mode *corev1.PersistentVolumeMode) field.ErrorList {
	if mode == nil {
		return nil
	}
	return oneOf(path, *mode, corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)
}

type persistentVolumeStrategy struct{ withStatus }

func (persistentVolumeStrategy) Default(obj runtime.Object) {
	pv := obj.(*corev1.PersistentVolume)
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
}

// PrepareForCreate starts the volume Pending; the persistent volume
// controller makes it Available.
func (persistentVolumeStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	now := metav1.NewTime(time.Now())
	obj.(*corev1.PersistentVolume).Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending, LastPhaseTransitionTime: &now}
}

func (persistentVolumeStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*corev1.PersistentVolume).Spec
	path := field.NewPath("spec")
	errs := validateAccessModes(spec.AccessModes, path.Child("accessModes"), "")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(path.Child("capacity"), ""))
	} else if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(path.Child("capacity"), spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	} else {
		errs = append(errs, validateResourceList(spec.Capacity, path.Child("capacity"))...)
	}
	errs = append(errs, oneOf(path.Child("persistentVolumeReclaimPolicy"), spec.PersistentVolumeReclaimPolicy,
		corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain)...)
	errs = append(errs, validateVolumeMode(path.Child("volumeMode"), spec.VolumeMode)...)
	switch sources := setPointerFields(&spec.PersistentVolumeSource); {
	case len(sources) == 0:
		errs = append(errs, field.Required(path, "must specify a volume type"))
	case len(sources) > 1:
		errs = append(errs, field.Forbidden(path.Child(sources[1]), "may not specify more than 1 volume type"))
	case spec.HostPath != nil && spec.HostPath.Path == "":
		errs = append(errs, field.Required(path.Child("hostPath", "path"), ""))
	case spec.Local != nil && spec.Local.Path == "":
		errs = append(errs, field.Required(path.Child("local", "path"), ""))
	case spec.Local != nil && spec.NodeAffinity == nil:
		errs = append(errs, field.Required(path.Child("nodeAffinity"), "Local volume requires node affinity"))
	}
	if spec.StorageClassName != "" {
		errs = append(errs, check(path.Child("storageClassName"), spec.StorageClassName, fastvalidation.IsDNS1123Subdomain)...)
	}
	return errs
}

func (s persistentVolumeStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	spec, oldSpec := &obj.(*corev1.PersistentVolume).Spec, &old.(*corev1.PersistentVolume).Spec
	errs := s.Validate(ctx, obj)
	if !equality.Semantic.DeepEqual(spec.PersistentVolumeSource, oldSpec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), "spec.persistentvolumesource is forbidden once PV is created"))
	}
	errs = append(errs, immutable(field.NewPath("volumeMode"), spec.VolumeMode, oldSpec.VolumeMode)...)
	if oldSpec.NodeAffinity != nil {
		errs = append(errs, immutable(field.NewPath("nodeAffinity"), spec.NodeAffinity, oldSpec.NodeAffinity)...)
	}
	return errs
}

func (persistentVolumeStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	return optionalOneOf(field.NewPath("status", "phase"), obj.(*corev1.PersistentVolume).Status.Phase, corev1.VolumePending,
		corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeReleased, corev1.VolumeFailed)
}

type persistentVolumeClaimStrategy struct{ withStatus }

func (persistentVolumeClaimStrategy) Default(obj runtime.Object) {
	pvc := obj.(*corev1.PersistentVolumeClaim)
	defaultPVCSpec(&pvc.Spec)
	if pvc.Status.Phase == "" {
		pvc.Status.Phase = corev1.ClaimPending
	}
}

func (persistentVolumeClaimStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*corev1.PersistentVolumeClaim).Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
}

func (persistentVolumeClaimStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validatePVCSpec(&obj.(*corev1.PersistentVolumeClaim).Spec, field.NewPath("spec"))
}

func validatePVCSpec(spec *corev1.PersistentVolumeClaimSpec, path *field.Path) field.ErrorList {
	errs := validateAccessModes(spec.AccessModes, path.Child("accessModes"), "at least 1 access mode is required")
	if spec.Selector != nil {
		errs = append(errs, fastvalidation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, path.Child("selector"))...)
	}
	sp := path.Child("resources").Key(string(corev1.ResourceStorage))
	if storage, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(sp, ""))
	} else if storage.Sign() <= 0 {
		errs = append(errs, field.Invalid(sp, storage.String(), "must be greater than zero"))
	}
	if spec.StorageClassName != nil && *spec.StorageClassName != "" {
		errs = append(errs, check(path.Child("storageClassName"), *spec.StorageClassName, fastvalidation.IsDNS1123Subdomain)...)
	}
	return append(errs, validateVolumeMode(path.Child("volumeMode"), spec.VolumeMode)...)
}

func (s persistentVolumeClaimStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	spec, oldSpec := &obj.(*corev1.PersistentVolumeClaim).Spec, &old.(*corev1.PersistentVolumeClaim).Spec
	errs := s.Validate(ctx, obj)
	// Only the requests may change (to expand a claim), the class of
	// attributes, and the volume name of an unbound claim.
	munged := spec.DeepCopy()
	munged.Resources.Requests = oldSpec.Resources.Requests
	munged.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	if oldSpec.VolumeName == "" {
		munged.VolumeName = ""
	}
	if !equality.Semantic.DeepEqual(munged, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"+diff.Diff(oldSpec, munged)))
	}
	newSize, oldSize := spec.Resources.Requests[corev1.ResourceStorage], oldSpec.Resources.Requests[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than previous value"))
	}
	return errs
}

func (persistentVolumeClaimStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	return optionalOneOf(field.NewPath("status", "phase"), obj.(*corev1.PersistentVolumeClaim).Status.Phase,
		corev1.ClaimPending, corev1.ClaimBound, corev1.ClaimLost)
}
