package volume

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// emptyDir is a directory of the pod's on the node's disk or, with medium
// Memory, a tmpfs whose size is the sizeLimit (else the pod's memory limit
// when every container has one, else the kernel's default).
type emptyDir struct {
	dir    string
	source *corev1.EmptyDirVolumeSource
}

func (e *emptyDir) SetUp(_ context.Context, pod *corev1.Pod) (string, error) {
	switch e.source.Medium {
	case corev1.StorageMediumDefault:
		if err := os.MkdirAll(e.dir, 0o750); err != nil {
			return "", fmt.Errorf("create emptyDir: %w", err)
		}
	case corev1.StorageMediumMemory:
		if err := os.MkdirAll(e.dir, 0o750); err != nil {
			return "", fmt.Errorf("create emptyDir: %w", err)
		}
		if err := mountTmpfs(e.dir, memoryVolumeSize(pod, e.source.SizeLimit)); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("emptyDir medium %q is not supported", e.source.Medium)
	}
	// Writable by any user of the pod, as upstream's emptyDir.
	if err := os.Chmod(e.dir, 0o777); err != nil {
		return "", err
	}
	return e.dir, nil
}

func (e *emptyDir) TearDown() error { return teardownDir(e.dir) }

// memoryVolumeSize is the size of a memory-backed emptyDir: the smaller of
// sizeLimit and the pod's memory limit (known when every container has
// one), 0 when neither is known.
func memoryVolumeSize(pod *corev1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if sizeLimit != nil {
		size = sizeLimit.Value()
	}
	if lim, ok := podMemoryLimit(pod); ok && (size <= 0 || lim < size) {
		size = lim
	}
	return size
}

func podMemoryLimit(pod *corev1.Pod) (int64, bool) {
	if len(pod.Spec.Containers) == 0 {
		return 0, false
	}
	var sum int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[corev1.ResourceMemory]
		if !ok {
			return 0, false
		}
		sum += q.Value()
	}
	// An init container runs alone: the pod needs the largest of them too.
	for _, c := range pod.Spec.InitContainers {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && q.Value() > sum {
			sum = q.Value()
		}
	}
	return sum, sum > 0
}
