// Package nodename filters out every node but the one a pod names in
// spec.nodeName.
package nodename

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "NodeName"

// ErrReason is upstream's reason.
const ErrReason = "node(s) didn't match the requested node name"

// Plugin is the NodeName filter.
type Plugin struct{}

var _ framework.FilterPlugin = Plugin{}

// New builds the plugin; it takes no args.
func New([]byte) (framework.Plugin, error) { return Plugin{}, nil }

// Name implements framework.Plugin.
func (Plugin) Name() string { return Name }

// Filter implements framework.FilterPlugin.
func (Plugin) Filter(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	if pod.Spec.NodeName == "" || pod.Spec.NodeName == ni.Node().Name {
		return nil
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)
}
