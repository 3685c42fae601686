package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

// kubeletGet GETs path from the kubelet API with the admin's client
// certificate (the cluster CA's, as the apiserver's is); the kubelet's
// serving certificate is self-signed, as upstream's is by default.
func (k *testKubelet) kubeletGet(t *testing.T, path string) (int, []byte, time.Duration) {
	t.Helper()
	kc, err := kubeconfig.Load(k.env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := kc.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc.RootCAs, tc.InsecureSkipVerify = nil, true
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	start := time.Now()
	resp, err := c.Get("https://" + k.server.APIAddress + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, time.Since(start)
}

func podStatsOf(s *stats.Summary, name string) *stats.PodStats {
	for i := range s.Pods {
		if s.Pods[i].PodRef.Namespace == "default" && s.Pods[i].PodRef.Name == name {
			return &s.Pods[i]
		}
	}
	return nil
}

func nanoCores(p *stats.PodStats) (uint64, bool) {
	if p == nil || len(p.Containers) != 1 || p.Containers[0].CPU == nil || p.Containers[0].CPU.UsageNanoCores == nil {
		return 0, false
	}
	return *p.Containers[0].CPU.UsageNanoCores, true
}

// topMillicores finds row name's CPU column (e.g. "987m") in kubectl top
// output and returns it in millicores.
func topMillicores(out, name string, col int) (int, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > col && f[0] == name {
			v, err := strconv.Atoi(strings.TrimSuffix(f[col], "m"))
			return v, err == nil && strings.HasSuffix(f[col], "m")
		}
	}
	return 0, false
}

// TestResourceStats runs a pod burning CPU beside an idle one on real
// containerd and checks the kubelet's /stats/summary (the burner's CPU
// rate far above the idler's, memory working sets, the pods' network
// counters, node totals) and /metrics/resource, then the real kubectl top
// pods and top nodes through the apiserver's metrics.k8s.io.
func TestResourceStats(t *testing.T) {
	k := startTestKubelet(t, "stats-it")
	ctx := context.Background()
	burner := k.busyboxPod("burner", "while :; do :; done", corev1.RestartPolicyAlways)
	burner.Labels = map[string]string{"app": "burner"}
	idler := k.busyboxPod("idler", "exec sleep 3600", corev1.RestartPolicyAlways)
	for _, p := range []*corev1.Pod{burner, idler} {
		if _, err := k.pods.Create(ctx, "default", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"burner", "idler"} {
		k.waitPod(t, name, "Running", 60*time.Second, func(p *corev1.Pod) error {
			_, err := runningContainer(p)
			return err
		})
	}

	var sum stats.Summary
	waitFor(t, "the burner's CPU rate in /stats/summary", 60*time.Second, func() (bool, error) {
		code, b, _ := k.kubeletGet(t, "/stats/summary")
		if code != http.StatusOK {
			return false, fmt.Errorf("HTTP %d: %s", code, b)
		}
		sum = stats.Summary{}
		if err := json.Unmarshal(b, &sum); err != nil {
			return false, err
		}
		burn, ok1 := nanoCores(podStatsOf(&sum, "burner"))
		idle, ok2 := nanoCores(podStatsOf(&sum, "idler"))
		if !ok1 || !ok2 {
			return false, fmt.Errorf("no CPU rates yet: %s", b)
		}
		// A busy loop takes a good part of a core even on a shared,
		// loaded 2-core machine; sleep takes next to nothing.
		return burn >= 100e6 && burn > 10*idle+50e6, fmt.Errorf("burner %d nanocores, idler %d", burn, idle)
	})
	if sum.Node.NodeName != k.nodeName || sum.Node.CPU == nil || sum.Node.CPU.UsageNanoCores == nil || *sum.Node.CPU.UsageNanoCores == 0 ||
		sum.Node.Memory == nil || sum.Node.Memory.WorkingSetBytes == nil || *sum.Node.Memory.WorkingSetBytes == 0 {
		t.Errorf("node stats: %+v", sum.Node)
	}
	if sum.Node.Network == nil || len(sum.Node.Network.Interfaces) == 0 {
		t.Errorf("node network: %+v", sum.Node.Network)
	}
	for _, name := range []string{"burner", "idler"} {
		p := podStatsOf(&sum, name)
		c := p.Containers[0]
		if c.Name != "c" || c.Memory == nil || c.Memory.WorkingSetBytes == nil || *c.Memory.WorkingSetBytes == 0 || c.CPU.UsageCoreNanoSeconds == nil {
			t.Errorf("%s container stats: %+v", name, c)
		}
		if p.Memory == nil || p.Memory.WorkingSetBytes == nil || *p.Memory.WorkingSetBytes < *c.Memory.WorkingSetBytes {
			t.Errorf("%s pod memory %+v below its container's", name, p.Memory)
		}
		if p.CPU == nil || p.CPU.UsageCoreNanoSeconds == nil || *p.CPU.UsageCoreNanoSeconds < *c.CPU.UsageCoreNanoSeconds {
			t.Errorf("%s pod CPU %+v below its container's", name, p.CPU)
		}
		if p.Network == nil || p.Network.Name != "eth0" || p.Network.RxBytes == nil || p.Network.TxBytes == nil {
			t.Errorf("%s pod network (want eth0's counters): %+v", name, p.Network)
		}
		if p.PodRef.UID == "" || p.StartTime.IsZero() || c.StartTime.IsZero() {
			t.Errorf("%s pod ref %+v, start %v, container start %v", name, p.PodRef, p.StartTime, c.StartTime)
		}
	}

	// The summary answers from the samples in memory.
	var slowest time.Duration
	for range 10 {
		code, _, d := k.kubeletGet(t, "/stats/summary?only_cpu_and_memory=true")
		if code != http.StatusOK {
			t.Fatalf("summary: HTTP %d", code)
		}
		slowest = max(slowest, d)
	}
	t.Logf("slowest of 10 summaries (new TLS connection each): %v", slowest)

	code, b, _ := k.kubeletGet(t, "/metrics/resource")
	if code != http.StatusOK || !strings.Contains(string(b), `container_cpu_usage_seconds_total{container="c",namespace="default",pod="burner"} `) ||
		!strings.Contains(string(b), `pod_memory_working_set_bytes{namespace="default",pod="idler"} `) || !strings.Contains(string(b), "node_cpu_usage_seconds_total ") {
		t.Errorf("/metrics/resource: HTTP %d\n%s", code, b)
	}

	kubectlBin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not in PATH: kubectl top not run")
	}
	kc := kubectlRunner{bin: kubectlBin, kubeconfig: k.env.Kubeconfig, home: t.TempDir()}
	var out string
	waitFor(t, "kubectl top pods to show the burner", 60*time.Second, func() (bool, error) {
		res := kc.run(t, nil, "top", "pods")
		out = res.stdout
		if res.code != 0 {
			return false, fmt.Errorf("exit %d: %s", res.code, res.stderr)
		}
		m, ok := topMillicores(out, "burner", 1)
		return ok && m >= 100, fmt.Errorf("top pods:\n%s", out)
	})
	if !strings.Contains(out, "CPU(cores)") || !strings.Contains(out, "idler") {
		t.Errorf("kubectl top pods:\n%s", out)
	}
	t.Logf("kubectl top pods:\n%s", out)

	out = kc.ok(t, nil, "top", "pods", "-A", "--containers")
	if m, ok := topMillicores(out, "default", 3); !strings.Contains(out, "burner") || !ok || m < 0 {
		t.Errorf("kubectl top pods -A --containers:\n%s", out)
	}
	out = kc.ok(t, nil, "top", "pod", "-l", "app=burner")
	if _, ok := topMillicores(out, "burner", 1); !ok || strings.Contains(out, "idler") {
		t.Errorf("kubectl top pod -l app=burner:\n%s", out)
	}
	if res := kc.run(t, nil, "top", "pod", "nosuch"); res.code == 0 || !strings.Contains(res.stderr, `podmetrics.metrics.k8s.io "default/nosuch" not found`) {
		t.Errorf("kubectl top pod nosuch: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	out = kc.ok(t, nil, "top", "nodes")
	if m, ok := topMillicores(out, k.nodeName, 1); !ok || m < 100 || !strings.Contains(out, "MEMORY(bytes)") {
		t.Errorf("kubectl top nodes (want %s using at least the burner's 100m):\n%s", k.nodeName, out)
	}
	t.Logf("kubectl top nodes:\n%s", out)
}
