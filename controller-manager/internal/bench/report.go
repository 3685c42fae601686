package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Report is one run.
type Report struct {
	Date                 time.Time
	Quick                bool
	Machine              benchkit.Machine
	Config               Config
	APIServerBin         string
	ControllerManagerBin string
	Scale                *ScaleResult
	Rollout              *RolloutResult
	Slices               *SlicesResult
	Problems             []string
}

// Targets (issue 5).
const (
	targetScale       = 10 * time.Second
	targetRollout     = 30 * time.Second
	targetAvailable   = 0.75
	targetSliceChange = 5 * time.Second
)

func verdict(ok, quick bool) string {
	v := "FAIL"
	if ok {
		v = "PASS"
	}
	if quick {
		v += " (quick)"
	}
	return v
}

// Markdown renders the kube-controller-manager section.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# kube-controller-manager benchmark\n\n")
	b.WriteString("Reproduce with `make bench` (runs `go run ./controller-manager/cmd/controller-manager-bench -out docs/benchmarks.md`;\n" +
		"a few minutes). A smoke run at a tenth of the sizes: `go run ./controller-manager/cmd/controller-manager-bench -quick -out /tmp/bench.md`.\n\n")
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- Date: %s\n", r.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- kube-apiserver: %s (embedded etcd, a fresh one per phase); kube-controller-manager: %s\n", r.APIServerBin, r.ControllerManagerBin)
	if r.Quick {
		b.WriteString("- **Quick run**: a tenth of the sizes; the targets are for the full sizes.\n")
	}
	b.WriteString("\nNo kubelets: the benchmark plays their part, marking pods running and ready through `pods/status`\n" +
		"(16 workers following a pod watch). Everything shares this machine's cores.\n\n")
	b.WriteString("| check | figure | baseline (same run) | target | result |\n| --- | ---: | ---: | ---: | --- |\n")
	if s := r.Scale; s != nil {
		fmt.Fprintf(&b, "| Deployment 0 → %s replicas: all pods created | %s | %s (the benchmark's own creates, c=64) | ≤ %s | %s |\n",
			benchkit.Num(int64(s.Replicas)), benchkit.FormatDuration(s.Elapsed), benchkit.FormatDuration(s.Baseline),
			benchkit.FormatTarget(targetScale), verdict(s.Elapsed <= targetScale && s.MaxPods == s.Replicas, r.Quick))
		fmt.Fprintf(&b, "| … most pods seen at once (no over-creation) | %s | | = %s | %s |\n",
			benchkit.Num(int64(s.MaxPods)), benchkit.Num(int64(s.Replicas)), verdict(s.MaxPods == s.Replicas, r.Quick))
	}
	if ro := r.Rollout; ro != nil {
		minOK := int(float64(ro.Replicas) * targetAvailable)
		fmt.Fprintf(&b, "| rolling update of %s replicas (25%% surge, 25%% unavailable) | %s | | ≤ %s | %s |\n",
			benchkit.Num(int64(ro.Replicas)), benchkit.FormatDuration(ro.Elapsed), benchkit.FormatTarget(targetRollout), verdict(ro.Elapsed <= targetRollout, r.Quick))
		fmt.Fprintf(&b, "| … fewest available (status.availableReplicas) | %s | | ≥ %s | %s |\n",
			benchkit.Num(int64(ro.MinAvailable)), benchkit.Num(int64(minOK)), verdict(int(ro.MinAvailable) >= minOK, r.Quick))
		fmt.Fprintf(&b, "| … fewest ready pods (counted by the benchmark) | %s | | ≥ %s | %s |\n",
			benchkit.Num(int64(ro.MinReady)), benchkit.Num(int64(minOK)), verdict(ro.MinReady >= minOK, r.Quick))
	}
	if s := r.Slices; s != nil {
		fmt.Fprintf(&b, "| %s pods behind %s Services turned not ready: EndpointSlices converged after the last change | %s | %s to write the %s changes | ≤ %s | %s |\n",
			benchkit.Num(int64(s.Pods)), benchkit.Num(int64(s.Services)), benchkit.FormatDuration(s.AfterChange),
			benchkit.FormatDuration(s.Change), benchkit.Num(int64(s.Pods)), benchkit.FormatTarget(targetSliceChange), verdict(s.AfterChange <= targetSliceChange, r.Quick))
	}
	b.WriteString("\n")
	if s := r.Scale; s != nil {
		fmt.Fprintf(&b, "- scale: CPU during the scale-up: apiserver %s, controller-manager %s.\n", benchkit.FormatDuration(s.APICPU), benchkit.FormatDuration(s.KCMCPU))
	}
	if ro := r.Rollout; ro != nil {
		fmt.Fprintf(&b, "- rollout: most pods at once %s; CPU during the update: apiserver %s, controller-manager %s.\n",
			benchkit.Num(int64(ro.MaxPods)), benchkit.FormatDuration(ro.APICPU), benchkit.FormatDuration(ro.KCMCPU))
	}
	if s := r.Slices; s != nil {
		fmt.Fprintf(&b, "- slices: %s EndpointSlices; from the first readiness write to converged: %s.\n", benchkit.Num(int64(s.Slices)), benchkit.FormatDuration(s.Total))
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nProblems:\n\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return b.String()
}
