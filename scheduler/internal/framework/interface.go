// Package framework defines the scheduler's plugin interfaces, the per-node
// state plugins read (NodeInfo) and the Framework that runs a profile's
// plugins, as upstream kube-scheduler's scheduling framework does.
package framework

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// Score bounds: every plugin's normalised score is within [MinNodeScore,
// MaxNodeScore].
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
	// MaxTotalScore bounds the weighted sum of all plugins.
	MaxTotalScore int64 = 1<<63 - 1
)

// Code is a plugin's verdict.
type Code int

// Codes, as upstream's.
const (
	// Success: the node fits (or the plugin has nothing to say).
	Success Code = iota
	// Error: an internal error; the pod is retried with back-off.
	Error
	// Unschedulable: the node does not fit now, but preemption might help.
	Unschedulable
	// UnschedulableAndUnresolvable: the node does not fit and preemption
	// would not change that.
	UnschedulableAndUnresolvable
	// Skip: from PreScore, the plugin's Score is not needed for this pod.
	Skip
)

func (c Code) String() string {
	switch c {
	case Success:
		return "Success"
	case Error:
		return "Error"
	case Unschedulable:
		return "Unschedulable"
	case UnschedulableAndUnresolvable:
		return "UnschedulableAndUnresolvable"
	case Skip:
		return "Skip"
	}
	return "Unknown"
}

// Status is the result of a plugin call. A nil *Status is Success.
type Status struct {
	code    Code
	reasons []string
	err     error
	plugin  string
}

// NewStatus returns a status with code and reasons (the messages counted in
// "0/N nodes are available: ...").
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{code: code, reasons: reasons}
}

// NewPluginStatus returns a status already naming its plugin, which
// WithPlugin then leaves untouched: a plugin may return it from every
// call (it must not be changed) instead of allocating one per node.
func NewPluginStatus(plugin string, code Code, reasons ...string) *Status {
	return &Status{code: code, reasons: reasons, plugin: plugin}
}

// AsStatus wraps an error in an Error status.
func AsStatus(err error) *Status {
	if err == nil {
		return nil
	}
	return &Status{code: Error, reasons: []string{err.Error()}, err: err}
}

// Code returns the status code; Success for nil.
func (s *Status) Code() Code {
	if s == nil {
		return Success
	}
	return s.code
}

// IsSuccess says whether s is nil or Success.
func (s *Status) IsSuccess() bool { return s.Code() == Success }

// IsSkip says whether s is Skip.
func (s *Status) IsSkip() bool { return s.Code() == Skip }

// IsRejected says whether s says the node does not fit.
func (s *Status) IsRejected() bool {
	c := s.Code()
	return c == Unschedulable || c == UnschedulableAndUnresolvable
}

// Reasons returns the messages.
func (s *Status) Reasons() []string {
	if s == nil {
		return nil
	}
	return s.reasons
}

// Message joins the reasons.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.reasons, ", ")
}

// Err returns the status as an error (nil for success).
func (s *Status) Err() error {
	if s.IsSuccess() {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	return &statusError{s}
}

// Plugin is the plugin that produced the status, set by the Framework.
func (s *Status) Plugin() string {
	if s == nil {
		return ""
	}
	return s.plugin
}

// WithPlugin records the plugin that produced s and returns s.
func (s *Status) WithPlugin(name string) *Status {
	// A status already naming the plugin is not written: plugins may
	// return one shared, immutable status for a common rejection.
	if s != nil && s.plugin != name {
		s.plugin = name
	}
	return s
}

type statusError struct{ s *Status }

func (e *statusError) Error() string { return e.s.code.String() + ": " + e.s.Message() }

// NodeScore is one node's score.
type NodeScore struct {
	Name  string
	Score int64
}

// NodeScoreList is the scores of the feasible nodes, in one order.
type NodeScoreList []NodeScore

// Plugin is the parent of every plugin interface.
type Plugin interface {
	Name() string
}

// PreFilterPlugin computes, once per scheduling attempt, state its Filter
// reads (the pod's requests, its ports).
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *corev1.Pod) *Status
}

// FilterPlugin says whether pod fits node. It is called concurrently for
// different nodes and must not change node or pod.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) *Status
}

// PreScorePlugin prepares Score, once per scheduling attempt; Skip means
// its Score is not called for this pod.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *corev1.Pod, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks a feasible node. It is called concurrently for
// different nodes. Without ScoreExtensions its scores must already be
// within [MinNodeScore, MaxNodeScore].
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *corev1.Pod, node *NodeInfo) (int64, *Status)
	// ScoreExtensions returns the normaliser, or nil.
	ScoreExtensions() ScoreExtensions
}

// ScoreExtensions rescales a plugin's raw scores into [MinNodeScore,
// MaxNodeScore] once every node has been scored.
type ScoreExtensions interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *corev1.Pod, scores NodeScoreList) *Status
}

// StateData is what plugins keep in a CycleState.
type StateData any

// StateKey names a StateData; plugins use their own name.
type StateKey string

// CycleState is the scratch space of one scheduling attempt. Plugins write
// it in PreFilter and PreScore (called serially) and read it from Filter
// and Score (called in parallel).
//
// Reads far outnumber writes (every plugin reads on every node), and a
// cycle holds a handful of keys, so the data is a copy-on-write slice that
// Read scans without a lock or a hash.
type CycleState struct {
	data atomic.Pointer[[]stateEntry]
	mu   sync.Mutex // serialises writers
	// skipScore holds the plugins whose PreScore returned Skip.
	skipScore map[string]bool
	// skipFilter says, by the index of the framework's filters, which
	// ones are skipped because their PreFilter returned Skip.
	skipFilter atomic.Pointer[[]bool]
}

type stateEntry struct {
	key StateKey
	val StateData
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState {
	return &CycleState{skipScore: map[string]bool{}}
}

// Read returns the data stored under key.
func (c *CycleState) Read(key StateKey) (StateData, bool) {
	if p := c.data.Load(); p != nil {
		for _, e := range *p {
			if e.key == key {
				return e.val, true
			}
		}
	}
	return nil, false
}

// Write stores data under key.
func (c *CycleState) Write(key StateKey, d StateData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var entries []stateEntry
	if p := c.data.Load(); p != nil {
		entries = make([]stateEntry, len(*p), len(*p)+1)
		copy(entries, *p)
	}
	for i := range entries {
		if entries[i].key == key {
			entries[i].val = d
			c.data.Store(&entries)
			return
		}
	}
	entries = append(entries, stateEntry{key: key, val: d})
	c.data.Store(&entries)
}

// DefaultNormalizeScore scales scores so the highest becomes maxPriority
// (reverse: the highest becomes 0 and 0 becomes maxPriority), as upstream's
// helper does.
func DefaultNormalizeScore(maxPriority int64, reverse bool, scores NodeScoreList) *Status {
	var maxCount int64
	for i := range scores {
		if scores[i].Score > maxCount {
			maxCount = scores[i].Score
		}
	}
	if maxCount == 0 {
		if reverse {
			for i := range scores {
				scores[i].Score = maxPriority
			}
		}
		return nil
	}
	for i := range scores {
		score := maxPriority * scores[i].Score / maxCount
		if reverse {
			score = maxPriority - score
		}
		scores[i].Score = score
	}
	return nil
}

// PluginFactory builds a plugin from its args in the config file (JSON,
// nil when none are given) and the scheduler's handle.
type PluginFactory func(args []byte, h Handle) (Plugin, error)

// WithoutHandle adapts a factory that needs no handle.
func WithoutHandle(f func(args []byte) (Plugin, error)) PluginFactory {
	return func(args []byte, _ Handle) (Plugin, error) { return f(args) }
}
