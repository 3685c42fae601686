package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestUsageNanoCores(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		prev, cur uint64
		dt        time.Duration
		want      uint64
		wantOK    bool
	}{
		{"one core", 0, 10e9, 10 * time.Second, 1e9, true},
		{"half a core", 5e9, 10e9, 10 * time.Second, 5e8, true},
		{"two cores over a second", 1, 2e9 + 1, time.Second, 2e9, true},
		{"idle", 7, 7, 10 * time.Second, 0, true},
		// 3 cores for 100 s: the product of the delta and 1e9 would not fit
		// in a uint64.
		{"large delta", 0, 300e9, 100 * time.Second, 3e9, true},
		{"no time between", 0, 1e9, 0, 0, false},
		{"time went back", 0, 1e9, -time.Second, 0, false},
		{"counter went back", 10e9, 1e9, time.Second, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := usageNanoCores(tc.prev, tc.cur, t0, t0.Add(tc.dt))
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("usageNanoCores = %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestWorkingSet(t *testing.T) {
	for _, tc := range []struct{ usage, inactive, want uint64 }{
		{100 << 20, 30 << 20, 70 << 20},
		{100 << 20, 0, 100 << 20},
		{100 << 20, 100 << 20, 0},
		{10 << 20, 30 << 20, 0}, // counters read at slightly different times
	} {
		if got := workingSet(tc.usage, tc.inactive); got != tc.want {
			t.Errorf("workingSet(%d, %d) = %d, want %d", tc.usage, tc.inactive, got, tc.want)
		}
	}
}

// fakeHost is a fake /proc and /sys/fs/cgroup under a temporary folder.
type fakeHost struct {
	t       testing.TB
	proc    string
	cgroup  string
	unified bool
}

func newFakeHost(t testing.TB, unified bool) *fakeHost {
	dir := t.TempDir()
	h := &fakeHost{t: t, proc: filepath.Join(dir, "proc"), cgroup: filepath.Join(dir, "cgroup"), unified: unified}
	if unified {
		h.write(filepath.Join(h.cgroup, "cgroup.controllers"), "cpu memory pids")
	}
	h.write(filepath.Join(h.proc, "meminfo"), "MemTotal:        4000000 kB\nMemFree:         1000000 kB\nMemAvailable:    2500000 kB\nInactive(file):   500000 kB\nAnonPages:        700000 kB\n")
	h.write(filepath.Join(h.proc, "vmstat"), "pgfault 1234\npgmajfault 5\n")
	h.write(filepath.Join(h.proc, "sys", "kernel", "pid_max"), "4194304\n")
	h.write(filepath.Join(h.proc, "loadavg"), "0.52 0.58 0.59 3/467 12345\n")
	h.write(filepath.Join(h.proc, "self", "net", "route"),
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"+
			"ens3\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"+
			"ens3\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
	h.nodeCPU(0)
	h.nodeNet(0)
	return h
}

func (h *fakeHost) write(path, content string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// nodeCPU sets the node's busy time: user, nice, system, idle, iowait,
// irq, softirq, steal in USER_HZ; idle and iowait are not busy.
func (h *fakeHost) nodeCPU(busyTicks uint64) {
	user := busyTicks / 2
	sys := busyTicks - user
	h.write(filepath.Join(h.proc, "stat"), fmt.Sprintf("cpu  %d 0 %d 99999 555 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nbtime 1700000000\nprocesses 42\n", user, sys))
}

func netDev(lines ...string) string {
	return "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		strings.Join(lines, "\n") + "\n"
}

func (h *fakeHost) nodeNet(n uint64) {
	h.write(filepath.Join(h.proc, "self", "net", "dev"), netDev(
		"    lo:  999999     10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0",
		fmt.Sprintf("  ens3: %d     20    1    0    0     0          0         0   %d      30    2    0    0     0       0          0", 1000+n, 2000+n),
		"vethab12: 5 1 0 0 0 0 0 0 6 1 0 0 0 0 0 0",
	))
}

// container puts process pid in its own cgroup (named id) with cpuNanos of
// CPU time and the memory given, and, for a sandbox, a network namespace
// with eth0's counters.
func (h *fakeHost) container(id string, pid uint32, cpuNanos, usage, inactiveFile, rss uint64, sandbox bool) {
	cg := "/coxswain/" + id
	pdir := filepath.Join(h.proc, fmt.Sprint(pid))
	if h.unified {
		h.write(filepath.Join(pdir, "cgroup"), "0::"+cg+"\n")
		dir := filepath.Join(h.cgroup, cg)
		h.write(filepath.Join(dir, "cpu.stat"), fmt.Sprintf("usage_usec %d\nuser_usec 1\nsystem_usec 2\n", cpuNanos/1000))
		h.write(filepath.Join(dir, "memory.current"), fmt.Sprintf("%d\n", usage))
		h.write(filepath.Join(dir, "memory.stat"), fmt.Sprintf("anon %d\nfile 9\ninactive_file %d\npgfault 11\npgmajfault 1\n", rss, inactiveFile))
	} else {
		h.write(filepath.Join(pdir, "cgroup"), fmt.Sprintf("9:name=systemd:/\n8:pids:%s\n4:memory:%s\n2:cpuacct:%s\n1:cpu:%s\n0::/\n", cg, cg, cg, cg))
		h.write(filepath.Join(h.cgroup, "cpuacct", cg, "cpuacct.usage"), fmt.Sprintf("%d\n", cpuNanos))
		h.write(filepath.Join(h.cgroup, "memory", cg, "memory.usage_in_bytes"), fmt.Sprintf("%d\n", usage))
		h.write(filepath.Join(h.cgroup, "memory", cg, "memory.stat"), fmt.Sprintf("cache 5\nrss 6\ninactive_file 7\ntotal_cache 9\ntotal_rss %d\ntotal_inactive_file %d\ntotal_pgfault 11\ntotal_pgmajfault 1\n", rss, inactiveFile))
	}
	if sandbox {
		h.write(filepath.Join(pdir, "net", "dev"), netDev(
			"    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0",
			fmt.Sprintf("  eth0: %d     10    0    0    0     0          0         0   %d      10    0    0    0     0       0          0", cpuNanos/1000, cpuNanos/2000),
		))
	}
}

// fakeRuntime is a Runtime with a fixed list of containers.
type fakeRuntime struct {
	mu         sync.Mutex
	containers []Container
	imageDir   string
}

func (f *fakeRuntime) Running(context.Context) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Container(nil), f.containers...), nil
}

func (f *fakeRuntime) RootfsUsage(_ context.Context, c Container) (uint64, uint64, error) {
	return 4096 * uint64(len(c.Name)), 3, nil
}

func (f *fakeRuntime) ImageFs(context.Context) (string, uint64, error) {
	return f.imageDir, 1 << 20, nil
}

func TestSummaryFromCgroups(t *testing.T) {
	for _, unified := range []bool{false, true} {
		t.Run(fmt.Sprintf("unified=%v", unified), func(t *testing.T) {
			h := newFakeHost(t, unified)
			root := t.TempDir()
			logDir := t.TempDir()
			created := time.Unix(1700000100, 0)
			rt := &fakeRuntime{imageDir: root, containers: []Container{
				{ID: "sb-burn", PodUID: "u1", PodName: "burn", PodNamespace: "default", Sandbox: true, Pid: 100, CreatedAt: created},
				{ID: "c-burn", PodUID: "u1", PodName: "burn", PodNamespace: "default", Name: "cpu", Pid: 101, CreatedAt: created.Add(time.Second)},
				{ID: "c-side", PodUID: "u1", PodName: "burn", PodNamespace: "default", Name: "side", Pid: 102, CreatedAt: created.Add(2 * time.Second)},
				{ID: "sb-idle", PodUID: "u2", PodName: "idle", PodNamespace: "apps", Sandbox: true, Pid: 200, CreatedAt: created},
				{ID: "c-idle", PodUID: "u2", PodName: "idle", PodNamespace: "apps", Name: "c", Pid: 201, CreatedAt: created},
			}}
			// A log and an emptyDir volume of the burning pod.
			h.write(filepath.Join(logDir, "default_burn_u1", "cpu", "0.log"), strings.Repeat("x", 10000))
			h.write(filepath.Join(root, "pods", "u1", "volumes", "emptyDir", "scratch", "data"), strings.Repeat("y", 20000))

			now := time.Unix(1700001000, 0)
			var clockMu sync.Mutex
			clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
			advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
			p := New(Config{NodeName: "n1", Runtime: rt, RootDir: root, LogDir: logDir, ProcRoot: h.proc, CgroupRoot: h.cgroup, Now: clock, Logger: zaptest.NewLogger(t)})
			ctx := context.Background()

			set := func(burnCPU, idleCPU uint64) {
				h.container("sb-burn", 100, 1e6, 400<<10, 0, 100<<10, true)
				h.container("c-burn", 101, burnCPU, 50<<20, 20<<20, 25<<20, false)
				h.container("c-side", 102, 2e6, 10<<20, 0, 5<<20, false)
				h.container("sb-idle", 200, 1e6, 400<<10, 0, 100<<10, true)
				h.container("c-idle", 201, idleCPU, 8<<20, 1<<20, 6<<20, false)
			}
			set(5e9, 3e7)
			fresh, err := p.Collect(ctx)
			if err != nil || !fresh {
				t.Fatalf("first Collect = %v, %v; want fresh containers", fresh, err)
			}
			if err := p.CollectFs(ctx); err != nil {
				t.Fatal(err)
			}
			// After one sample: cumulative usage, no rate yet.
			s, err := p.Summary(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Pods) != 2 || s.Pods[0].Containers[0].CPU.UsageNanoCores != nil || s.Node.CPU.UsageNanoCores != nil {
				t.Fatalf("after one sample: %s", jsonOf(t, s))
			}

			// 10 s later the burning container used 9.5 s more (0.95 core),
			// the idle one 10 ms (1 millicore), the node 12 s.
			advance(10 * time.Second)
			set(145e8, 4e7)
			h.nodeCPU(1200)
			h.nodeNet(500)
			if fresh, err := p.Collect(ctx); err != nil || fresh {
				t.Fatalf("second Collect = %v, %v; want no fresh containers", fresh, err)
			}
			s, err = p.Summary(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			at := clock()

			if s.Node.NodeName != "n1" || !s.Node.StartTime.Time.Equal((time.Unix(1700000000, 0))) {
				t.Errorf("node %q started %v", s.Node.NodeName, s.Node.StartTime)
			}
			if got := val(s.Node.CPU.UsageNanoCores); got != 12e8 {
				t.Errorf("node usageNanoCores = %d, want 1.2 cores", got)
			}
			if got := val(s.Node.CPU.UsageCoreNanoSeconds); got != 12e9 {
				t.Errorf("node usageCoreNanoSeconds = %d, want 12 s", got)
			}
			m := s.Node.Memory
			if val(m.UsageBytes) != 3000000<<10 || val(m.WorkingSetBytes) != 2500000<<10 || val(m.AvailableBytes) != 1500000<<10 || val(m.RSSBytes) != 700000<<10 || val(m.PageFaults) != 1234 {
				t.Errorf("node memory = %s", jsonOf(t, m))
			}
			n := s.Node.Network
			if n == nil || n.Name != "ens3" || val(n.RxBytes) != 1500 || val(n.TxBytes) != 2500 || val(n.RxErrors) != 1 || val(n.TxErrors) != 2 || len(n.Interfaces) != 1 {
				t.Errorf("node network (no lo, no veth, ens3 the default) = %s", jsonOf(t, n))
			}
			if s.Node.Fs == nil || val(s.Node.Fs.CapacityBytes) == 0 || s.Node.Runtime == nil || val(s.Node.Runtime.ImageFs.UsedBytes) != 1<<20 {
				t.Errorf("node fs %s, runtime %s", jsonOf(t, s.Node.Fs), jsonOf(t, s.Node.Runtime))
			}
			if s.Node.Rlimit == nil || *s.Node.Rlimit.MaxPID != 4194304 || *s.Node.Rlimit.NumOfRunningProcesses != 467 {
				t.Errorf("rlimit = %s", jsonOf(t, s.Node.Rlimit))
			}

			// Pods sorted by namespace then name: apps/idle, default/burn.
			idle, burn := s.Pods[0], s.Pods[1]
			if idle.PodRef != (PodReference{Name: "idle", Namespace: "apps", UID: "u2"}) || burn.PodRef != (PodReference{Name: "burn", Namespace: "default", UID: "u1"}) {
				t.Fatalf("pods = %v, %v", idle.PodRef, burn.PodRef)
			}
			if len(burn.Containers) != 2 || burn.Containers[0].Name != "cpu" || burn.Containers[1].Name != "side" {
				t.Fatalf("burn containers (sandbox left out) = %s", jsonOf(t, burn.Containers))
			}
			cpu := burn.Containers[0]
			if got := val(cpu.CPU.UsageNanoCores); got != 95e7 {
				t.Errorf("burning container usageNanoCores = %d, want 0.95 core", got)
			}
			if got := val(cpu.CPU.UsageCoreNanoSeconds); got != 145e8 {
				t.Errorf("burning container usageCoreNanoSeconds = %d", got)
			}
			if got := val(cpu.Memory.WorkingSetBytes); got != 30<<20 {
				t.Errorf("burning container working set = %d, want usage - inactive_file = 30 MiB", got)
			}
			if val(cpu.Memory.UsageBytes) != 50<<20 || val(cpu.Memory.RSSBytes) != 25<<20 || !cpu.CPU.Time.Time.Equal((at)) {
				t.Errorf("burning container memory %s, cpu time %v", jsonOf(t, cpu.Memory), cpu.CPU.Time)
			}
			if !cpu.StartTime.Time.Equal((created.Add(time.Second))) || !burn.StartTime.Time.Equal((created)) {
				t.Errorf("start times: container %v, pod %v", cpu.StartTime, burn.StartTime)
			}
			if got := val(idle.Containers[0].CPU.UsageNanoCores); got != 1e6 {
				t.Errorf("idle container usageNanoCores = %d, want 1 millicore", got)
			}
			// The pod sums its containers and sandbox.
			if got := val(burn.CPU.UsageNanoCores); got != 95e7 {
				t.Errorf("burning pod usageNanoCores = %d", got)
			}
			if got := val(burn.CPU.UsageCoreNanoSeconds); got != 145e8+2e6+1e6 {
				t.Errorf("burning pod usageCoreNanoSeconds = %d", got)
			}
			if got := val(burn.Memory.WorkingSetBytes); got != 30<<20+10<<20+400<<10 {
				t.Errorf("burning pod working set = %d", got)
			}
			if burn.Network == nil || burn.Network.Name != "eth0" || val(burn.Network.RxBytes) != 1000 || val(burn.Network.TxBytes) != 500 || len(burn.Network.Interfaces) != 1 {
				t.Errorf("burning pod network = %s", jsonOf(t, burn.Network))
			}
			if cpu.Rootfs == nil || val(cpu.Rootfs.UsedBytes) != 3*4096 || val(cpu.Rootfs.CapacityBytes) == 0 {
				t.Errorf("rootfs = %s", jsonOf(t, cpu.Rootfs))
			}
			if cpu.Logs == nil || val(cpu.Logs.UsedBytes) < 10000 {
				t.Errorf("logs = %s", jsonOf(t, cpu.Logs))
			}
			if len(burn.VolumeStats) != 1 || burn.VolumeStats[0].Name != "scratch" || val(burn.VolumeStats[0].UsedBytes) < 20000 {
				t.Errorf("volumes = %s", jsonOf(t, burn.VolumeStats))
			}
			if e := burn.EphemeralStorage; e == nil || val(e.UsedBytes) < 30000+2*3*4096 {
				t.Errorf("ephemeral storage = %s", jsonOf(t, e))
			}

			// only_cpu_and_memory leaves the rest out.
			s, err = p.Summary(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			if s.Node.Network != nil || s.Node.Fs != nil || s.Pods[1].Network != nil || s.Pods[1].Containers[0].Rootfs != nil || s.Pods[1].CPU == nil {
				t.Errorf("only_cpu_and_memory = %s", jsonOf(t, s))
			}

			// A container that goes is no longer reported; one that comes
			// makes the sample fresh.
			advance(10 * time.Second)
			rt.mu.Lock()
			rt.containers = append(rt.containers[:3:3], Container{ID: "c-new", PodUID: "u1", PodName: "burn", PodNamespace: "default", Name: "new", Pid: 103, CreatedAt: at})
			rt.mu.Unlock()
			h.container("c-new", 103, 1e6, 1<<20, 0, 1<<20, false)
			if fresh, err := p.Collect(ctx); err != nil || !fresh {
				t.Fatalf("third Collect = %v, %v; want fresh", fresh, err)
			}
			s, _ = p.Summary(ctx, true)
			if len(s.Pods) != 1 || len(s.Pods[0].Containers) != 3 || s.Pods[0].Containers[0].Name != "cpu" || s.Pods[0].Containers[1].CPU.UsageNanoCores != nil {
				t.Errorf("after apps/idle went and burn/new came: %s", jsonOf(t, s))
			}
		})
	}
}

// TestSummaryJSON checks the upstream field names.
func TestSummaryJSON(t *testing.T) {
	at := metav1.NewTime(time.Unix(1700000000, 0).UTC())
	s := &Summary{
		Node: NodeStats{NodeName: "n", StartTime: at, CPU: &CPUStats{Time: at, UsageNanoCores: ptr[uint64](1), UsageCoreNanoSeconds: ptr[uint64](2)},
			Network: &NetworkStats{Time: at, InterfaceStats: InterfaceStats{Name: "eth0", RxBytes: ptr[uint64](3)}},
			Runtime: &RuntimeStats{ImageFs: &FsStats{Time: at, UsedBytes: ptr[uint64](4)}}},
		Pods: []PodStats{{PodRef: PodReference{Name: "p", Namespace: "ns", UID: "u"}, StartTime: at,
			Containers:       []ContainerStats{{Name: "c", StartTime: at, Memory: &MemoryStats{Time: at, WorkingSetBytes: ptr[uint64](5)}}},
			VolumeStats:      []VolumeStats{{Name: "v", FsStats: FsStats{Time: at, UsedBytes: ptr[uint64](6)}}},
			EphemeralStorage: &FsStats{Time: at, UsedBytes: ptr[uint64](7)}}},
	}
	got := jsonOf(t, s)
	want := `{"node":{"nodeName":"n","startTime":"2023-11-14T22:13:20Z","cpu":{"time":"2023-11-14T22:13:20Z","usageNanoCores":1,"usageCoreNanoSeconds":2},` +
		`"network":{"time":"2023-11-14T22:13:20Z","name":"eth0","rxBytes":3},"runtime":{"imageFs":{"time":"2023-11-14T22:13:20Z","usedBytes":4}}},` +
		`"pods":[{"podRef":{"name":"p","namespace":"ns","uid":"u"},"startTime":"2023-11-14T22:13:20Z","containers":[{"name":"c","startTime":"2023-11-14T22:13:20Z","memory":{"time":"2023-11-14T22:13:20Z","workingSetBytes":5}}],` +
		`"volume":[{"time":"2023-11-14T22:13:20Z","usedBytes":6,"name":"v"}],"ephemeral-storage":{"time":"2023-11-14T22:13:20Z","usedBytes":7}}]}`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("JSON (-want +got):\n%s", d)
	}
}

func TestWriteResourceMetrics(t *testing.T) {
	at := metav1.NewTime(time.UnixMilli(1700000000123))
	s := &Summary{
		Node: NodeStats{CPU: &CPUStats{Time: at, UsageCoreNanoSeconds: ptr[uint64](1500e6)}, Memory: &MemoryStats{Time: at, WorkingSetBytes: ptr[uint64](2048)}},
		Pods: []PodStats{{PodRef: PodReference{Name: "p", Namespace: `n"s`}, CPU: &CPUStats{Time: at, UsageCoreNanoSeconds: ptr[uint64](25e7)}, Memory: &MemoryStats{Time: at, WorkingSetBytes: ptr[uint64](1024)},
			Containers: []ContainerStats{{Name: "c", StartTime: metav1.NewTime(time.Unix(1700000000, 0)), CPU: &CPUStats{Time: at, UsageCoreNanoSeconds: ptr[uint64](2e8)}, Memory: &MemoryStats{Time: at, WorkingSetBytes: ptr[uint64](512)}}}}},
	}
	var b bytes.Buffer
	if err := WriteResourceMetrics(&b, s, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE container_cpu_usage_seconds_total counter\n",
		`container_cpu_usage_seconds_total{container="c",namespace="n\"s",pod="p"} 0.2 1700000000123` + "\n",
		`container_memory_working_set_bytes{container="c",namespace="n\"s",pod="p"} 512 1700000000123` + "\n",
		`container_start_time_seconds{container="c",namespace="n\"s",pod="p"} 1.7e+09 1700000000000` + "\n",
		"node_cpu_usage_seconds_total 1.5 1700000000123\n",
		"node_memory_working_set_bytes 2048 1700000000123\n",
		`pod_cpu_usage_seconds_total{namespace="n\"s",pod="p"} 0.25 1700000000123` + "\n",
		`pod_memory_working_set_bytes{namespace="n\"s",pod="p"} 1024 1700000000123` + "\n",
		"resource_scrape_error 0\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestParseCgroupPaths(t *testing.T) {
	v1 := &cgroupReader{root: "/sys/fs/cgroup"}
	got, err := v1.parsePaths([]byte("11:cpu,cpuacct:/kubepods/pod1/c1\n6:memory:/kubepods/pod1/c1\n1:name=systemd:/x\n0::/\n"))
	if err != nil || got != (cgroupPaths{cpu: "/sys/fs/cgroup/cpuacct/kubepods/pod1/c1", memory: "/sys/fs/cgroup/memory/kubepods/pod1/c1"}) {
		t.Errorf("v1 = %+v, %v", got, err)
	}
	v2 := &cgroupReader{root: "/sys/fs/cgroup", unified: true}
	got, err = v2.parsePaths([]byte("0::/system.slice/containerd.service/c1\n"))
	if err != nil || got != (cgroupPaths{cpu: "/sys/fs/cgroup/system.slice/containerd.service/c1", memory: "/sys/fs/cgroup/system.slice/containerd.service/c1"}) {
		t.Errorf("v2 = %+v, %v", got, err)
	}
	if _, err := v1.parsePaths([]byte("0::/only-v2\n")); err == nil {
		t.Error("v1 without cpuacct and memory: no error")
	}
}

func val(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunSamples checks the background sampler: CPU rates appear without
// asking, and Run returns once its context ends.
func TestRunSamples(t *testing.T) {
	h := newFakeHost(t, true)
	h.container("sb", 10, 1e6, 1<<20, 0, 1<<20, true)
	h.container("c", 11, 1e6, 1<<20, 0, 1<<20, false)
	rt := &fakeRuntime{imageDir: t.TempDir(), containers: []Container{
		{ID: "sb", PodUID: "u", PodName: "p", PodNamespace: "ns", Sandbox: true, Pid: 10},
		{ID: "c", PodUID: "u", PodName: "p", PodNamespace: "ns", Name: "c", Pid: 11},
	}}
	p := New(Config{NodeName: "n", Runtime: rt, ProcRoot: h.proc, CgroupRoot: h.cgroup, Interval: 20 * time.Millisecond, FsInterval: 20 * time.Millisecond, Logger: zaptest.NewLogger(t)})

	// Without the sampler a summary samples on demand.
	s, err := p.Summary(context.Background(), false)
	if err != nil || len(s.Pods) != 1 || s.Pods[0].Containers[0].CPU.UsageCoreNanoSeconds == nil {
		t.Fatalf("on-demand summary = %s, %v", jsonOf(t, s), err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := p.Summary(ctx, false)
		if err == nil && len(s.Pods) == 1 && s.Pods[0].Containers[0].CPU.UsageNanoCores != nil && s.Pods[0].EphemeralStorage != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU rate and disk usage from the sampler: %s, %v", jsonOf(t, s), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// BenchmarkCollect measures one sample of 100 pods (a sandbox and a
// container each) and one summary of it, from fake cgroup and proc files:
// the kubelet's own work every sampling interval, less containerd's list.
func BenchmarkCollect(b *testing.B) {
	for _, unified := range []bool{false, true} {
		b.Run(fmt.Sprintf("unified=%v", unified), func(b *testing.B) {
			h := newFakeHost(b, unified)
			rt := &fakeRuntime{}
			for i := range 100 {
				uid := fmt.Sprintf("u%d", i)
				sb, c := uint32(1000+2*i), uint32(1001+2*i)
				rt.containers = append(rt.containers,
					Container{ID: "sb" + uid, PodUID: uid, PodName: "p" + uid, PodNamespace: "ns", Sandbox: true, Pid: sb},
					Container{ID: "c" + uid, PodUID: uid, PodName: "p" + uid, PodNamespace: "ns", Name: "c", Pid: c})
			}
			for _, c := range rt.containers {
				h.container(c.ID, c.Pid, 1e9, 10<<20, 1<<20, 5<<20, c.Sandbox)
			}
			p := New(Config{NodeName: "n", Runtime: rt, ProcRoot: h.proc, CgroupRoot: h.cgroup})
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := p.Collect(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := p.Summary(ctx, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFreshNodeMemory checks the node's memory as the eviction manager
// reads it: from /proc/meminfo, or on cgroup v1 from the root memory
// cgroup's usage less its inactive file cache, as cadvisor's root
// container; and the root's filesystem.
func TestFreshNodeMemory(t *testing.T) {
	for _, tc := range []struct {
		name       string
		unified    bool
		rootCgroup bool
		wantWS     uint64
		wantAvail  uint64
		wantUsage  uint64
	}{
		{name: "v2: meminfo", unified: true, wantUsage: 3000000 << 10, wantWS: 2500000 << 10, wantAvail: 1500000 << 10},
		{name: "v1 without a root cgroup: meminfo", wantUsage: 3000000 << 10, wantWS: 2500000 << 10, wantAvail: 1500000 << 10},
		{name: "v1: the root memory cgroup", rootCgroup: true, wantUsage: 2000000 << 10, wantWS: 1800000 << 10, wantAvail: 2200000 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t, tc.unified)
			if tc.rootCgroup {
				h.write(filepath.Join(h.cgroup, "memory", "memory.usage_in_bytes"), fmt.Sprintf("%d\n", uint64(2000000<<10)))
				h.write(filepath.Join(h.cgroup, "memory", "memory.stat"), fmt.Sprintf("total_inactive_file %d\ntotal_rss 100\n", uint64(200000<<10)))
			}
			root := t.TempDir()
			p := New(Config{NodeName: "n", ProcRoot: h.proc, CgroupRoot: h.cgroup, RootDir: root})
			mem, fs, err := p.FreshNode()
			if err != nil {
				t.Fatal(err)
			}
			if *mem.UsageBytes != tc.wantUsage || *mem.WorkingSetBytes != tc.wantWS || *mem.AvailableBytes != tc.wantAvail {
				t.Errorf("usage %d, working set %d, available %d; want %d, %d, %d", *mem.UsageBytes, *mem.WorkingSetBytes, *mem.AvailableBytes, tc.wantUsage, tc.wantWS, tc.wantAvail)
			}
			if fs == nil || fs.CapacityBytes == nil || *fs.CapacityBytes == 0 || fs.InodesFree == nil {
				t.Errorf("root filesystem %+v, want its capacity and inodes", fs)
			}
		})
	}
}
