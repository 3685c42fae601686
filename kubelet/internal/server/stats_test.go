package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
)

type fakeStats struct {
	sum     *stats.Summary
	err     error
	gotOnly []bool
}

func (f *fakeStats) Summary(_ context.Context, only bool) (*stats.Summary, error) {
	f.gotOnly = append(f.gotOnly, only)
	return f.sum, f.err
}

func TestStatsRoutes(t *testing.T) {
	at := metav1.NewTime(time.UnixMilli(1700000000000))
	n := uint64(250e6)
	ws := uint64(4 << 20)
	sum := &stats.Summary{
		Node: stats.NodeStats{NodeName: "n1", CPU: &stats.CPUStats{Time: at, UsageNanoCores: &n, UsageCoreNanoSeconds: &n}},
		Pods: []stats.PodStats{{PodRef: stats.PodReference{Name: "p", Namespace: "default", UID: "u"},
			Containers: []stats.ContainerStats{{Name: "c", CPU: &stats.CPUStats{Time: at, UsageCoreNanoSeconds: &n}, Memory: &stats.MemoryStats{Time: at, WorkingSetBytes: &ws}}}}},
	}
	fs := &fakeStats{sum: sum}
	s := New(Config{Stats: fs})

	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	rec := get("/stats/summary")
	var got stats.Summary
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Fatalf("/stats/summary: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if got.Node.NodeName != "n1" || len(got.Pods) != 1 || *got.Pods[0].Containers[0].Memory.WorkingSetBytes != ws {
		t.Errorf("summary = %s", rec.Body)
	}
	get("/stats/summary?only_cpu_and_memory=true")
	if len(fs.gotOnly) != 2 || fs.gotOnly[0] || !fs.gotOnly[1] {
		t.Errorf("only_cpu_and_memory passed as %v, want [false true]", fs.gotOnly)
	}

	rec = get("/metrics/resource")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") ||
		!strings.Contains(rec.Body.String(), `container_memory_working_set_bytes{container="c",namespace="default",pod="p"} 4.194304e+06 1700000000000`) ||
		!strings.Contains(rec.Body.String(), "resource_scrape_error 0") {
		t.Errorf("/metrics/resource: %d %v\n%s", rec.Code, rec.Header(), rec.Body)
	}

	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/stats/summary", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /stats/summary: %d, want 405", rec.Code)
	}

	fs.err = errors.New("containerd is down")
	if rec := get("/stats/summary"); rec.Code != 500 || !strings.Contains(rec.Body.String(), "containerd is down") {
		t.Errorf("failing summary: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/metrics/resource"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "resource_scrape_error 1") {
		t.Errorf("failing metrics: %d %s", rec.Code, rec.Body)
	}

	none := New(Config{})
	rec = httptest.NewRecorder()
	none.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/summary", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("without stats: %d, want 503", rec.Code)
	}
}
