package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func pct(cores float64) string { return fmt.Sprintf("%.1f%%", 100*cores) }

// markdown is the kubelet section of docs/benchmarks.md.
func (r *report) markdown(cfg *Config) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# kubelet benchmark\n\n")
	w("Reproduce with `go run ./kubelet/cmd/kubelet-bench -out docs/benchmarks.md` as root (it needs containerd, runc,\n")
	w("the CNI plugins and busybox, as the kubelet's integration tests do; a few minutes). A smoke run:\n")
	w("`go run ./kubelet/cmd/kubelet-bench -quick -out /tmp/bench.md`. `-help` lists the flags.\n\n")
	w("- Machine: %s\n", r.machine)
	w("- Date: %s\n", r.date.Format("2006-01-02 15:04 UTC"))
	w("- kubelet: %s; kube-apiserver: %s; containerd %s (private instance, overlayfs, runc)\n", r.kubelet, r.apiserver, r.containerd)
	if r.quick {
		w("- Quick run (-quick): fewer pods and short windows; the targets are for the full run\n")
	}
	w("\n## Targets\n\n")
	w("| check | figure | target | result |\n| --- | ---: | ---: | --- |\n")
	if r.window > 0 {
		w("| kubelet CPU with %d pods probed every second (HTTP readiness), over %v | %s of a core | < %s | %s |\n",
			r.pods, r.window, pct(r.podsCPU), pct(cpuTarget), passFail(r.podsCPU < cpuTarget && r.stillReady == r.pods))
	}
	if len(r.podStart) > 0 {
		p99 := benchkit.Percentile(r.podStart, 99)
		w("| pod start, %d single-container pods bound to the node, created one after the other: create → Running p99 | %s | ≤ %s | %s |\n",
			len(r.podStart), benchkit.FormatDuration(p99), benchkit.FormatTarget(podStartP99Target), passFail(p99 <= podStartP99Target))
	}
	if len(r.podStart) > 0 && len(r.rawStart) > 0 {
		ratio := float64(benchkit.Percentile(r.podStart, 50)) / float64(benchkit.Percentile(r.rawStart, 50))
		w("| pod start p50 over containerd's own create + start p50 of the same containers | %.2f× | ≤ %.1f× | %s |\n",
			ratio, podStartP50VsRawMax, passFail(ratio <= podStartP50VsRawMax))
	}
	if len(r.summaries) > 0 {
		p99 := benchkit.Percentile(r.summaries, 99)
		w("| `/stats/summary` with %d pods: p99 latency | %s | ≤ %s | %s |\n", r.summaryPods, benchkit.FormatDuration(p99), benchkit.FormatTarget(summaryTarget), passFail(p99 <= summaryTarget))
	}
	w("\n## Setup\n\n")
	w("One node: the kubelet binary against the kube-apiserver binary (embedded etcd) and its own containerd,\n")
	w("pods networked by the CNI bridge plugin on %s. Each of the %d pods runs busybox `httpd` on port 8080\n", cfg.podCIDR, r.pods)
	w("with a readiness probe `httpGet /` every second (timeout 1 s), so the kubelet makes %d HTTP probes a second.\n", r.pods)
	w("CPU is the kubelet process's user + system time (`/proc/<pid>/stat`) over the window, divided by the window.\n\n")
	w("| measure | figure |\n| --- | ---: |\n")
	if r.idleWindow > 0 {
		w("| kubelet CPU with no pods (node registered, lease and status loops), over %v | %s of a core |\n", r.idleWindow, pct(r.idleCPU))
	}
	if s := r.podStart; len(s) > 0 {
		w("| pod start through the kubelet: pod create call → watch shows it Running, %d pods one after the other: p50 / p99 / max | %s / %s / %s |\n",
			len(s), benchkit.FormatDuration(benchkit.Percentile(s, 50)), benchkit.FormatDuration(benchkit.Percentile(s, 99)), benchkit.FormatDuration(s[len(s)-1]))
	}
	if s := r.rawStart; len(s) > 0 {
		w("| containerd alone (Go client, no kubelet, no CNI): create + start the pause container and busybox in its namespaces, %d times: p50 / p99 / max | %s / %s / %s |\n",
			len(s), benchkit.FormatDuration(benchkit.Percentile(s, 50)), benchkit.FormatDuration(benchkit.Percentile(s, 99)), benchkit.FormatDuration(s[len(s)-1]))
	}
	if r.readyIn > 0 {
		w("| %d pods created (8 clients) until all Ready | %s |\n", r.pods, benchkit.FormatDuration(r.readyIn))
	}
	if r.window > 0 {
		w("| kubelet CPU with the pods, after %v of settling, over %v | %s of a core |\n", cfg.settle, r.window, pct(r.podsCPU))
		w("| kubelet CPU added by the pods (with pods − idle) | %s of a core |\n", pct(r.podsCPU-r.idleCPU))
		w("| containerd CPU over the same window (not the kubelet's; shims not counted) | %s of a core |\n", pct(r.containerdC))
		w("| pods still Ready after the window | %d of %d |\n", r.stillReady, r.pods)
		if r.podsRSS > 0 {
			w("| kubelet RSS with the %d pods running, after the window | %s |\n", r.pods, benchkit.FormatBytes(r.podsRSS))
		}
	}
	if len(r.summaries) > 0 {
		s := r.summaries
		w("| `/stats/summary` (full, %s of JSON), %d GETs over one warm HTTP/2 connection: p50 / p99 / max | %s / %s / %s |\n",
			benchkit.FormatBytes(int64(r.summarySize)), len(s), benchkit.FormatDuration(benchkit.Percentile(s, 50)),
			benchkit.FormatDuration(benchkit.Percentile(s, 99)), benchkit.FormatDuration(s[len(s)-1]))
	}
	if len(r.metricsAPI) > 0 {
		m := r.metricsAPI
		w("| `GET /apis/metrics.k8s.io/v1beta1/namespaces/default/pods` through the apiserver (%d PodMetrics; what `kubectl top pods` asks), %d GETs: p50 / p99 | %s / %s |\n",
			r.metricsPods, len(m), benchkit.FormatDuration(benchkit.Percentile(m, 50)), benchkit.FormatDuration(benchkit.Percentile(m, 99)))
	}
	w("\nThe summary answers from the kubelet's last two samples of the containers' cgroups (taken every %v,\n", 10*time.Second)
	w("disk usage every minute), so its latency does not grow with what sampling costs.\n")
	if len(r.problems) > 0 {
		w("\n## Problems\n\n")
		for _, p := range r.problems {
			w("- %s\n", p)
		}
	}
	return b.String()
}
