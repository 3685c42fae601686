// Package tainttoleration filters out nodes with NoSchedule or NoExecute
// taints the pod does not tolerate, and scores nodes lower the more
// PreferNoSchedule taints the pod does not tolerate.
package tainttoleration

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// Name is the plugin's name in the config.
const Name = "TaintToleration"

// ErrReasonNotMatch is upstream's reason when a node has no node object.
const ErrReasonNotMatch = "node(s) had taints that the pod didn't tolerate"

const preScoreStateKey framework.StateKey = "PreScore" + Name

// Plugin is the TaintToleration filter and scorer.
type Plugin struct{}

var (
	_ framework.FilterPlugin    = Plugin{}
	_ framework.PreScorePlugin  = Plugin{}
	_ framework.ScorePlugin     = Plugin{}
	_ framework.ScoreExtensions = Plugin{}
)

// New builds the plugin; it takes no args.
func New([]byte) (framework.Plugin, error) { return Plugin{}, nil }

// Name implements framework.Plugin.
func (Plugin) Name() string { return Name }

// Filter rejects a node with an untolerated NoSchedule or NoExecute taint.
func (Plugin) Filter(_ context.Context, _ *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) *framework.Status {
	node := ni.Node()
	if node == nil {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNotMatch)
	}
	taint, found := framework.FindUntoleratedTaint(node.Spec.Taints, pod.Spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	})
	if !found {
		return nil
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value))
}

type preScoreState []corev1.Toleration

// PreScore keeps the pod's tolerations that can tolerate PreferNoSchedule.
func (Plugin) PreScore(_ context.Context, state *framework.CycleState, pod *corev1.Pod, _ []*framework.NodeInfo) *framework.Status {
	var tols []corev1.Toleration
	for _, t := range pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == corev1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	state.Write(preScoreStateKey, preScoreState(tols))
	return nil
}

// Score counts the node's untolerated PreferNoSchedule taints; the
// normaliser reverses it, so fewer is better.
func (Plugin) Score(_ context.Context, state *framework.CycleState, pod *corev1.Pod, ni *framework.NodeInfo) (int64, *framework.Status) {
	tols := pod.Spec.Tolerations
	if d, ok := state.Read(preScoreStateKey); ok {
		tols = d.(preScoreState)
	}
	var n int64
	for i := range ni.Node().Spec.Taints {
		t := &ni.Node().Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !framework.TolerationsTolerateTaint(tols, t) {
			n++
		}
	}
	return n, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore maps the most taints to 0 and none to 100.
func (Plugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *corev1.Pod, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, true, scores)
}
