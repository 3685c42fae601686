package framework

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// WeightedScorePlugin is a score plugin and its weight in the profile.
type WeightedScorePlugin struct {
	ScorePlugin
	Weight int64
}

// Framework runs one profile's plugins.
type Framework struct {
	preFilters []PreFilterPlugin
	filters    []FilterPlugin
	preScores  []PreScorePlugin
	scores     []WeightedScorePlugin
	parallel   Parallelizer
}

// New builds a framework from instantiated plugins, in evaluation order.
// PreFilter and PreScore hooks are those of the given filter and score
// plugins that implement them.
func New(filters []FilterPlugin, scores []WeightedScorePlugin, parallelism int) *Framework {
	f := &Framework{filters: filters, scores: scores, parallel: NewParallelizer(parallelism)}
	seen := map[string]bool{}
	for _, p := range filters {
		if pf, ok := p.(PreFilterPlugin); ok && !seen[p.Name()] {
			seen[p.Name()] = true
			f.preFilters = append(f.preFilters, pf)
		}
	}
	seen = map[string]bool{}
	for _, p := range scores {
		if ps, ok := p.ScorePlugin.(PreScorePlugin); ok && !seen[p.Name()] {
			seen[p.Name()] = true
			f.preScores = append(f.preScores, ps)
		}
	}
	return f
}

// Parallelizer returns the framework's parallelizer.
func (f *Framework) Parallelizer() Parallelizer { return f.parallel }

// FilterPlugins returns the filter plugins in order.
func (f *Framework) FilterPlugins() []FilterPlugin { return f.filters }

// ScorePlugins returns the score plugins with their weights.
func (f *Framework) ScorePlugins() []WeightedScorePlugin { return f.scores }

// HasScorePlugins says whether any score plugin is enabled.
func (f *Framework) HasScorePlugins() bool { return len(f.scores) > 0 }

// RunPreFilterPlugins runs every PreFilter; the first failure stops.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *CycleState, pod *corev1.Pod) *Status {
	for _, p := range f.preFilters {
		if s := p.PreFilter(ctx, state, pod); !s.IsSuccess() && !s.IsSkip() {
			return s.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunFilterPlugins runs the filters on one node; the first that rejects
// decides, as upstream's framework does.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) *Status {
	for _, p := range f.filters {
		if s := p.Filter(ctx, state, pod, node); !s.IsSuccess() {
			return s.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunPreScorePlugins runs every PreScore; a plugin returning Skip is not
// scored for this pod.
func (f *Framework) RunPreScorePlugins(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) *Status {
	skip := map[string]bool{}
	for _, p := range f.preScores {
		s := p.PreScore(ctx, state, pod, nodes)
		if s.IsSkip() {
			skip[p.Name()] = true
			continue
		}
		if !s.IsSuccess() {
			return s.WithPlugin(p.Name())
		}
	}
	state.mu.Lock()
	state.skipScore = skip
	state.mu.Unlock()
	return nil
}

// RunScorePlugins scores every node with every plugin (in parallel across
// nodes), normalises, weights, and returns each node's total, in nodes'
// order.
func (f *Framework) RunScorePlugins(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) ([]NodeScore, *Status) {
	state.mu.Lock()
	skip := state.skipScore
	state.mu.Unlock()
	var active []WeightedScorePlugin
	for _, p := range f.scores {
		if !skip[p.Name()] {
			active = append(active, p)
		}
	}
	perPlugin := make([]NodeScoreList, len(active))
	for i := range active {
		perPlugin[i] = make(NodeScoreList, len(nodes))
	}
	errs := make([]*Status, len(nodes))
	f.parallel.Until(ctx, len(nodes), func(n int) {
		name := nodes[n].Node().Name
		for i, p := range active {
			s, st := p.Score(ctx, state, pod, nodes[n])
			if !st.IsSuccess() {
				errs[n] = st.WithPlugin(p.Name())
				return
			}
			perPlugin[i][n] = NodeScore{Name: name, Score: s}
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, AsStatus(err)
	}
	for _, st := range errs {
		if st != nil {
			return nil, st
		}
	}
	totals := make([]NodeScore, len(nodes))
	for n := range nodes {
		totals[n].Name = nodes[n].Node().Name
	}
	for i, p := range active {
		if ext := p.ScoreExtensions(); ext != nil {
			if st := ext.NormalizeScore(ctx, state, pod, perPlugin[i]); !st.IsSuccess() {
				return nil, st.WithPlugin(p.Name())
			}
		}
		for n, s := range perPlugin[i] {
			if s.Score > MaxNodeScore || s.Score < MinNodeScore {
				return nil, AsStatus(fmt.Errorf("plugin %s returned score %d for node %s, outside [%d, %d]", p.Name(), s.Score, s.Name, MinNodeScore, MaxNodeScore)).WithPlugin(p.Name())
			}
			totals[n].Score += s.Score * p.Weight
		}
	}
	return totals, nil
}
