package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a subset of upstream's scheduler metrics.
type metrics struct {
	attempts *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bindings *prometheus.HistogramVec
	// preemptionVictims is upstream's scheduler_preemption_victims.
	preemptionVictims prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, pending func() (active, backoff, unschedulable int)) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "scheduler", Name: "schedule_attempts_total",
			Help: "Number of attempts to schedule pods, by the result.",
		}, []string{"result", "profile"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "scheduler", Name: "scheduling_attempt_duration_seconds",
			Help:    "Scheduling attempt latency in seconds (scheduling algorithm + assume).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"result", "profile"}),
		bindings: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "scheduler", Name: "binding_duration_seconds",
			Help:    "Latency of writing pods/binding, in seconds.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"result"}),
		preemptionVictims: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "scheduler", Name: "preemption_victims",
			Help:    "Number of selected preemption victims.",
			Buckets: prometheus.LinearBuckets(5, 5, 10),
		}),
	}
	gauge := func(queue string, pick func(a, b, u int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Subsystem: "scheduler", Name: "pending_pods", Help: "Number of pending pods, by the queue type.",
			ConstLabels: prometheus.Labels{"queue": queue},
		}, func() float64 { a, b, u := pending(); return float64(pick(a, b, u)) })
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.attempts, m.duration, m.bindings, m.preemptionVictims,
		gauge("active", func(a, _, _ int) int { return a }),
		gauge("backoff", func(_, b, _ int) int { return b }),
		gauge("unschedulable", func(_, _, u int) int { return u }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
