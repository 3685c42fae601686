package volume

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// downwardAPIVolume holds fields of the pod and resources of its
// containers as files, on a tmpfs; they follow the pod's labels and
// annotations.
type downwardAPIVolume struct {
	apiDataVolume
	m      *Manager
	source *corev1.DownwardAPIVolumeSource
}

func newDownwardAPIVolume(m *Manager, dir string, source *corev1.DownwardAPIVolumeSource) *downwardAPIVolume {
	return &downwardAPIVolume{apiDataVolume: apiDataVolume{dir: dir, tmpfs: true}, m: m, source: source}
}

func (v *downwardAPIVolume) SetUp(_ context.Context, pod *corev1.Pod) (string, error) {
	payload, err := downwardAPIPayload(pod, v.source.Items, v.source.DefaultMode, v.m.cfg.NodeAllocatable)
	if err != nil {
		return "", err
	}
	if err := v.write(payload); err != nil {
		return "", err
	}
	return v.dir, nil
}

// downwardAPIPayload is upstream's downwardAPI CollectData.
func downwardAPIPayload(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32, allocatable func() corev1.ResourceList) (map[string]FileProjection, error) {
	mode := int32(0o644)
	if defaultMode != nil {
		mode = *defaultMode
	}
	payload := make(map[string]FileProjection, len(items))
	var errs []error
	for _, it := range items {
		fp := FileProjection{Mode: mode}
		if it.Mode != nil {
			fp.Mode = *it.Mode
		}
		switch {
		case it.FieldRef != nil:
			v, err := podFieldValue(pod, it.FieldRef.FieldPath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fp.Data = []byte(v)
		case it.ResourceFieldRef != nil:
			v, err := containerResourceValue(pod, it.ResourceFieldRef, allocatable)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			fp.Data = []byte(v)
		default:
			errs = append(errs, fmt.Errorf("downwardAPI item %q: one of fieldRef and resourceFieldRef is required", it.Path))
			continue
		}
		payload[it.Path] = fp
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return payload, nil
}

// podFieldValue is upstream's fieldpath.ExtractFieldPathAsString for the
// fields a downwardAPI volume may hold.
func podFieldValue(pod *corev1.Pod, path string) (string, error) {
	if p, sub, ok := subscript(path); ok {
		switch p {
		case "metadata.annotations":
			return pod.Annotations[sub], nil
		case "metadata.labels":
			return pod.Labels[sub], nil
		}
		return "", fmt.Errorf("fieldPath %q does not support subscript", path)
	}
	switch path {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

// subscript splits metadata.labels['key'].
func subscript(path string) (string, string, bool) {
	i := strings.Index(path, "['")
	if i < 0 || !strings.HasSuffix(path, "']") || len(path) < i+4 {
		return "", "", false
	}
	return path[:i], path[i+2 : len(path)-2], true
}

// formatMap is upstream's fieldpath.FormatMap: key="quoted value" lines in
// key order.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, m[k])
	}
	return string(b)
}

// containerResourceValue is upstream's
// ExtractResourceValueByContainerNameAndNodeAllocatable: the container's
// request or limit in units of the divisor, rounded up; a limit the
// container does not set is the node's allocatable.
func containerResourceValue(pod *corev1.Pod, fs *corev1.ResourceFieldSelector, allocatable func() corev1.ResourceList) (string, error) {
	if fs.ContainerName == "" {
		return "", fmt.Errorf("resourceFieldRef %s: containerName is required in a volume", fs.Resource)
	}
	var c *corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == fs.ContainerName {
				c = &list[i]
			}
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: container %q not found in the pod", fs.ContainerName)
	}
	limits := c.Resources.Limits.DeepCopy()
	if limits == nil {
		limits = corev1.ResourceList{}
	}
	for name, q := range allocatable() {
		if _, ok := limits[name]; !ok {
			limits[name] = q
		}
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	get := func(l corev1.ResourceList, name corev1.ResourceName) resource.Quantity {
		return l[name]
	}
	switch fs.Resource {
	case "limits.cpu":
		return cpuString(get(limits, corev1.ResourceCPU), divisor), nil
	case "limits.memory":
		return bytesString(get(limits, corev1.ResourceMemory), divisor), nil
	case "limits.ephemeral-storage":
		return bytesString(get(limits, corev1.ResourceEphemeralStorage), divisor), nil
	case "requests.cpu":
		return cpuString(get(c.Resources.Requests, corev1.ResourceCPU), divisor), nil
	case "requests.memory":
		return bytesString(get(c.Resources.Requests, corev1.ResourceMemory), divisor), nil
	case "requests.ephemeral-storage":
		return bytesString(get(c.Resources.Requests, corev1.ResourceEphemeralStorage), divisor), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "limits."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return bytesString(get(limits, corev1.ResourceName(name)), divisor), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "requests."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return bytesString(get(c.Resources.Requests, corev1.ResourceName(name)), divisor), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

func cpuString(q, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
}

func bytesString(q, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
}

// machineAllocatable is the machine's CPUs and memory.
func machineAllocatable() corev1.ResourceList {
	out := corev1.ResourceList{
		corev1.ResourceCPU: *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		out[corev1.ResourceMemory] = *resource.NewQuantity(int64(si.Totalram)*int64(si.Unit), resource.BinarySI)
	}
	return out
}
