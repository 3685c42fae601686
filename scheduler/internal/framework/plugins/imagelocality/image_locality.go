// Package imagelocality scores nodes by the size of the pod's images they
// already hold, scaled by how widely each image is spread across the
// cluster, as upstream's ImageLocality.
package imagelocality

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "ImageLocality"

// Upstream's thresholds: below minThreshold of images present the score
// is 0; at maxContainerThreshold per container it is MaxNodeScore.
const (
	mb                    int64 = 1024 * 1024
	minThreshold          int64 = 23 * mb
	maxContainerThreshold int64 = 1000 * mb
)

// Plugin is the ImageLocality scorer.
type Plugin struct {
	handle framework.Handle
}

var (
	_ framework.ScorePlugin    = (*Plugin)(nil)
	_ framework.PreScorePlugin = (*Plugin)(nil)
)

// New builds the plugin; it takes no args and needs the handle's snapshot.
func New(_ []byte, h framework.Handle) (framework.Plugin, error) {
	if h == nil {
		return nil, errors.New("ImageLocality needs the scheduler handle")
	}
	return &Plugin{handle: h}, nil
}

// Name implements framework.Plugin.
func (*Plugin) Name() string { return Name }

// PreScore skips the plugin when no node holds any of the pod's images:
// every node would score 0, which adds nothing to any total.
func (p *Plugin) PreScore(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	snapshot := p.handle.SnapshotSharedLister()
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if snapshot.ImageNumNodes(framework.NormalizedImageName(cs[i].Image)) > 0 {
				return nil
			}
		}
	}
	return framework.NewStatus(framework.Skip)
}

// Score sums, over the pod's containers whose image the node holds, the
// image's size times the fraction of nodes holding it, and maps the sum
// linearly from [minThreshold, maxContainerThreshold*containers] to
// [0, MaxNodeScore].
func (p *Plugin) Score(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	snapshot := p.handle.SnapshotSharedLister()
	total := len(snapshot.List())
	if total == 0 {
		return 0, nil
	}
	sum := sumImageScores(ni, snapshot, pod, total)
	return calculatePriority(sum, len(pod.Spec.InitContainers)+len(pod.Spec.Containers)), nil
}

// ScoreExtensions implements framework.ScorePlugin: scores are final.
func (*Plugin) ScoreExtensions() framework.ScoreExtensions { return nil }

func calculatePriority(sum int64, numContainers int) int64 {
	maxThreshold := maxContainerThreshold * int64(numContainers)
	if sum < minThreshold {
		sum = minThreshold
	} else if sum > maxThreshold {
		sum = maxThreshold
	}
	if maxThreshold <= minThreshold {
		return 0
	}
	return framework.MaxNodeScore * (sum - minThreshold) / (maxThreshold - minThreshold)
}

func sumImageScores(ni *framework.NodeInfo, snapshot framework.NodeInfoLister, pod *corev1.Pod, total int) int64 {
	if len(ni.ImageSizes) == 0 {
		return 0
	}
	var sum int64
	add := func(cs []corev1.Container) {
		for i := range cs {
			name := framework.NormalizedImageName(cs[i].Image)
			if size, ok := ni.ImageSizes[name]; ok {
				// The spread factor: an image on few nodes counts less, so
				// pods do not pile onto the few nodes that have it.
				spread := float64(snapshot.ImageNumNodes(name)) / float64(total)
				sum += int64(float64(size) * spread)
			}
		}
	}
	add(pod.Spec.InitContainers)
	add(pod.Spec.Containers)
	return sum
}
