package bench

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
)

func testReport() *Report {
	cfg := DefaultConfig()
	return &Report{
		Date: time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC), Config: *cfg,
		Machine:  benchkit.Machine{CPUModel: "Test CPU", Cores: 2, MemoryMiB: 4096, Kernel: "6.1.0", GoVersion: "go1.26", TempFS: "ext4"},
		PodBytes: 2048, StoredPodBytes: 2300, APIServerBin: "`_output/bin/kube-apiserver`",
		Creates: []CreateLevel{
			{Concurrency: 1, APIServer: OpStats{Count: 2000, Elapsed: 4 * time.Second, P50: 2 * time.Millisecond, P99: 5 * time.Millisecond, CPUPerOp: time.Millisecond},
				Etcd: OpStats{Count: 2000, Elapsed: 2 * time.Second, P50: time.Millisecond, P99: 3 * time.Millisecond}},
			// 6,000/s against 10,000/s with p99 40 ms: passes.
			{Concurrency: 64, APIServer: OpStats{Count: 60000, Elapsed: 10 * time.Second, P50: 10 * time.Millisecond, P99: 40 * time.Millisecond, CPUPerOp: 300 * time.Microsecond},
				Etcd: OpStats{Count: 100000, Elapsed: 10 * time.Second, P50: 5 * time.Millisecond, P99: 20 * time.Millisecond}},
		},
		// REST at 5,000/s against gRPC's 6,000/s: 83%, passes.
		Rest: &RestResult{Concurrency: 64, Proto: "HTTP/2.0", BodyBytes: 3500,
			Creates: OpStats{Count: 50000, Elapsed: 10 * time.Second, P50: 12 * time.Millisecond, P99: 45 * time.Millisecond, CPUPerOp: 350 * time.Microsecond},
			GRPC:    OpStats{Count: 60000, Elapsed: 10 * time.Second, P50: 10 * time.Millisecond, P99: 40 * time.Millisecond, CPUPerOp: 300 * time.Microsecond},
			Cleared: 62000, ClearTime: 20 * time.Second, ListPods: 10000, Load: OpStats{Count: 10000, Elapsed: 3 * time.Second}, PodBytes: 1024,
			TableRows: 10000, TableBytes: 5 << 20, TableFull: []time.Duration{250 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
			PagedRows: 10000, Pages: 20, PagedBytes: 5 << 20, TablePaged: []time.Duration{350 * time.Millisecond},
			ProtoItems: 10000, ProtoBytes: 10 << 20, Protobuf: []time.Duration{100 * time.Millisecond, 120 * time.Millisecond},
			KubectlPath: "/usr/bin/kubectl", Kubectl: 1500 * time.Millisecond, KubectlLines: 10001},
		Fanout: &FanoutResult{Watchers: 1000, Planned: 10000, Writes: 10000, RequestedHz: 1000, AchievedHz: 998, Expected: 10_000_000, Received: 9_999_000,
			P50: 5 * time.Millisecond, P99: 80 * time.Millisecond, Max: 300 * time.Millisecond, Negative: 12},
		Scale: &ScaleResult{Requested: 100000, Load: OpStats{Count: 100000, Elapsed: time.Minute}, PodBytes: 1024, ListItems: 100000,
			FullList: []time.Duration{1500 * time.Millisecond, 900 * time.Millisecond, 1200 * time.Millisecond},
			RawList:  []time.Duration{400 * time.Millisecond}, RawBytes: 100 << 20,
			LabelList: []time.Duration{3 * time.Millisecond, 4 * time.Millisecond, 2 * time.Millisecond}, LabelItems: 100,
			RSS: 3 << 30, PeakRSS: 3 << 30},
		Problems: []string{"something\nwent wrong"},
	}
}

func TestReportMarkdown(t *testing.T) {
	md := testReport().Markdown()
	for _, want := range []string{
		"# kube-apiserver benchmark", "make bench",
		"Test CPU, 2 cores, 4.00 GiB RAM, Linux 6.1.0, go1.26",
		"2025-01-02 03:04 UTC", "- kube-apiserver: `_output/bin/kube-apiserver`",
		"## 1. Pod creates vs raw etcd puts", "## 2. REST API", "## 3. Watch fan-out", "## 4. Scale: 100,000 pods", "## Notes",
		// c=64 row: rates, ratio and verdict side by side.
		"| 64 | 60,000 | 6,000/s | 10.0 ms | 40.0 ms | 300 µs | 100,000 | 10,000/s | 5.00 ms | 20.0 ms | 60% | ≥ 50%, p99 ≤ 50 ms | PASS |",
		"| 1 | 2,000 | 500/s |",
		"| creates at c=64: apiserver / raw etcd throughput | 60% | ≥ 50% | PASS |",
		"| watch fan-out: events received | 9,999,000 / 10,000,000 | all | FAIL |",
		"| watch fan-out: p99 delay | 80.0 ms | ≤ 100 ms | PASS |",
		"| full list of 100,000 pods (median) | 1.20 s | ≤ 1 s | FAIL |",
		"900.0 ms / 1.20 s",
		"| label-selected list, 100 items (median) | 3.00 ms | ≤ 20 ms | PASS |",
		"| apiserver RSS with 100,000 pods | 3.00 GiB | ≤ 2 GiB | FAIL |",
		"- something went wrong",
		"| REST creates at c=64: REST / gRPC throughput | 83% | ≥ 80% | PASS |",
		"| `kubectl get pods -A` on 10,000 pods: Table, unpaged (median) | 250.0 ms | ≤ 300 ms | PASS |",
		"| `kubectl get pods -A` on 10,000 pods: Table, all pages of 500 (median) | 350.0 ms | ≤ 300 ms | FAIL |",
		"| list of 10,000 pods as protobuf (median) | 100.0 ms | ≤ 150 ms | PASS |",
		"| REST, JSON over HTTP/2.0 | 50,000 | 5,000/s | 12.0 ms | 45.0 ms | 350 µs |",
		"| gRPC, protobuf | 60,000 | 6,000/s |",
		"200.0 ms / 250.0 ms",
		"1.50 s (10,001 lines of output)",
		"62,000 pods of the earlier phases",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "Quick smoke run") {
		t.Error("full run marked as quick")
	}
	// Every table row has the same number of cells as its header.
	var cols int
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(line, "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("row has %d separators, header %d: %s", n, cols, line)
		}
	}

	r := testReport()
	r.Quick, r.Rest, r.Fanout, r.Scale, r.Problems = true, nil, nil, nil, nil
	md = r.Markdown()
	if !strings.Contains(md, "Quick smoke run") {
		t.Error("quick run not marked")
	}
	if strings.Contains(md, "## 2.") || strings.Contains(md, "## 3.") || strings.Contains(md, "## 4.") || strings.Contains(md, "Problems") || strings.Contains(md, "REST") {
		t.Error("report renders phases that did not run")
	}
	if tables := r.Tables(); strings.Contains(tables, "## Notes") || !strings.Contains(tables, "## 1.") {
		t.Errorf("Tables() = %q", tables)
	}
}

func TestApplyQuick(t *testing.T) {
	c := DefaultConfig()
	c.Quick = true
	c.Watchers = 7
	c.ApplyQuick(map[string]bool{"watchers": true})
	if c.Watchers != 7 {
		t.Errorf("explicit -watchers overridden: %d", c.Watchers)
	}
	if c.ScalePods >= DefaultConfig().ScalePods || c.Creates >= DefaultConfig().Creates {
		t.Errorf("quick did not scale down: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	c.Concurrency = nil
	if err := c.Validate(); err == nil {
		t.Error("no error for no concurrency levels")
	}
}

func TestPodName(t *testing.T) {
	for _, pod := range []*corev1.Pod{typicalPod(), smallPod(42)} {
		pod.Name, pod.Namespace = "fan-000042", fanoutNS
		raw, err := client.Encode(pod)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := podName(raw); !ok || got != "fan-000042" {
			t.Errorf("podName = %q, %v", got, ok)
		}
		if _, ok := podName(raw[:len(raw)/3]); ok {
			t.Error("truncated object: name found")
		}
	}
	if _, ok := podName([]byte("{}")); ok {
		t.Error("JSON: name found")
	}
}

func TestPodKey(t *testing.T) {
	pod := smallPod(3)
	pod.Name, pod.Namespace = "list-000003", "rest-list-3"
	raw, err := client.Encode(pod)
	if err != nil {
		t.Fatal(err)
	}
	if ns, name, ok := podKey(raw); !ok || ns != "rest-list-3" || name != "list-000003" {
		t.Errorf("podKey = %q, %q, %v", ns, name, ok)
	}
	if _, _, ok := podKey([]byte("{}")); ok {
		t.Error("JSON: key found")
	}
}

func TestPodSizes(t *testing.T) {
	raw, err := client.Encode(typicalPod())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 1700 || len(raw) > 2400 {
		t.Errorf("typical pod is %d bytes, want about 2 KiB", len(raw))
	}
	if raw, _ := client.Encode(smallPod(1)); len(raw) < 800 || len(raw) > 1300 {
		t.Errorf("small pod is %d bytes, want about 1 KiB", len(raw))
	}
}
