package scheduler

import (
	"fmt"

	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins"
)

// NewFramework instantiates a profile's plugins: the defaults merged with
// the profile's plugin sets, each plugin built once with its args and
// shared by the extension points it is enabled at. h is given to the
// plugins that need the snapshot or the informers.
func NewFramework(p config.Profile, registry plugins.Registry, parallelism int, h framework.Handle) (*framework.Framework, error) {
	var custom config.Plugins
	if p.Plugins != nil {
		custom = *p.Plugins
	}
	args := map[string][]byte{}
	for _, pc := range p.PluginConfig {
		args[pc.Name] = pc.Args
	}
	instances := map[string]framework.Plugin{}
	get := func(name string) (framework.Plugin, error) {
		if pl, ok := instances[name]; ok {
			return pl, nil
		}
		factory, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("plugin %q is not known", name)
		}
		pl, err := factory(args[name], h)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: %w", name, err)
		}
		instances[name] = pl
		return pl, nil
	}

	// MultiPoint first: it adds a plugin at every point it implements.
	filterDefaults := config.DefaultFilterPlugins()
	scoreDefaults := config.DefaultScorePlugins()
	var mpFilter, mpScore config.PluginSet
	for _, e := range custom.MultiPoint.Enabled {
		pl, err := get(e.Name)
		if err != nil {
			return nil, err
		}
		if _, ok := pl.(framework.FilterPlugin); ok {
			mpFilter.Enabled = append(mpFilter.Enabled, e)
		}
		if _, ok := pl.(framework.ScorePlugin); ok {
			mpScore.Enabled = append(mpScore.Enabled, e)
		}
	}
	mpFilter.Disabled = custom.MultiPoint.Disabled
	mpScore.Disabled = custom.MultiPoint.Disabled
	filterSet := config.MergePluginSet(config.MergePluginSet(filterDefaults, mpFilter), custom.Filter)
	scoreSet := config.MergePluginSet(config.MergePluginSet(scoreDefaults, mpScore), custom.Score)

	var filters []framework.FilterPlugin
	seen := map[string]bool{}
	for _, e := range filterSet {
		if seen[e.Name] {
			return nil, fmt.Errorf("filter plugin %q enabled twice", e.Name)
		}
		seen[e.Name] = true
		pl, err := get(e.Name)
		if err != nil {
			return nil, err
		}
		f, ok := pl.(framework.FilterPlugin)
		if !ok {
			return nil, fmt.Errorf("plugin %q is not a filter plugin", e.Name)
		}
		filters = append(filters, f)
	}
	var scores []framework.WeightedScorePlugin
	seen = map[string]bool{}
	for _, e := range scoreSet {
		if seen[e.Name] {
			return nil, fmt.Errorf("score plugin %q enabled twice", e.Name)
		}
		seen[e.Name] = true
		pl, err := get(e.Name)
		if err != nil {
			return nil, err
		}
		s, ok := pl.(framework.ScorePlugin)
		if !ok {
			return nil, fmt.Errorf("plugin %q is not a score plugin", e.Name)
		}
		w := e.Weight
		if w == 0 {
			w = 1
		}
		scores = append(scores, framework.WeightedScorePlugin{ScorePlugin: s, Weight: w})
	}
	for name := range args {
		if _, ok := registry[name]; !ok {
			return nil, fmt.Errorf("pluginConfig: plugin %q is not known", name)
		}
	}
	return framework.New(filters, scores, parallelism), nil
}
