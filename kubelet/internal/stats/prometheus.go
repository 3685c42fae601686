package stats

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteResourceMetrics writes s as upstream's /metrics/resource does, in
// the Prometheus text format: the node's, pods' and containers' CPU time
// and memory working set, the containers' start times, and
// resource_scrape_error (1 when scrapeErr).
func WriteResourceMetrics(w io.Writer, s *Summary, scrapeErr bool) error {
	bw := bufio.NewWriter(w)
	family := func(name, typ, help string) {
		fmt.Fprintf(bw, "# HELP %s [STABLE] %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sampleLine := func(name string, labels [][2]string, v float64, ms int64) {
		bw.WriteString(name)
		if len(labels) > 0 {
			bw.WriteByte('{')
			for i, l := range labels {
				if i > 0 {
					bw.WriteByte(',')
				}
				bw.WriteString(l[0])
				bw.WriteString(`="`)
				bw.WriteString(escapeLabel(l[1]))
				bw.WriteByte('"')
			}
			bw.WriteByte('}')
		}
		bw.WriteByte(' ')
		bw.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		if ms > 0 {
			bw.WriteByte(' ')
			bw.WriteString(strconv.FormatInt(ms, 10))
		}
		bw.WriteByte('\n')
	}
	containerLabels := func(p PodStats, c ContainerStats) [][2]string {
		return [][2]string{{"container", c.Name}, {"namespace", p.PodRef.Namespace}, {"pod", p.PodRef.Name}}
	}
	podLabels := func(p PodStats) [][2]string {
		return [][2]string{{"namespace", p.PodRef.Namespace}, {"pod", p.PodRef.Name}}
	}

	family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the container in core-seconds")
	for _, p := range s.Pods {
		for _, c := range p.Containers {
			if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
				sampleLine("container_cpu_usage_seconds_total", containerLabels(p, c), float64(*c.CPU.UsageCoreNanoSeconds)/1e9, c.CPU.Time.UnixMilli())
			}
		}
	}
	family("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes")
	for _, p := range s.Pods {
		for _, c := range p.Containers {
			if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
				sampleLine("container_memory_working_set_bytes", containerLabels(p, c), float64(*c.Memory.WorkingSetBytes), c.Memory.Time.UnixMilli())
			}
		}
	}
	family("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds")
	for _, p := range s.Pods {
		for _, c := range p.Containers {
			if !c.StartTime.IsZero() {
				sampleLine("container_start_time_seconds", containerLabels(p, c), float64(c.StartTime.UnixNano())/1e9, c.StartTime.UnixMilli())
			}
		}
	}
	family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds")
	if cpu := s.Node.CPU; cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		sampleLine("node_cpu_usage_seconds_total", nil, float64(*cpu.UsageCoreNanoSeconds)/1e9, cpu.Time.UnixMilli())
	}
	family("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes")
	if m := s.Node.Memory; m != nil && m.WorkingSetBytes != nil {
		sampleLine("node_memory_working_set_bytes", nil, float64(*m.WorkingSetBytes), m.Time.UnixMilli())
	}
	family("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds")
	for _, p := range s.Pods {
		if p.CPU != nil && p.CPU.UsageCoreNanoSeconds != nil {
			sampleLine("pod_cpu_usage_seconds_total", podLabels(p), float64(*p.CPU.UsageCoreNanoSeconds)/1e9, p.CPU.Time.UnixMilli())
		}
	}
	family("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes")
	for _, p := range s.Pods {
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			sampleLine("pod_memory_working_set_bytes", podLabels(p), float64(*p.Memory.WorkingSetBytes), p.Memory.Time.UnixMilli())
		}
	}
	family("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise")
	errV := 0.0
	if scrapeErr {
		errV = 1
	}
	sampleLine("resource_scrape_error", nil, errV, 0)
	return bw.Flush()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }
