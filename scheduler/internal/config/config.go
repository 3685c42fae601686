// Package config is kube-scheduler's configuration file: a subset of
// upstream's KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1),
// read from YAML or JSON, with upstream's defaults.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind of the file.
const (
	APIVersion = "kubescheduler.config.k8s.io/v1"
	Kind       = "KubeSchedulerConfiguration"
)

// Defaults, as upstream's.
const (
	DefaultPodInitialBackoffSeconds = 1
	DefaultPodMaxBackoffSeconds     = 10
	DefaultParallelism              = 16
	DefaultLeaseName                = "kube-scheduler"
	DefaultLeaseNamespace           = "kube-system"
)

// Configuration is the file's content.
type Configuration struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	// Parallelism is how many goroutines evaluate nodes.
	Parallelism int `json:"parallelism,omitempty"`
	// LeaderElection configures the election (--leader-elect overrides
	// leaderElect).
	LeaderElection LeaderElection `json:"leaderElection,omitempty"`
	// ClientConnection.Kubeconfig is used when --kubeconfig is not given.
	ClientConnection ClientConnection `json:"clientConnection,omitempty"`
	// PercentageOfNodesToScore: 0 is upstream's adaptive default (50%
	// minus 1% per 125 nodes, at least 5%, at least 100 nodes).
	PercentageOfNodesToScore *int32 `json:"percentageOfNodesToScore,omitempty"`
	PodInitialBackoffSeconds int64  `json:"podInitialBackoffSeconds,omitempty"`
	PodMaxBackoffSeconds     int64  `json:"podMaxBackoffSeconds,omitempty"`
	// Profiles: exactly one is supported for now.
	Profiles []Profile `json:"profiles,omitempty"`
	// Accepted for compatibility with upstream files, not used.
	EnableProfiling           *bool `json:"enableProfiling,omitempty"`
	EnableContentionProfiling *bool `json:"enableContentionProfiling,omitempty"`
}

// LeaderElection is upstream's LeaderElectionConfiguration.
type LeaderElection struct {
	LeaderElect       *bool           `json:"leaderElect,omitempty"`
	LeaseDuration     metav1.Duration `json:"leaseDuration,omitempty"`
	RenewDeadline     metav1.Duration `json:"renewDeadline,omitempty"`
	RetryPeriod       metav1.Duration `json:"retryPeriod,omitempty"`
	ResourceLock      string          `json:"resourceLock,omitempty"`
	ResourceName      string          `json:"resourceName,omitempty"`
	ResourceNamespace string          `json:"resourceNamespace,omitempty"`
}

// ClientConnection is the part of upstream's ClientConnectionConfiguration
// Coxswain reads; the rest is accepted and ignored.
type ClientConnection struct {
	Kubeconfig         string  `json:"kubeconfig,omitempty"`
	AcceptContentTypes string  `json:"acceptContentTypes,omitempty"`
	ContentType        string  `json:"contentType,omitempty"`
	QPS                float32 `json:"qps,omitempty"`
	Burst              int32   `json:"burst,omitempty"`
}

// Profile is a scheduler name and its plugins.
type Profile struct {
	SchedulerName string `json:"schedulerName,omitempty"`
	// PercentageOfNodesToScore overrides the global one for this profile.
	PercentageOfNodesToScore *int32         `json:"percentageOfNodesToScore,omitempty"`
	Plugins                  *Plugins       `json:"plugins,omitempty"`
	PluginConfig             []PluginConfig `json:"pluginConfig,omitempty"`
}

// Plugins are the custom plugin sets per extension point, merged with the
// defaults as upstream does: disabled ones (or "*") are removed from the
// defaults, enabled ones that are defaults replace them in place, others
// are appended. MultiPoint applies to both Filter and Score, for the
// plugins implementing each. The other extension points are accepted for
// compatibility and not configurable yet.
type Plugins struct {
	MultiPoint PluginSet `json:"multiPoint,omitempty"`
	Filter     PluginSet `json:"filter,omitempty"`
	Score      PluginSet `json:"score,omitempty"`

	QueueSort  PluginSet `json:"queueSort,omitempty"`
	PreEnqueue PluginSet `json:"preEnqueue,omitempty"`
	PreFilter  PluginSet `json:"preFilter,omitempty"`
	PostFilter PluginSet `json:"postFilter,omitempty"`
	PreScore   PluginSet `json:"preScore,omitempty"`
	Reserve    PluginSet `json:"reserve,omitempty"`
	Permit     PluginSet `json:"permit,omitempty"`
	PreBind    PluginSet `json:"preBind,omitempty"`
	Bind       PluginSet `json:"bind,omitempty"`
	PostBind   PluginSet `json:"postBind,omitempty"`
}

// PluginSet enables and disables plugins.
type PluginSet struct {
	Enabled  []Plugin `json:"enabled,omitempty"`
	Disabled []Plugin `json:"disabled,omitempty"`
}

// Plugin names a plugin; Weight is used by score plugins (0 means 1).
type Plugin struct {
	Name   string `json:"name"`
	Weight int64  `json:"weight,omitempty"`
}

// PluginConfig holds a plugin's args (its own JSON shape).
type PluginConfig struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// DefaultFilterPlugins are upstream's default filters that Coxswain has,
// in upstream's order.
func DefaultFilterPlugins() []Plugin {
	return []Plugin{
		{Name: "NodeUnschedulable"},
		{Name: "NodeName"},
		{Name: "TaintToleration"},
		{Name: "NodeAffinity"},
		{Name: "NodePorts"},
		{Name: "NodeResourcesFit"},
		{Name: "PodTopologySpread"},
		{Name: "InterPodAffinity"},
	}
}

// DefaultScorePlugins are upstream's default scores that Coxswain has,
// with upstream's weights.
func DefaultScorePlugins() []Plugin {
	return []Plugin{
		{Name: "TaintToleration", Weight: 3},
		{Name: "NodeAffinity", Weight: 2},
		{Name: "NodeResourcesFit", Weight: 1},
		{Name: "PodTopologySpread", Weight: 2},
		{Name: "InterPodAffinity", Weight: 2},
		{Name: "NodeResourcesBalancedAllocation", Weight: 1},
		{Name: "ImageLocality", Weight: 1},
	}
}

// Default returns the configuration used without a file.
func Default() *Configuration {
	c := &Configuration{}
	c.SetDefaults()
	return c
}

// SetDefaults fills unset fields.
func (c *Configuration) SetDefaults() {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = Kind
	}
	if c.Parallelism == 0 {
		c.Parallelism = DefaultParallelism
	}
	if c.PercentageOfNodesToScore == nil {
		var zero int32
		c.PercentageOfNodesToScore = &zero
	}
	if c.PodInitialBackoffSeconds == 0 {
		c.PodInitialBackoffSeconds = DefaultPodInitialBackoffSeconds
	}
	if c.PodMaxBackoffSeconds == 0 {
		c.PodMaxBackoffSeconds = DefaultPodMaxBackoffSeconds
	}
	le := &c.LeaderElection
	if le.LeaseDuration.Duration == 0 {
		le.LeaseDuration.Duration = 15 * time.Second
	}
	if le.RenewDeadline.Duration == 0 {
		le.RenewDeadline.Duration = 10 * time.Second
	}
	if le.RetryPeriod.Duration == 0 {
		le.RetryPeriod.Duration = 2 * time.Second
	}
	if le.ResourceName == "" {
		le.ResourceName = DefaultLeaseName
	}
	if le.ResourceNamespace == "" {
		le.ResourceNamespace = DefaultLeaseNamespace
	}
	if len(c.Profiles) == 0 {
		c.Profiles = []Profile{{}}
	}
	for i := range c.Profiles {
		if c.Profiles[i].SchedulerName == "" {
			c.Profiles[i].SchedulerName = corev1.DefaultSchedulerName
		}
	}
}

// Validate checks a defaulted configuration.
func (c *Configuration) Validate() error {
	var errs []error
	if c.APIVersion != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion %q: want %s", c.APIVersion, APIVersion))
	}
	if c.Kind != Kind {
		errs = append(errs, fmt.Errorf("kind %q: want %s", c.Kind, Kind))
	}
	if c.Parallelism <= 0 {
		errs = append(errs, fmt.Errorf("parallelism %d must be positive", c.Parallelism))
	}
	if p := c.PercentageOfNodesToScore; p != nil && (*p < 0 || *p > 100) {
		errs = append(errs, fmt.Errorf("percentageOfNodesToScore %d is not in [0, 100]", *p))
	}
	if c.PodInitialBackoffSeconds <= 0 {
		errs = append(errs, fmt.Errorf("podInitialBackoffSeconds %d must be positive", c.PodInitialBackoffSeconds))
	}
	if c.PodMaxBackoffSeconds < c.PodInitialBackoffSeconds {
		errs = append(errs, fmt.Errorf("podMaxBackoffSeconds %d must be at least podInitialBackoffSeconds %d", c.PodMaxBackoffSeconds, c.PodInitialBackoffSeconds))
	}
	le := c.LeaderElection
	if le.ResourceLock != "" && le.ResourceLock != "leases" {
		errs = append(errs, fmt.Errorf("leaderElection.resourceLock %q: only leases is supported", le.ResourceLock))
	}
	if le.LeaseDuration.Duration <= le.RenewDeadline.Duration {
		errs = append(errs, fmt.Errorf("leaderElection.leaseDuration %v must be greater than renewDeadline %v", le.LeaseDuration.Duration, le.RenewDeadline.Duration))
	}
	if len(c.Profiles) != 1 {
		errs = append(errs, fmt.Errorf("%d profiles: exactly one is supported", len(c.Profiles)))
	}
	for i, p := range c.Profiles {
		if p.PercentageOfNodesToScore != nil && (*p.PercentageOfNodesToScore < 0 || *p.PercentageOfNodesToScore > 100) {
			errs = append(errs, fmt.Errorf("profiles[%d].percentageOfNodesToScore %d is not in [0, 100]", i, *p.PercentageOfNodesToScore))
		}
		seen := map[string]bool{}
		for _, pc := range p.PluginConfig {
			if seen[pc.Name] {
				errs = append(errs, fmt.Errorf("profiles[%d].pluginConfig: %s given twice", i, pc.Name))
			}
			seen[pc.Name] = true
		}
		if p.Plugins != nil {
			for _, set := range []PluginSet{p.Plugins.MultiPoint, p.Plugins.Filter, p.Plugins.Score} {
				for _, e := range set.Enabled {
					if e.Weight < 0 || e.Weight > 100 {
						errs = append(errs, fmt.Errorf("profiles[%d]: plugin %s: weight %d is not in [0, 100]", i, e.Name, e.Weight))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Load reads, defaults and validates a configuration file. Unknown fields
// are errors.
func Load(path string) (*Configuration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scheduler config: %w", err)
	}
	return Parse(data)
}

// Parse decodes, defaults and validates a configuration.
func Parse(data []byte) (*Configuration, error) {
	var c Configuration
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("parse scheduler config: %w", err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("invalid scheduler config: %w", err)
	}
	return &c, nil
}

// MergePluginSet merges custom into defaults as upstream's mergePluginSet.
func MergePluginSet(defaults []Plugin, custom PluginSet) []Plugin {
	disabled := map[string]bool{}
	for _, p := range custom.Disabled {
		disabled[p.Name] = true
	}
	customIndex := map[string]int{}
	for i, p := range custom.Enabled {
		customIndex[p.Name] = i
	}
	replaced := map[int]bool{}
	var out []Plugin
	if !disabled["*"] {
		for _, d := range defaults {
			if disabled[d.Name] {
				continue
			}
			if i, ok := customIndex[d.Name]; ok {
				d = custom.Enabled[i]
				replaced[i] = true
			}
			out = append(out, d)
		}
	}
	for i, p := range custom.Enabled {
		if !replaced[i] {
			out = append(out, p)
		}
	}
	return out
}
