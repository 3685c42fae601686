package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
)

// StatsProvider is what the kubelet API needs of the resource stats
// (stats.Provider).
type StatsProvider interface {
	Summary(ctx context.Context, onlyCPUAndMemory bool) (*stats.Summary, error)
}

// serveSummary serves /stats/summary: upstream's Summary JSON, CPU and
// memory only with ?only_cpu_and_memory=true (as metrics-server asks).
func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stats == nil {
		http.Error(w, "this kubelet serves no resource stats", http.StatusServiceUnavailable)
		return
	}
	only, _ := strconv.ParseBool(r.URL.Query().Get("only_cpu_and_memory"))
	sum, err := s.cfg.Stats.Summary(r.Context(), only)
	if err != nil {
		s.logger.Warn("stats summary failed", zap.Error(err))
		http.Error(w, "failed to get node info: "+err.Error(), http.StatusInternalServerError)
		return
	}
	b, err := json.Marshal(sum)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// serveResourceMetrics serves /metrics/resource in the Prometheus text
// format, as upstream's kubelet does.
func (s *Server) serveResourceMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stats == nil {
		http.Error(w, "this kubelet serves no resource stats", http.StatusServiceUnavailable)
		return
	}
	sum, err := s.cfg.Stats.Summary(r.Context(), true)
	scrapeErr := err != nil
	if err != nil {
		s.logger.Warn("resource metrics failed", zap.Error(err))
		sum = &stats.Summary{}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = stats.WriteResourceMetrics(w, sum, scrapeErr)
}
