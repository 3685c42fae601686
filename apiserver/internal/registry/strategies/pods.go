package strategies

import (
	"context"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

type podStrategy struct{ withStatus }

func (podStrategy) Default(obj runtime.Object) { DefaultPod(obj.(*corev1.Pod)) }

func (podStrategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	pod := obj.(*corev1.Pod)
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: ComputePodQOS(pod)}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: "Scheduling is blocked due to non-empty scheduling gates",
		}}
	}
}

func (podStrategy) PrepareForStatusUpdate(_ context.Context, obj, old runtime.Object) {
	keepAllButStatus(obj, old)
	// The QoS class is set on create and immutable; old kubelets drop it.
	if pod := obj.(*corev1.Pod); pod.Status.QOSClass == "" {
		pod.Status.QOSClass = old.(*corev1.Pod).Status.QOSClass
	}
}

func (podStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return ValidatePodSpec(&obj.(*corev1.Pod).Spec, field.NewPath("spec"))
}

func (podStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	pod, oldPod := obj.(*corev1.Pod), old.(*corev1.Pod)
	errs := ValidatePodSpec(&pod.Spec, field.NewPath("spec"))
	return append(errs, validatePodSpecUpdate(&pod.Spec, &oldPod.Spec, field.NewPath("spec"))...)
}

func (podStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	status := &obj.(*corev1.Pod).Status
	path := field.NewPath("status")
	var errs field.ErrorList
	if status.NominatedNodeName != "" {
		errs = append(errs, check(path.Child("nominatedNodeName"), status.NominatedNodeName, fastvalidation.IsDNS1123Subdomain)...)
	}
	for i, ip := range status.PodIPs {
		errs = append(errs, validation.IsValidIP(path.Child("podIPs").Index(i).Child("ip"), ip.IP)...)
	}
	for i, ip := range status.HostIPs {
		errs = append(errs, validation.IsValidIP(path.Child("hostIPs").Index(i).Child("ip"), ip.IP)...)
	}
	return errs
}

func (podStrategy) Fields(obj runtime.Object) fields.Set {
	pod := obj.(*corev1.Pod)
	podIP := pod.Status.PodIP
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	}
	return fields.Set{
		"spec.nodeName":            pod.Spec.NodeName,
		"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
		"spec.schedulerName":       pod.Spec.SchedulerName,
		"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(pod.Spec.HostNetwork),
		"status.phase":             string(pod.Status.Phase),
		"status.podIP":             podIP,
		"status.nominatedNodeName": pod.Status.NominatedNodeName,
	}
}

// DefaultPod applies upstream's defaults to a pod: those of its spec, plus
// requests defaulted to limits, enableServiceLinks and, for host-network
// pods, host ports.
func DefaultPod(pod *corev1.Pod) {
	spec := &pod.Spec
	DefaultPodSpec(spec)
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c := &cs[i]
			defaultRequestsToLimits(&c.Resources)
			if spec.HostNetwork {
				for j := range c.Ports {
					if c.Ports[j].HostPort == 0 {
						c.Ports[j].HostPort = c.Ports[j].ContainerPort
					}
				}
			}
		}
	}
	if spec.Resources != nil {
		defaultRequestsToLimits(spec.Resources)
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = new(corev1.DefaultEnableServiceLinks)
	}
}

func defaultRequestsToLimits(r *corev1.ResourceRequirements) {
	for name, limit := range r.Limits {
		if _, ok := r.Requests[name]; !ok {
			if r.Requests == nil {
				r.Requests = corev1.ResourceList{}
			}
			r.Requests[name] = limit.DeepCopy()
		}
	}
}

// DefaultPodSpec applies upstream's defaults to a pod spec, as for pod
// templates: policies, scheduler, grace period, security context, and the
// defaults of containers, probes and volumes.
func DefaultPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = new(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// serviceAccount is the deprecated alias of serviceAccountName.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		defaultContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i].VolumeSource)
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		if imageTag(c.Image) == "latest" {
			c.ImagePullPolicy = corev1.PullAlways
		} else {
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h != nil {
				defaultHTTPGet(h.HTTPGet)
			}
		}
	}
	for i := range c.Env {
		if from := c.Env[i].ValueFrom; from != nil {
			defaultFieldRef(from.FieldRef)
		}
	}
}

// imageTag returns the tag of an image reference as the container runtime
// would resolve it: "latest" when it has neither tag nor digest.
func imageTag(image string) string {
	name, _, hasDigest := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i+1:], "/") {
		return name[i+1:]
	}
	if hasDigest {
		return ""
	}
	return "latest"
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = new("")
	}
}

func defaultHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func defaultFieldRef(f *corev1.ObjectFieldSelector) {
	if f != nil && f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

func defaultDownwardAPIItems(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		defaultFieldRef(items[i].FieldRef)
	}
}

func defaultVolume(v *corev1.VolumeSource) {
	if len(volumeSources(v)) == 0 {
		v.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	mode := func(m **int32, def int32) {
		if *m == nil {
			*m = new(def)
		}
	}
	switch {
	case v.ConfigMap != nil:
		mode(&v.ConfigMap.DefaultMode, corev1.ConfigMapVolumeSourceDefaultMode)
	case v.Secret != nil:
		mode(&v.Secret.DefaultMode, corev1.SecretVolumeSourceDefaultMode)
	case v.DownwardAPI != nil:
		mode(&v.DownwardAPI.DefaultMode, corev1.DownwardAPIVolumeSourceDefaultMode)
		defaultDownwardAPIItems(v.DownwardAPI.Items)
	case v.Projected != nil:
		mode(&v.Projected.DefaultMode, corev1.ProjectedVolumeSourceDefaultMode)
		for _, s := range v.Projected.Sources {
			if s.DownwardAPI != nil {
				defaultDownwardAPIItems(s.DownwardAPI.Items)
			}
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.ExpirationSeconds == nil {
				s.ServiceAccountToken.ExpirationSeconds = new(int64(3600))
			}
		}
	case v.HostPath != nil:
		if v.HostPath.Type == nil {
			v.HostPath.Type = new(corev1.HostPathUnset)
		}
	case v.Ephemeral != nil && v.Ephemeral.VolumeClaimTemplate != nil:
		defaultPVCSpec(&v.Ephemeral.VolumeClaimTemplate.Spec)
	}
}

// volumeSources lists the JSON names of the sources a volume sets.
func volumeSources(v *corev1.VolumeSource) []string { return setPointerFields(v) }

// setPointerFields lists the JSON names of the pointer fields that the
// struct s points to sets: the sources of a volume or a persistent volume.
func setPointerFields(s any) []string {
	var names []string
	rv := reflect.ValueOf(s).Elem()
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

// ComputePodQOS returns a pod's quality of service class, from the CPU and
// memory requests and limits of its containers (or of the pod, when it sets
// pod-level resources).
func ComputePodQOS(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	add := func(sum corev1.ResourceList, l corev1.ResourceList) (found map[corev1.ResourceName]bool) {
		found = map[corev1.ResourceName]bool{}
		for name, q := range l {
			if (name != corev1.ResourceCPU && name != corev1.ResourceMemory) || q.Sign() <= 0 {
				continue
			}
			found[name] = true
			total := q.DeepCopy()
			total.Add(sum[name])
			sum[name] = total
		}
		return found
	}
	account := func(r *corev1.ResourceRequirements) {
		add(requests, r.Requests)
		if found := add(limits, r.Limits); !found[corev1.ResourceCPU] || !found[corev1.ResourceMemory] {
			guaranteed = false
		}
	}
	if pod.Spec.Resources != nil {
		account(pod.Spec.Resources)
	} else {
		for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range cs {
				account(&cs[i].Resources)
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	for name, req := range requests {
		if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
			guaranteed = false
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// ValidatePodSpec checks a pod spec (of a pod or a pod template) as
// upstream does; path is the spec's path, e.g. spec.template.spec.
func ValidatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	errs, volumes := validateVolumes(spec.Volumes, path.Child("volumes"))
	names := map[string]bool{}
	errs = append(errs, validateContainers(spec.InitContainers, volumes, names, initContainer, path.Child("initContainers"))...)
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	errs = append(errs, validateContainers(spec.Containers, volumes, names, regularContainer, path.Child("containers"))...)
	for i := range spec.EphemeralContainers {
		c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
		errs = append(errs, validateContainer(c, volumes, names, ephemeralContainer, path.Child("ephemeralContainers").Index(i))...)
	}
	errs = append(errs, validateHostPorts(spec, path)...)
	errs = append(errs, oneOf(path.Child("restartPolicy"), spec.RestartPolicy,
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)...)
	errs = append(errs, validateDNS(spec, path)...)
	errs = append(errs, fastvalidation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	for _, f := range []struct {
		name, value string
		is          func(string) []string
	}{
		{"serviceAccountName", spec.ServiceAccountName, fastvalidation.IsDNS1123Subdomain},
		{"nodeName", spec.NodeName, fastvalidation.IsDNS1123Subdomain},
		{"priorityClassName", spec.PriorityClassName, fastvalidation.IsDNS1123Subdomain},
		{"hostname", spec.Hostname, fastvalidation.IsDNS1123Label},
		{"subdomain", spec.Subdomain, fastvalidation.IsDNS1123Label},
	} {
		if f.value != "" {
			errs = append(errs, check(path.Child(f.name), f.value, f.is)...)
		}
	}
	if d := spec.ActiveDeadlineSeconds; d != nil && (*d < 1 || *d > math.MaxInt32) {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *d, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	errs = append(errs, validateTolerations(spec.Tolerations, path.Child("tolerations"))...)
	errs = append(errs, validateTopologySpread(spec.TopologySpreadConstraints, path.Child("topologySpreadConstraints"))...)
	if spec.Resources != nil {
		errs = append(errs, validateResources(spec.Resources, path.Child("resources"))...)
	}
	return errs
}

const (
	fileModeErrorMsg  = "must be a number between 0 and 0777 (octal), both inclusive"
	maxDNSNameservers = 3
	maxDNSSearchPaths = 32
)

func validateVolumes(volumes []corev1.Volume, path *field.Path) (field.ErrorList, map[string]bool) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range volumes {
		v, p := &volumes[i], path.Index(i)
		errs = append(errs, required(p.Child("name"), v.Name, fastvalidation.IsDNS1123Label)...)
		if names[v.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		}
		names[v.Name] = true
		errs = append(errs, validateVolumeSource(&v.VolumeSource, p)...)
	}
	return errs, names
}

func validateVolumeSource(v *corev1.VolumeSource, path *field.Path) field.ErrorList {
	sources := volumeSources(v)
	switch {
	case len(sources) == 0:
		return field.ErrorList{field.Required(path, "must specify a volume type")}
	case len(sources) > 1:
		return field.ErrorList{field.Forbidden(path.Child(sources[1]), "may not specify more than 1 volume type")}
	}
	p := path.Child(sources[0])
	var errs field.ErrorList
	switch {
	case v.HostPath != nil:
		if v.HostPath.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		if t := v.HostPath.Type; t != nil {
			errs = append(errs, optionalOneOf(p.Child("type"), *t, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
				corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)...)
		}
	case v.EmptyDir != nil:
		if v.EmptyDir.SizeLimit != nil {
			errs = append(errs, nonNegativeQuantity(p.Child("sizeLimit"), *v.EmptyDir.SizeLimit)...)
		}
		errs = append(errs, optionalOneOf(p.Child("medium"), v.EmptyDir.Medium, corev1.StorageMediumMemory, corev1.StorageMediumHugePages)...)
	case v.ConfigMap != nil:
		errs = append(errs, required(p.Child("name"), v.ConfigMap.Name, fastvalidation.IsDNS1123Subdomain)...)
		errs = append(errs, validateFileMode(p.Child("defaultMode"), v.ConfigMap.DefaultMode)...)
		errs = append(errs, validateKeyToPaths(v.ConfigMap.Items, p.Child("items"))...)
	case v.Secret != nil:
		errs = append(errs, required(p.Child("secretName"), v.Secret.SecretName, fastvalidation.IsDNS1123Subdomain)...)
		errs = append(errs, validateFileMode(p.Child("defaultMode"), v.Secret.DefaultMode)...)
		errs = append(errs, validateKeyToPaths(v.Secret.Items, p.Child("items"))...)
	case v.PersistentVolumeClaim != nil:
		if v.PersistentVolumeClaim.ClaimName == "" {
			errs = append(errs, field.Required(p.Child("claimName"), ""))
		}
	case v.NFS != nil:
		if v.NFS.Server == "" {
			errs = append(errs, field.Required(p.Child("server"), ""))
		}
		if v.NFS.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else if !strings.HasPrefix(v.NFS.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), v.NFS.Path, "must be an absolute path"))
		}
	case v.DownwardAPI != nil:
		errs = append(errs, validateFileMode(p.Child("defaultMode"), v.DownwardAPI.DefaultMode)...)
		for i, item := range v.DownwardAPI.Items {
			errs = append(errs, validateDownwardAPIFile(&item, p.Child("items").Index(i))...)
		}
	case v.Projected != nil:
		errs = append(errs, validateFileMode(p.Child("defaultMode"), v.Projected.DefaultMode)...)
	}
	return errs
}

func validateFileMode(path *field.Path, mode *int32) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0777) {
		return field.ErrorList{field.Invalid(path, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, item := range items {
		p := path.Index(i)
		errs = append(errs, required(p.Child("key"), item.Key, fastvalidation.IsConfigMapKey)...)
		errs = append(errs, validateLocalPath(p.Child("path"), item.Path)...)
		errs = append(errs, validateFileMode(p.Child("mode"), item.Mode)...)
	}
	return errs
}

func validateDownwardAPIFile(f *corev1.DownwardAPIVolumeFile, path *field.Path) field.ErrorList {
	errs := validateLocalPath(path.Child("path"), f.Path)
	errs = append(errs, validateFileMode(path.Child("mode"), f.Mode)...)
	switch {
	case f.FieldRef != nil && f.ResourceFieldRef != nil:
		errs = append(errs, field.Invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
	case f.FieldRef != nil:
		errs = append(errs, validateFieldRef(f.FieldRef, volumeFieldPaths, path.Child("fieldRef"))...)
	case f.ResourceFieldRef == nil:
		errs = append(errs, field.Required(path, "one of fieldRef and resourceFieldRef is required"))
	}
	return errs
}

// validateLocalPath checks a required relative path without "..".
func validateLocalPath(p *field.Path, value string) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return validateLocalDescendingPath(p, value)
}

func validateLocalDescendingPath(p *field.Path, value string) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(value) {
		errs = append(errs, field.Invalid(p, value, "must be a relative path"))
	}
	if slices.Contains(strings.Split(value, "/"), "..") {
		errs = append(errs, field.Invalid(p, value, "must not contain '..'"))
	}
	return errs
}

type containerType int

const (
	regularContainer containerType = iota
	initContainer
	ephemeralContainer
)

func validateContainers(cs []corev1.Container, volumes, names map[string]bool, typ containerType, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range cs {
		errs = append(errs, validateContainer(&cs[i], volumes, names, typ, path.Index(i))...)
	}
	return errs
}

// validateContainer checks one container; names collects the container
// names of the pod to find duplicates.
func validateContainer(c *corev1.Container, volumes, names map[string]bool, typ containerType, path *field.Path) field.ErrorList {
	errs := required(path.Child("name"), c.Name, fastvalidation.IsDNS1123Label)
	if c.Name != "" && names[c.Name] {
		errs = append(errs, field.Duplicate(path.Child("name"), c.Name))
	}
	names[c.Name] = true
	if c.Image == "" {
		errs = append(errs, field.Required(path.Child("image"), ""))
	} else if strings.TrimSpace(c.Image) != c.Image {
		errs = append(errs, field.Invalid(path.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	if typ == ephemeralContainer {
		return errs
	}
	errs = append(errs, validateContainerPorts(c.Ports, path.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, path.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, path.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, path.Child("volumeMounts"))...)
	errs = append(errs, validateResources(&c.Resources, path.Child("resources"))...)
	errs = append(errs, oneOf(path.Child("imagePullPolicy"), c.ImagePullPolicy, corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	errs = append(errs, oneOf(path.Child("terminationMessagePolicy"), c.TerminationMessagePolicy,
		corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)

	sidecar := typ == initContainer && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	switch {
	case typ == initContainer && c.RestartPolicy != nil && !sidecar:
		errs = append(errs, field.NotSupported(path.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
	case typ == regularContainer && c.RestartPolicy != nil:
		errs = append(errs, field.Forbidden(path.Child("restartPolicy"), "may not be set for non-init containers"))
	}
	if typ == initContainer && !sidecar {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil},
			{"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil},
		} {
			if f.set {
				errs = append(errs, field.Forbidden(path.Child(f.name), "may not be set for init containers without restartPolicy=Always"))
			}
		}
		return errs
	}
	errs = append(errs, validateProbe(c.LivenessProbe, path.Child("livenessProbe"))...)
	errs = append(errs, validateProbe(c.ReadinessProbe, path.Child("readinessProbe"))...)
	errs = append(errs, validateProbe(c.StartupProbe, path.Child("startupProbe"))...)
	for _, p := range []struct {
		probe *corev1.Probe
		name  string
	}{{c.LivenessProbe, "livenessProbe"}, {c.StartupProbe, "startupProbe"}} {
		if p.probe != nil && p.probe.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(path.Child(p.name, "successThreshold"), p.probe.SuccessThreshold, "must be 1"))
		}
	}
	if l := c.Lifecycle; l != nil {
		if l.PostStart != nil {
			errs = append(errs, validateHandler(lifecycleHandler(l.PostStart), path.Child("lifecycle", "postStart"))...)
		}
		if l.PreStop != nil {
			errs = append(errs, validateHandler(lifecycleHandler(l.PreStop), path.Child("lifecycle", "preStop"))...)
		}
	}
	return errs
}

var supportedProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

func validateContainerPorts(ports []corev1.ContainerPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		p := path.Index(i)
		if port.Name != "" {
			if msgs := fastvalidation.IsValidPortName(port.Name); len(msgs) > 0 {
				errs = append(errs, invalid(p.Child("name"), port.Name, msgs)...)
			} else if names[port.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(p.Child("containerPort"), ""))
		} else {
			errs = append(errs, portNum(p.Child("containerPort"), port.ContainerPort)...)
		}
		if port.HostPort != 0 {
			errs = append(errs, portNum(p.Child("hostPort"), port.HostPort)...)
		}
		errs = append(errs, oneOf(p.Child("protocol"), port.Protocol, supportedProtocols...)...)
	}
	return errs
}

// validateHostPorts checks that containers do not share a host port and that
// host-network pods use their container ports on the host.
func validateHostPorts(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, c := range spec.Containers {
		for j, port := range c.Ports {
			p := path.Child("containers").Index(i).Child("ports").Index(j)
			if spec.HostNetwork && port.HostPort != 0 && port.HostPort != port.ContainerPort {
				errs = append(errs, field.Invalid(p.Child("containerPort"), port.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
			}
			if port.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%s/%s/%d", port.Protocol, port.HostIP, port.HostPort)
			if seen[key] {
				errs = append(errs, field.Duplicate(p.Child("hostPort"), key))
			}
			seen[key] = true
		}
	}
	return errs
}

var (
	envFieldPaths = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
		"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}
	volumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}
)

func validateEnv(env []corev1.EnvVar, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		p := path.Index(i)
		errs = append(errs, required(p.Child("name"), ev.Name, fastvalidation.IsEnvVarName)...)
		if ev.ValueFrom == nil {
			continue
		}
		fp := p.Child("valueFrom")
		from := ev.ValueFrom
		n := 0
		if from.FieldRef != nil {
			n++
			errs = append(errs, validateFieldRef(from.FieldRef, envFieldPaths, fp.Child("fieldRef"))...)
		}
		if from.ResourceFieldRef != nil {
			n++
			if from.ResourceFieldRef.Resource == "" {
				errs = append(errs, field.Required(fp.Child("resourceFieldRef", "resource"), ""))
			}
		}
		if from.ConfigMapKeyRef != nil {
			n++
			errs = append(errs, validateKeySelector(from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key, fp.Child("configMapKeyRef"))...)
		}
		if from.SecretKeyRef != nil {
			n++
			errs = append(errs, validateKeySelector(from.SecretKeyRef.Name, from.SecretKeyRef.Key, fp.Child("secretKeyRef"))...)
		}
		if from.FileKeyRef != nil {
			n++
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(fp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(fp, "", "may not have more than one field specified at a time"))
		case ev.Value != "":
			errs = append(errs, field.Invalid(fp, "", "may not be specified when `value` is not empty"))
		}
	}
	return errs
}

func validateKeySelector(name, key string, path *field.Path) field.ErrorList {
	errs := invalid(path.Child("name"), name, fastvalidation.NameIsDNSSubdomain(name, false))
	return append(errs, required(path.Child("key"), key, fastvalidation.IsConfigMapKey)...)
}

func validateFieldRef(ref *corev1.ObjectFieldSelector, valid []string, path *field.Path) field.ErrorList {
	switch {
	case ref.APIVersion == "":
		return field.ErrorList{field.Required(path.Child("apiVersion"), "")}
	case ref.FieldPath == "":
		return field.ErrorList{field.Required(path.Child("fieldPath"), "")}
	}
	if fp, sub, ok := strings.Cut(ref.FieldPath, "['"); ok && strings.HasSuffix(sub, "']") {
		sub = strings.TrimSuffix(sub, "']")
		switch fp {
		case "metadata.annotations":
			return fastvalidation.ValidateLabelName(strings.ToLower(sub), path.Child("fieldPath"))
		case "metadata.labels":
			return fastvalidation.ValidateLabelName(sub, path.Child("fieldPath"))
		}
		return field.ErrorList{field.Invalid(path, fp, "does not support subscript")}
	}
	if !slices.Contains(valid, ref.FieldPath) {
		return field.ErrorList{field.NotSupported(path.Child("fieldPath"), ref.FieldPath, valid)}
	}
	return nil
}

func validateEnvFrom(from []corev1.EnvFromSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range from {
		p := path.Index(i)
		if ev.Prefix != "" {
			errs = append(errs, check(p.Child("prefix"), ev.Prefix, fastvalidation.IsEnvVarName)...)
		}
		n := 0
		if ev.ConfigMapRef != nil {
			n++
			errs = append(errs, required(p.Child("configMapRef", "name"), ev.ConfigMapRef.Name, fastvalidation.IsDNS1123Subdomain)...)
		}
		if ev.SecretRef != nil {
			n++
			errs = append(errs, required(p.Child("secretRef", "name"), ev.SecretRef.Name, fastvalidation.IsDNS1123Subdomain)...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountPaths := map[string]bool{}
	for i, m := range mounts {
		p := path.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case !volumes[m.Name]:
			errs = append(errs, field.NotFound(p.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(p.Child("mountPath"), ""))
		case mountPaths[m.MountPath]:
			errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths[m.MountPath] = true
		if m.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(p.Child("subPath"), m.SubPath)...)
		}
		if m.SubPath != "" && m.SubPathExpr != "" {
			errs = append(errs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
		}
	}
	return errs
}

// overcommitAllowed says whether requests of a resource may be below its
// limit: native resources but huge pages.
func overcommitAllowed(name corev1.ResourceName) bool {
	native := !strings.Contains(string(name), "/") || strings.Contains(string(name), "kubernetes.io/")
	return native && !strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

func validateResources(r *corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	limPath, reqPath := path.Child("limits"), path.Child("requests")
	for _, name := range sortedKeys(r.Limits) {
		p := limPath.Key(string(name))
		errs = append(errs, check(p, string(name), fastvalidation.IsQualifiedName)...)
		errs = append(errs, nonNegativeQuantity(p, r.Limits[name])...)
	}
	for _, name := range sortedKeys(r.Requests) {
		p, req := reqPath.Key(string(name)), r.Requests[name]
		errs = append(errs, check(p, string(name), fastvalidation.IsQualifiedName)...)
		errs = append(errs, nonNegativeQuantity(p, req)...)
		lim, ok := r.Limits[name]
		switch {
		case ok && req.Cmp(lim) != 0 && !overcommitAllowed(name):
			errs = append(errs, field.Invalid(reqPath, req.String(), fmt.Sprintf("must be equal to %s limit of %s", name, lim.String())))
		case ok && req.Cmp(lim) > 0:
			errs = append(errs, field.Invalid(reqPath, req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		case !ok && !overcommitAllowed(name):
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
	}
	return errs
}

func sortedKeys(l corev1.ResourceList) []corev1.ResourceName {
	keys := make([]corev1.ResourceName, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// handler is what probes and lifecycle hooks have in common.
type handler struct {
	exec      *corev1.ExecAction
	httpGet   *corev1.HTTPGetAction
	tcpSocket *corev1.TCPSocketAction
	grpc      *corev1.GRPCAction
	sleep     *corev1.SleepAction
}

func lifecycleHandler(h *corev1.LifecycleHandler) handler {
	return handler{exec: h.Exec, httpGet: h.HTTPGet, tcpSocket: h.TCPSocket, sleep: h.Sleep}
}

func validateProbe(p *corev1.Probe, path *field.Path) field.ErrorList {
	if p == nil {
		return nil
	}
	errs := validateHandler(handler{exec: p.Exec, httpGet: p.HTTPGet, tcpSocket: p.TCPSocket, grpc: p.GRPC}, path)
	errs = append(errs, nonNegative(path.Child("initialDelaySeconds"), p.InitialDelaySeconds)...)
	errs = append(errs, nonNegative(path.Child("timeoutSeconds"), p.TimeoutSeconds)...)
	errs = append(errs, nonNegative(path.Child("periodSeconds"), p.PeriodSeconds)...)
	errs = append(errs, nonNegative(path.Child("successThreshold"), p.SuccessThreshold)...)
	errs = append(errs, nonNegative(path.Child("failureThreshold"), p.FailureThreshold)...)
	if g := p.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		errs = append(errs, field.Invalid(path.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
	}
	return errs
}

func validateHandler(h handler, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	one := func(name string, set bool, validate func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n++; n > 1 {
			errs = append(errs, field.Forbidden(path.Child(name), "may not specify more than 1 handler type"))
			return
		}
		errs = append(errs, validate(path.Child(name))...)
	}
	one("exec", h.exec != nil, func(p *field.Path) field.ErrorList {
		if len(h.exec.Command) == 0 {
			return field.ErrorList{field.Required(p.Child("command"), "")}
		}
		return nil
	})
	one("httpGet", h.httpGet != nil, func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if h.httpGet.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, portNumOrName(p.Child("port"), h.httpGet.Port)...)
		errs = append(errs, oneOf(p.Child("scheme"), h.httpGet.Scheme, corev1.URISchemeHTTP, corev1.URISchemeHTTPS)...)
		for i, hdr := range h.httpGet.HTTPHeaders {
			errs = append(errs, check(p.Child("httpHeaders").Index(i).Child("name"), hdr.Name, fastvalidation.IsHTTPHeaderName)...)
		}
		return errs
	})
	one("tcpSocket", h.tcpSocket != nil, func(p *field.Path) field.ErrorList {
		return portNumOrName(p.Child("port"), h.tcpSocket.Port)
	})
	one("grpc", h.grpc != nil, func(p *field.Path) field.ErrorList {
		return portNum(p.Child("port"), h.grpc.Port)
	})
	one("sleep", h.sleep != nil, func(p *field.Path) field.ErrorList {
		return nonNegative(p.Child("seconds"), h.sleep.Seconds)
	})
	if n == 0 {
		errs = append(errs, field.Required(path, "must specify a handler type"))
	}
	return errs
}

func validateDNS(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	errs := oneOf(path.Child("dnsPolicy"), spec.DNSPolicy,
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)
	cfg := spec.DNSConfig
	if spec.DNSPolicy == corev1.DNSNone && cfg == nil {
		return append(errs, field.Required(path.Child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
	}
	if cfg == nil {
		return errs
	}
	p := path.Child("dnsConfig")
	if spec.DNSPolicy == corev1.DNSNone && len(cfg.Nameservers) == 0 {
		errs = append(errs, field.Required(p.Child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
	}
	if len(cfg.Nameservers) > maxDNSNameservers {
		errs = append(errs, field.Invalid(p.Child("nameservers"), cfg.Nameservers, fmt.Sprintf("must not have more than %d nameservers", maxDNSNameservers)))
	}
	for i, ns := range cfg.Nameservers {
		errs = append(errs, validation.IsValidIP(p.Child("nameservers").Index(i), ns)...)
	}
	if len(cfg.Searches) > maxDNSSearchPaths {
		errs = append(errs, field.Invalid(p.Child("searches"), cfg.Searches, fmt.Sprintf("must not have more than %d search paths", maxDNSSearchPaths)))
	}
	for i, s := range cfg.Searches {
		if s != "." {
			errs = append(errs, check(p.Child("searches").Index(i), strings.TrimSuffix(s, "."), fastvalidation.IsDNS1123Subdomain)...)
		}
	}
	return errs
}

func validateTolerations(tolerations []corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		p := path.Index(i)
		if t.Key != "" {
			errs = append(errs, fastvalidation.ValidateLabelName(t.Key, p.Child("key"))...)
		} else if t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(p.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if msgs := fastvalidation.IsValidLabelValue(t.Value); len(msgs) > 0 {
				errs = append(errs, field.Invalid(p.Child("operator"), t.Value, strings.Join(msgs, ";")))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(p.Child("operator"), t, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		errs = append(errs, optionalOneOf(p.Child("effect"), t.Effect,
			corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
	}
	return errs
}

func validateTopologySpread(constraints []corev1.TopologySpreadConstraint, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range constraints {
		p := path.Index(i)
		errs = append(errs, positive(p.Child("maxSkew"), c.MaxSkew)...)
		if c.TopologyKey == "" {
			errs = append(errs, field.Required(p.Child("topologyKey"), "can not be empty"))
		} else {
			errs = append(errs, fastvalidation.ValidateLabelName(c.TopologyKey, p.Child("topologyKey"))...)
		}
		errs = append(errs, oneOf(p.Child("whenUnsatisfiable"), c.WhenUnsatisfiable, corev1.DoNotSchedule, corev1.ScheduleAnyway)...)
	}
	return errs
}

const podUpdateForbiddenMsg = "pod updates may not change fields other than `spec.containers[*].image`," +
	"`spec.initContainers[*].image`," +
	"`spec.activeDeadlineSeconds`," +
	"`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// validatePodSpecUpdate allows only upstream's mutable pod fields to change.
func validatePodSpecUpdate(spec, old *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, cs := range []struct {
		new, old []corev1.Container
		name     string
	}{{spec.Containers, old.Containers, "containers"}, {spec.InitContainers, old.InitContainers, "initContainers"}} {
		if len(cs.new) != len(cs.old) {
			return append(errs, field.Forbidden(path.Child(cs.name), "pod updates may not add or remove containers"))
		}
	}
	p := path.Child("activeDeadlineSeconds")
	switch d, oldD := spec.ActiveDeadlineSeconds, old.ActiveDeadlineSeconds; {
	case d == nil && oldD != nil:
		errs = append(errs, field.Invalid(p, d, "must not update from a positive integer to nil value"))
	case d != nil && oldD != nil && *d > *oldD:
		errs = append(errs, field.Invalid(p, *d, "must be less than or equal to previous value"))
	}
	for _, t := range old.Tolerations {
		if !slices.ContainsFunc(spec.Tolerations, func(n corev1.Toleration) bool {
			n.TolerationSeconds = t.TolerationSeconds
			return n == t
		}) {
			errs = append(errs, field.Forbidden(path.Child("tolerations"), "existing toleration can not be modified except its tolerationSeconds"))
			break
		}
	}
	if equality.Semantic.DeepEqual(spec, old) {
		return errs
	}

	// Set the mutable fields to their old values: what differs then is forbidden.
	munged := spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.ActiveDeadlineSeconds
	munged.Tolerations = old.Tolerations
	munged.SchedulingGates = old.SchedulingGates
	if g, oldG := munged.TerminationGracePeriodSeconds, old.TerminationGracePeriodSeconds; g != nil && oldG != nil && *oldG < 0 && *g == 1 {
		munged.TerminationGracePeriodSeconds = oldG
	}
	if !equality.Semantic.DeepEqual(munged, old) {
		errs = append(errs, field.Forbidden(path, podUpdateForbiddenMsg+"\n"+diff.Diff(old, munged)))
	}
	return errs
}

// defaultPVCSpec is shared with the claims of StatefulSets and ephemeral
// volumes.
func defaultPVCSpec(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
}
