package workqueue

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors shared by named queues. Create one
// set per registry with NewMetrics and pass it in Config.Metrics.
type Metrics struct {
	depth    *prometheus.GaugeVec
	adds     *prometheus.CounterVec
	retries  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates and registers workqueue_depth, workqueue_adds_total,
// workqueue_retries_total and workqueue_work_duration_seconds, each labelled
// by queue name. A collector already registered (by another Metrics on the
// same registry) is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: "workqueue", Name: "depth", Help: "Current depth of the workqueue.",
		}, []string{"name"}),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "workqueue", Name: "adds_total", Help: "Total number of adds handled by the workqueue.",
		}, []string{"name"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "workqueue", Name: "retries_total", Help: "Total number of rate-limited retries handled by the workqueue.",
		}, []string{"name"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "workqueue", Name: "work_duration_seconds", Help: "How long processing an item from the workqueue takes.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 10, 10),
		}, []string{"name"}),
	}
	var err error
	m.depth, err = register(reg, m.depth)
	if err != nil {
		return nil, err
	}
	if m.adds, err = register(reg, m.adds); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// queueMetrics are one queue's children; the zero value records nothing.
type queueMetrics struct {
	depth    prometheus.Gauge
	adds     prometheus.Counter
	retries  prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) forQueue(name string) queueMetrics {
	if m == nil || name == "" {
		return queueMetrics{}
	}
	return queueMetrics{
		depth:    m.depth.WithLabelValues(name),
		adds:     m.adds.WithLabelValues(name),
		retries:  m.retries.WithLabelValues(name),
		duration: m.duration.WithLabelValues(name),
	}
}

func (q queueMetrics) add() {
	if q.adds != nil {
		q.adds.Inc()
		q.depth.Inc()
	}
}

func (q queueMetrics) get() {
	if q.depth != nil {
		q.depth.Dec()
	}
}

func (q queueMetrics) retry() {
	if q.retries != nil {
		q.retries.Inc()
	}
}

func (q queueMetrics) done(d time.Duration) {
	if q.duration != nil {
		q.duration.Observe(d.Seconds())
	}
}
