package framework

import (
	"context"
	"fmt"
	"sync"

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
	// scratch holds RunScorePlugins' per-plugin score lists between
	// calls: at thousands of nodes they are a cycle's largest allocation.
	scratch sync.Pool
}

type scoreScratch struct {
	scores []NodeScore
	errs   []*Status
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

// RunPreFilterPlugins runs every PreFilter; the first failure stops. A
// plugin whose PreFilter returns Skip is not run as a filter in this cycle
// (as upstream's SkipFilterPlugins): its Filter would accept every node.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *CycleState, pod *corev1.Pod) *Status {
	var skipped map[string]bool
	for _, p := range f.preFilters {
		s := p.PreFilter(ctx, state, pod)
		if s.IsSkip() {
			if skipped == nil {
				skipped = map[string]bool{}
			}
			skipped[p.Name()] = true
			continue
		}
		if !s.IsSuccess() {
			return s.WithPlugin(p.Name())
		}
	}
	if skipped != nil {
		skip := make([]bool, len(f.filters))
		for i, p := range f.filters {
			skip[i] = skipped[p.Name()]
		}
		state.skipFilter.Store(&skip)
	}
	return nil
}

// RunFilterPlugins runs the filters on one node; the first that rejects
// decides, as upstream's framework does.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) *Status {
	var skip []bool
	if p := state.skipFilter.Load(); p != nil && len(*p) == len(f.filters) {
		skip = *p
	}
	for i, p := range f.filters {
		if skip != nil && skip[i] {
			continue
		}
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
	return f.RunScorePluginsInto(ctx, state, pod, nodes, nil)
}

// RunScorePluginsInto is RunScorePlugins writing the totals into dst's
// backing array when it is large enough (the scheduling loop reuses one).
func (f *Framework) RunScorePluginsInto(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo, dst []NodeScore) ([]NodeScore, *Status) {
	state.mu.Lock()
	skip := state.skipScore
	state.mu.Unlock()
	var active []WeightedScorePlugin
	for _, p := range f.scores {
		if !skip[p.Name()] {
			active = append(active, p)
		}
	}
	scratch, _ := f.scratch.Get().(*scoreScratch)
	if scratch == nil {
		scratch = &scoreScratch{}
	}
	defer f.scratch.Put(scratch)
	if n := len(active) * len(nodes); cap(scratch.scores) < n {
		scratch.scores = make([]NodeScore, n)
	}
	if cap(scratch.errs) < len(nodes) {
		scratch.errs = make([]*Status, len(nodes))
	}
	perPlugin := make([]NodeScoreList, len(active))
	for i := range active {
		perPlugin[i] = scratch.scores[i*len(nodes) : (i+1)*len(nodes) : (i+1)*len(nodes)]
	}
	errs := scratch.errs[:len(nodes)]
	clear(errs)
	defer clear(errs)
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
	totals := dst[:0]
	if cap(totals) < len(nodes) {
		totals = make([]NodeScore, len(nodes))
	}
	totals = totals[:len(nodes)]
	for n := range nodes {
		totals[n] = NodeScore{Name: nodes[n].Node().Name}
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
