// Package nodeunschedulable filters out nodes with spec.unschedulable set,
// unless the pod tolerates the node.kubernetes.io/unschedulable taint.
package nodeunschedulable

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "NodeUnschedulable"

// Reasons, as upstream's.
const (
	ErrReasonUnknownCondition = "node(s) had unknown conditions"
	ErrReasonUnschedulable    = "node(s) were unschedulable"
)

// Plugin is the NodeUnschedulable filter.
type Plugin struct{}

var _ framework.FilterPlugin = Plugin{}

// New builds the plugin; it takes no args.
func New([]byte) (framework.Plugin, error) { return Plugin{}, nil }

// Name implements framework.Plugin.
func (Plugin) Name() string { return Name }

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

// Filter implements framework.FilterPlugin.
func (Plugin) Filter(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	node := ni.Node()
	if node == nil {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonUnknownCondition)
	}
	if !node.Spec.Unschedulable {
		return nil
	}
	if framework.TolerationsTolerateTaint(pod.Spec.Tolerations, &unschedulableTaint) {
		return nil
	}
	return statusUnschedulable
}

// statusUnschedulable is Filter's rejection, shared by every node (a
// status naming its plugin is never changed).
var statusUnschedulable = framework.NewPluginStatus(Name, framework.UnschedulableAndUnresolvable, ErrReasonUnschedulable)
