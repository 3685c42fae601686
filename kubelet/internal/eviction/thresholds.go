package eviction

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Signal is an eviction signal, as upstream's kubelet names them.
type Signal string

// The signals this kubelet observes.
const (
	SignalMemoryAvailable   Signal = "memory.available"
	SignalNodeFsAvailable   Signal = "nodefs.available"
	SignalNodeFsInodesFree  Signal = "nodefs.inodesFree"
	SignalImageFsAvailable  Signal = "imagefs.available"
	SignalImageFsInodesFree Signal = "imagefs.inodesFree"
	SignalPIDAvailable      Signal = "pid.available"
)

var knownSignals = map[Signal]bool{
	SignalMemoryAvailable: true, SignalNodeFsAvailable: true, SignalNodeFsInodesFree: true,
	SignalImageFsAvailable: true, SignalImageFsInodesFree: true, SignalPIDAvailable: true,
}

// DefaultEvictionHard is upstream's default of --eviction-hard (Linux).
const DefaultEvictionHard = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%"

// Value is a threshold's amount: a quantity, or a percentage of the
// signal's capacity.
type Value struct {
	Quantity   *resource.Quantity
	Percentage float64 // 0..1, when Quantity is nil
}

// amount is the value against capacity.
func (v Value) amount(capacity int64) int64 {
	if v.Quantity != nil {
		return v.Quantity.Value()
	}
	return int64(float64(capacity) * v.Percentage)
}

func (v Value) String() string {
	if v.Quantity != nil {
		return v.Quantity.String()
	}
	return strconv.FormatFloat(v.Percentage*100, 'f', -1, 64) + "%"
}

// Threshold is a hard eviction threshold: the signal's available amount
// below Value starts evictions; once met, the threshold holds until the
// signal is at Value + MinReclaim again.
type Threshold struct {
	Signal     Signal
	Value      Value
	MinReclaim *Value
}

// ParseThresholds parses --eviction-hard ("signal<value,...") and
// --eviction-minimum-reclaim ("signal=value,...") as upstream's kubelet:
// values are quantities or percentages, "<" is the only operator, a
// threshold of 0 or 0% is none, and a minimum reclaim needs a threshold of
// its signal. The thresholds are sorted by signal.
func ParseThresholds(hard, minReclaim string) ([]Threshold, error) {
	byName := map[Signal]*Threshold{}
	for _, stmt := range splitList(hard) {
		name, val, ok := strings.Cut(stmt, "<")
		if !ok {
			return nil, fmt.Errorf("--eviction-hard %q: want signal<value (\"<\" is the only operator)", stmt)
		}
		s := Signal(strings.TrimSpace(name))
		if !knownSignals[s] {
			return nil, fmt.Errorf("--eviction-hard %q: unsupported eviction signal %q", stmt, s)
		}
		if _, dup := byName[s]; dup {
			return nil, fmt.Errorf("--eviction-hard: signal %s given twice", s)
		}
		v, err := parseValue(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("--eviction-hard %q: %w", stmt, err)
		}
		if v.Quantity == nil && v.Percentage == 0 || v.Quantity != nil && v.Quantity.IsZero() {
			// Upstream's way to turn a default threshold off.
			byName[s] = nil
			continue
		}
		byName[s] = &Threshold{Signal: s, Value: v}
	}
	for _, stmt := range splitList(minReclaim) {
		name, val, ok := strings.Cut(stmt, "=")
		if !ok {
			return nil, fmt.Errorf("--eviction-minimum-reclaim %q: want signal=value", stmt)
		}
		s := Signal(strings.TrimSpace(name))
		if !knownSignals[s] {
			return nil, fmt.Errorf("--eviction-minimum-reclaim %q: unsupported eviction signal %q", stmt, s)
		}
		t := byName[s]
		if t == nil {
			return nil, fmt.Errorf("--eviction-minimum-reclaim %q: no eviction threshold for %s", stmt, s)
		}
		v, err := parseValue(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("--eviction-minimum-reclaim %q: %w", stmt, err)
		}
		t.MinReclaim = &v
	}
	var out []Threshold
	for _, t := range byName {
		if t != nil {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Signal < out[j].Signal })
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseValue parses "10%" or a quantity ("100Mi", "5000" for inodes).
func parseValue(s string) (Value, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return Value{}, fmt.Errorf("invalid percentage %q", s)
		}
		if f < 0 || f > 100 {
			return Value{}, fmt.Errorf("percentage %q must be within 0%% and 100%%", s)
		}
		return Value{Percentage: f / 100}, nil
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return Value{}, fmt.Errorf("invalid quantity %q: %w", s, err)
	}
	if q.Sign() < 0 {
		return Value{}, fmt.Errorf("quantity %q must not be negative", s)
	}
	return Value{Quantity: &q}, nil
}
