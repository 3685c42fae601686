// Package metrics holds the apiserver's Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics of one apiserver.
type Metrics struct {
	Registry *prometheus.Registry
	// Requests counts requests by verb, resource, transport and code.
	Requests *prometheus.CounterVec
	// Latency observes request latency by verb and resource.
	Latency *prometheus.HistogramVec
	// Etcd observes etcd latency by operation.
	Etcd *prometheus.HistogramVec
	// Watchers is the number of open watches by resource.
	Watchers *prometheus.GaugeVec
}

// New registers the metrics in a new registry (with Go and process
// collectors).
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Requests by verb, resource, transport and response code.",
		}, []string{"verb", "resource", "transport", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Request latency by verb and resource (watches: time to establish).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"verb", "resource"}),
		Etcd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcd_request_duration_seconds",
			Help:    "etcd request latency by operation.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"operation"}),
		Watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_registered_watchers",
			Help: "Open watches by resource.",
		}, []string{"resource"}),
	}
	m.Registry.MustRegister(m.Requests, m.Latency, m.Etcd, m.Watchers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
