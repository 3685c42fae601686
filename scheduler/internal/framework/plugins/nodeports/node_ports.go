// Package nodeports filters out nodes where a host port the pod asks for is
// already taken.
package nodeports

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "NodePorts"

// ErrReason is upstream's reason.
const ErrReason = "node(s) didn't have free ports for the requested pod ports"

const stateKey framework.StateKey = "PreFilter" + Name

// Plugin is the NodePorts filter.
type Plugin struct{}

var (
	_ framework.FilterPlugin    = Plugin{}
	_ framework.PreFilterPlugin = Plugin{}
)

// New builds the plugin; it takes no args.
func New([]byte) (framework.Plugin, error) { return Plugin{}, nil }

// Name implements framework.Plugin.
func (Plugin) Name() string { return Name }

type preFilterState []corev1.ContainerPort

// PreFilter collects the pod's host ports.
func (Plugin) PreFilter(_ context.Context, state *framework.CycleState, pod *corev1.Pod) *framework.Status {
	ports := framework.PodHostPorts(pod)
	state.Write(stateKey, preFilterState(ports))
	if len(ports) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Filter implements framework.FilterPlugin.
func (Plugin) Filter(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	var ports []corev1.ContainerPort
	if d, ok := state.Read(stateKey); ok {
		ports = d.(preFilterState)
	} else {
		ports = framework.PodHostPorts(pod)
	}
	for _, p := range ports {
		if ni.UsedPorts.CheckConflict(p.HostIP, string(p.Protocol), p.HostPort) {
			return statusConflict
		}
	}
	return nil
}

// statusConflict is Filter's rejection, shared by every node (a status
// naming its plugin is never changed).
var statusConflict = framework.NewPluginStatus(Name, framework.Unschedulable, ErrReason)
