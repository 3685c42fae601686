// Package stats measures the node's and its pods' resource usage for the
// kubelet's summary API (/stats/summary, upstream's v1alpha1 JSON) and
// resource metrics (/metrics/resource): per container the CPU time and
// memory of its cgroup (v1 or v2) and its writable layer and logs on disk;
// per pod those summed, its network namespace's interface counters and its
// volumes; for the node /proc/stat, /proc/meminfo, its interfaces and
// filesystems. A sampler keeps the last two samples, so that CPU usage in
// nanocores is the rate between them and requests answer from memory.
package stats

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/logs"
)

// Defaults of Config.
const (
	// DefaultInterval is how often CPU and memory are sampled (upstream's
	// cadvisor housekeeping interval).
	DefaultInterval = 10 * time.Second
	// DefaultFsInterval is how often disk usage is measured (upstream's
	// volume stats period).
	DefaultFsInterval = time.Minute
	// newContainerDelay is how soon a sample follows one that saw new
	// containers, so that their CPU rate is known within seconds.
	newContainerDelay = time.Second
)

// Config configures a Provider.
type Config struct {
	NodeName string
	Runtime  Runtime
	// RootDir is the kubelet's root: its filesystem is the node's, and
	// pods/<uid>/volumes holds the pods' volumes.
	RootDir string
	// LogDir holds the containers' logs (/var/log/pods).
	LogDir     string
	Interval   time.Duration
	FsInterval time.Duration
	Logger     *zap.Logger
	// ProcRoot and CgroupRoot are where procfs and the cgroup hierarchies
	// are mounted (/proc, /sys/fs/cgroup); tests point them at fakes.
	ProcRoot   string
	CgroupRoot string
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Provider samples resource usage in the background and builds summaries
// from the last two samples.
type Provider struct {
	cfg     Config
	logger  *zap.Logger
	cgroups *cgroupReader

	// collectMu serializes collections; paths is only used under it.
	collectMu sync.Mutex
	paths     map[string]cachedPaths

	fsMu sync.Mutex // serializes disk usage collections

	mu   sync.Mutex
	prev *sample
	cur  *sample
	fs   *fsSample
}

type cachedPaths struct {
	pid   uint32
	paths cgroupPaths
}

// sample is one reading of CPU, memory and network counters.
type sample struct {
	at         time.Time
	node       nodeSample
	containers map[string]containerSample // by container ID, sandboxes too
	podNet     map[string][]ifaceReading  // by pod UID
}

type nodeSample struct {
	cpuOK         bool
	cpuUsageNanos uint64
	bootTime      int64
	memOK         bool
	memory        nodeMemory
	net           []ifaceReading
	defaultIface  string
	procs, pidMax int64
}

type containerSample struct {
	Container
	cgroupStats
}

// fsSample is one measurement of disk usage.
type fsSample struct {
	at      time.Time
	node    *fsReading
	imageFs *fsReading
	rootfs  map[string]fsReading      // by container ID
	logs    map[string]fsReading      // by pod UID + "/" + container name
	volumes map[string][]volumeSample // by pod UID
}

type volumeSample struct {
	name string
	fsReading
}

// New returns a Provider; Run samples in the background.
func New(cfg Config) *Provider {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FsInterval <= 0 {
		cfg.FsInterval = DefaultFsInterval
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{
		cfg: cfg, logger: cfg.Logger, cgroups: newCgroupReader(cfg.CgroupRoot, cfg.ProcRoot),
		paths: map[string]cachedPaths{},
	}
}

// Run samples CPU and memory every Interval (sooner after new containers
// appear) and disk usage every FsInterval until ctx ends.
func (p *Provider) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			delay := p.cfg.Interval
			fresh, err := p.Collect(ctx)
			if err != nil && ctx.Err() == nil {
				p.logger.Warn("resource stats sample failed", zap.Error(err))
			}
			if fresh {
				delay = min(delay, newContainerDelay)
			}
			if !sleep(ctx, delay) {
				return
			}
		}
	})
	wg.Go(func() {
		for {
			if err := p.CollectFs(ctx); err != nil && ctx.Err() == nil {
				p.logger.Warn("disk usage sample failed", zap.Error(err))
			}
			if !sleep(ctx, p.cfg.FsInterval) {
				return
			}
		}
	})
	wg.Wait()
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Collect takes a CPU, memory and network sample and makes it the current
// one; fresh reports containers the previous sample did not have.
func (p *Provider) Collect(ctx context.Context) (fresh bool, err error) {
	p.collectMu.Lock()
	defer p.collectMu.Unlock()
	return p.collectLocked(ctx)
}

func (p *Provider) collectLocked(ctx context.Context) (bool, error) {
	cs, err := p.cfg.Runtime.Running(ctx)
	if err != nil {
		return false, err
	}
	s := &sample{at: p.cfg.Now(), containers: make(map[string]containerSample, len(cs)), podNet: map[string][]ifaceReading{}}
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		seen[c.ID] = true
		cp, ok := p.paths[c.ID]
		if !ok || cp.pid != c.Pid {
			paths, err := p.cgroups.paths(c.Pid)
			if err != nil {
				p.logger.Debug("no cgroups for container", zap.String("container", c.ID), zap.Error(err))
				continue
			}
			cp = cachedPaths{pid: c.Pid, paths: paths}
			p.paths[c.ID] = cp
		}
		st, err := p.cgroups.read(cp.paths)
		if err != nil {
			// The container may just have exited.
			p.logger.Debug("read container cgroups", zap.String("container", c.ID), zap.Error(err))
			delete(p.paths, c.ID)
			continue
		}
		s.containers[c.ID] = containerSample{Container: c, cgroupStats: st}
		if c.Sandbox {
			if ifs, err := readNetDev(filepath.Join(p.cfg.ProcRoot, strconv.FormatUint(uint64(c.Pid), 10)), false); err == nil {
				s.podNet[c.PodUID] = ifs
			}
		}
	}
	for id := range p.paths {
		if !seen[id] {
			delete(p.paths, id)
		}
	}
	p.readNode(&s.node)

	p.mu.Lock()
	prev := p.cur
	p.prev, p.cur = prev, s
	p.mu.Unlock()
	fresh := false
	for id := range s.containers {
		if prev == nil {
			fresh = true
			break
		}
		if _, ok := prev.containers[id]; !ok {
			fresh = true
			break
		}
	}
	return fresh, nil
}

func (p *Provider) readNode(n *nodeSample) {
	if st, err := readProcStat(p.cfg.ProcRoot); err == nil {
		n.cpuOK, n.cpuUsageNanos, n.bootTime = true, st.cpuUsageNanos, st.bootTime
	} else {
		p.logger.Debug("read node CPU", zap.Error(err))
	}
	if m, err := readNodeMemory(p.cfg.ProcRoot); err == nil {
		p.cgroups.rootMemory(&m)
		n.memOK, n.memory = true, m
	} else {
		p.logger.Debug("read node memory", zap.Error(err))
	}
	n.net, n.defaultIface = p.nodeNetwork()
	if v, err := readUint(filepath.Join(p.cfg.ProcRoot, "sys", "kernel", "pid_max")); err == nil {
		n.pidMax = int64(v)
	}
	n.procs, _ = processCount(p.cfg.ProcRoot)
}

// nodeNetwork reads the interfaces and the default route of the kubelet's
// own network namespace. /proc/self/net follows the thread group leader,
// which may be lent for a moment to a pod's namespace (CNI, port-forward);
// /proc/thread-self/net of a thread this goroutine holds is the namespace
// every unlocked thread is in.
func (p *Provider) nodeNetwork() ([]ifaceReading, string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := filepath.Join(p.cfg.ProcRoot, "thread-self")
	if _, err := os.Stat(self); err != nil {
		self = filepath.Join(p.cfg.ProcRoot, "self") // a ProcRoot of tests, or an old kernel
	}
	ifs, _ := readNetDev(self, true)
	return ifs, defaultInterface(self)
}

// CollectFs measures the disk usage of the node's filesystems and of the
// containers' writable layers, logs and the pods' volumes.
func (p *Provider) CollectFs(ctx context.Context) error {
	p.fsMu.Lock()
	defer p.fsMu.Unlock()
	cs, err := p.cfg.Runtime.Running(ctx)
	if err != nil {
		return err
	}
	fs := &fsSample{at: p.cfg.Now(), rootfs: map[string]fsReading{}, logs: map[string]fsReading{}, volumes: map[string][]volumeSample{}}
	var errs []error
	if p.cfg.RootDir != "" {
		if r, err := statFS(p.cfg.RootDir); err == nil {
			fs.node = &r
		} else {
			errs = append(errs, err)
		}
	}
	if dir, used, err := p.cfg.Runtime.ImageFs(ctx); err == nil && dir != "" {
		if r, err := statFS(dir); err == nil {
			r.used = used
			fs.imageFs = &r
		}
	} else if err != nil {
		errs = append(errs, err)
	}
	pods := map[string]bool{}
	for _, c := range cs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.Sandbox {
			pods[c.PodUID] = true
			continue
		}
		if used, inodes, err := p.cfg.Runtime.RootfsUsage(ctx, c); err == nil {
			fs.rootfs[c.ID] = fsReading{used: used, inodesUsed: inodes}
		}
		if p.cfg.LogDir != "" {
			dir := filepath.Join(logs.PodDir(p.cfg.LogDir, c.PodNamespace, c.PodName, c.PodUID), c.Name)
			if used, inodes, err := diskUsage(dir); err == nil {
				fs.logs[c.PodUID+"/"+c.Name] = fsReading{used: used, inodesUsed: inodes}
			}
		}
	}
	if p.cfg.RootDir != "" {
		for uid := range pods {
			fs.volumes[uid] = podVolumes(filepath.Join(p.cfg.RootDir, "pods", uid, "volumes"))
		}
	}
	p.mu.Lock()
	p.fs = fs
	p.mu.Unlock()
	return errors.Join(errs...)
}

// podVolumes measures the volumes under a pod's volumes folder,
// <kind>/<name>: emptyDir, configMap, secret, downwardAPI and projected
// (hostPath and persistent volumes are not there).
func podVolumes(dir string) []volumeSample {
	kinds, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []volumeSample
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		vols, err := os.ReadDir(filepath.Join(dir, k.Name()))
		if err != nil {
			continue
		}
		for _, v := range vols {
			path := filepath.Join(dir, k.Name(), v.Name())
			r, err := statFS(path)
			if err != nil {
				continue
			}
			used, inodes, err := diskUsage(path)
			if err != nil {
				continue
			}
			r.used, r.inodesUsed = used, inodes
			out = append(out, volumeSample{name: v.Name(), fsReading: r})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Summary returns the summary of the last two samples; only CPU and
// memory when onlyCPUAndMemory (upstream's only_cpu_and_memory). Without
// a recent sample (the sampler is not running) it samples first.
func (p *Provider) Summary(ctx context.Context, onlyCPUAndMemory bool) (*Summary, error) {
	p.mu.Lock()
	stale := p.cur == nil || p.cfg.Now().Sub(p.cur.at) > 2*p.cfg.Interval
	p.mu.Unlock()
	if stale {
		p.collectMu.Lock()
		p.mu.Lock()
		stale = p.cur == nil || p.cfg.Now().Sub(p.cur.at) > 2*p.cfg.Interval
		p.mu.Unlock()
		var err error
		if stale {
			_, err = p.collectLocked(ctx)
		}
		p.collectMu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	prev, cur, fs := p.prev, p.cur, p.fs
	p.mu.Unlock()
	return buildSummary(p.cfg.NodeName, prev, cur, fs, onlyCPUAndMemory), nil
}

// usageNanoCores is the CPU rate between two cumulative readings, in
// billionths of a core; false when it cannot be told (no time between the
// samples, or the counter went back: a new cgroup).
func usageNanoCores(prevNanos, curNanos uint64, prevAt, curAt time.Time) (uint64, bool) {
	dt := curAt.Sub(prevAt)
	if dt <= 0 || curNanos < prevNanos {
		return 0, false
	}
	return uint64(float64(curNanos-prevNanos) / dt.Seconds()), true
}

func ptr[T any](v T) *T { return &v }

// buildSummary builds the summary of cur, with CPU rates against prev
// and disk usage from fs (either may be nil).
func buildSummary(nodeName string, prev, cur *sample, fs *fsSample, onlyCPUAndMemory bool) *Summary {
	out := &Summary{Node: NodeStats{NodeName: nodeName}, Pods: []PodStats{}}
	if cur == nil {
		return out
	}
	at := metav1.NewTime(cur.at)
	n := cur.node
	if n.bootTime > 0 {
		out.Node.StartTime = metav1.NewTime(time.Unix(n.bootTime, 0))
	}
	if n.cpuOK {
		cpu := &CPUStats{Time: at, UsageCoreNanoSeconds: ptr(n.cpuUsageNanos)}
		if prev != nil && prev.node.cpuOK {
			if v, ok := usageNanoCores(prev.node.cpuUsageNanos, n.cpuUsageNanos, prev.at, cur.at); ok {
				cpu.UsageNanoCores = ptr(v)
			}
		}
		out.Node.CPU = cpu
	}
	if n.memOK {
		m := memoryStats(at, n.memory.memoryReading)
		m.AvailableBytes = ptr(n.memory.capacity - min(n.memory.capacity, n.memory.workingSet))
		out.Node.Memory = m
	}
	if !onlyCPUAndMemory {
		out.Node.Network = networkStats(at, n.net, n.defaultIface)
		if n.pidMax > 0 || n.procs > 0 {
			out.Node.Rlimit = &RlimitStats{Time: at, MaxPID: ptr(n.pidMax), NumOfRunningProcesses: ptr(n.procs)}
		}
		if fs != nil {
			if fs.node != nil {
				out.Node.Fs = fsStats(metav1.NewTime(fs.at), *fs.node)
			}
			if fs.imageFs != nil {
				out.Node.Runtime = &RuntimeStats{
					ImageFs:     fsStats(metav1.NewTime(fs.at), *fs.imageFs),
					ContainerFs: fsStats(metav1.NewTime(fs.at), *fs.imageFs),
				}
			}
		}
	}

	byPod := map[string][]containerSample{}
	for _, c := range cur.containers {
		byPod[c.PodUID] = append(byPod[c.PodUID], c)
	}
	for uid, cs := range byPod {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Sandbox != cs[j].Sandbox {
				return cs[i].Sandbox
			}
			return cs[i].Name < cs[j].Name
		})
		ps := PodStats{PodRef: PodReference{Name: cs[0].PodName, Namespace: cs[0].PodNamespace, UID: uid}, Containers: []ContainerStats{}}
		start := cs[0].CreatedAt
		var (
			podCPU, podNanoCores uint64
			haveNanoCores        bool
			podMem               memoryReading
			ephemeral            uint64
			ephemeralInodes      uint64
		)
		for _, c := range cs {
			if c.CreatedAt.Before(start) {
				start = c.CreatedAt
			}
			podCPU += c.cpuUsageNanos
			podMem.usage += c.memory.usage
			podMem.workingSet += c.memory.workingSet
			podMem.rss += c.memory.rss
			podMem.pageFaults += c.memory.pageFaults
			podMem.majorPageFaults += c.memory.majorPageFaults
			cpu := &CPUStats{Time: at, UsageCoreNanoSeconds: ptr(c.cpuUsageNanos)}
			if prev != nil {
				if pc, ok := prev.containers[c.ID]; ok {
					if v, ok := usageNanoCores(pc.cpuUsageNanos, c.cpuUsageNanos, prev.at, cur.at); ok {
						cpu.UsageNanoCores = ptr(v)
						podNanoCores += v
						haveNanoCores = true
					}
				}
			}
			if c.Sandbox {
				continue
			}
			st := ContainerStats{Name: c.Name, StartTime: metav1.NewTime(c.CreatedAt), CPU: cpu, Memory: memoryStats(at, c.memory)}
			if !onlyCPUAndMemory && fs != nil {
				fsAt := metav1.NewTime(fs.at)
				if r, ok := fs.rootfs[c.ID]; ok {
					if fs.imageFs != nil {
						r.capacity, r.available, r.inodes, r.inodesFree, r.hasCapacity = fs.imageFs.capacity, fs.imageFs.available, fs.imageFs.inodes, fs.imageFs.inodesFree, true
					}
					st.Rootfs = fsStats(fsAt, r)
					ephemeral += r.used
					ephemeralInodes += r.inodesUsed
				}
				if r, ok := fs.logs[uid+"/"+c.Name]; ok {
					if fs.node != nil {
						r.capacity, r.available, r.inodes, r.inodesFree, r.hasCapacity = fs.node.capacity, fs.node.available, fs.node.inodes, fs.node.inodesFree, true
					}
					st.Logs = fsStats(fsAt, r)
					ephemeral += r.used
					ephemeralInodes += r.inodesUsed
				}
			}
			ps.Containers = append(ps.Containers, st)
		}
		ps.StartTime = metav1.NewTime(start)
		ps.CPU = &CPUStats{Time: at, UsageCoreNanoSeconds: ptr(podCPU)}
		if haveNanoCores {
			ps.CPU.UsageNanoCores = ptr(podNanoCores)
		}
		ps.Memory = memoryStats(at, podMem)
		if !onlyCPUAndMemory {
			if ifs, ok := cur.podNet[uid]; ok {
				ps.Network = networkStats(at, ifs, "eth0")
			}
			if fs != nil {
				fsAt := metav1.NewTime(fs.at)
				for _, v := range fs.volumes[uid] {
					ps.VolumeStats = append(ps.VolumeStats, VolumeStats{Name: v.name, FsStats: *fsStats(fsAt, v.fsReading)})
					if !v.tmpfs {
						ephemeral += v.used
						ephemeralInodes += v.inodesUsed
					}
				}
				e := fsReading{used: ephemeral, inodesUsed: ephemeralInodes}
				if fs.node != nil {
					e.capacity, e.available, e.inodes, e.inodesFree, e.hasCapacity = fs.node.capacity, fs.node.available, fs.node.inodes, fs.node.inodesFree, true
				}
				ps.EphemeralStorage = fsStats(fsAt, e)
			}
		}
		out.Pods = append(out.Pods, ps)
	}
	sort.Slice(out.Pods, func(i, j int) bool {
		a, b := out.Pods[i].PodRef, out.Pods[j].PodRef
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.UID < b.UID
	})
	return out
}

func memoryStats(at metav1.Time, m memoryReading) *MemoryStats {
	return &MemoryStats{
		Time: at, UsageBytes: ptr(m.usage), WorkingSetBytes: ptr(m.workingSet), RSSBytes: ptr(m.rss),
		PageFaults: ptr(m.pageFaults), MajorPageFaults: ptr(m.majorPageFaults),
	}
}

// networkStats reports every interface, and def's (or the first's)
// counters inline as upstream does for the default interface.
func networkStats(at metav1.Time, ifs []ifaceReading, def string) *NetworkStats {
	if len(ifs) == 0 {
		return nil
	}
	out := &NetworkStats{Time: at}
	for _, i := range ifs {
		out.Interfaces = append(out.Interfaces, InterfaceStats{Name: i.name, RxBytes: ptr(i.rxBytes), RxErrors: ptr(i.rxErrors), TxBytes: ptr(i.txBytes), TxErrors: ptr(i.txErrors)})
	}
	out.InterfaceStats = out.Interfaces[0]
	for _, i := range out.Interfaces {
		if i.Name == def {
			out.InterfaceStats = i
		}
	}
	return out
}

func fsStats(at metav1.Time, r fsReading) *FsStats {
	out := &FsStats{Time: at, UsedBytes: ptr(r.used), InodesUsed: ptr(r.inodesUsed)}
	if r.hasCapacity {
		out.CapacityBytes, out.AvailableBytes = ptr(r.capacity), ptr(r.available)
		out.Inodes, out.InodesFree = ptr(r.inodes), ptr(r.inodesFree)
	}
	return out
}

// FreshNode reads afresh, rather than from the last sample, the node
// figures the eviction manager compares with its thresholds, as
// upstream's eviction manager asks for updated stats each cycle: the
// memory (capacity and the root cgroup's working set) and the kubelet
// root's filesystem (nil when RootDir is unset). An eviction shows in
// them at once, so a pod is not evicted on a stale reading taken before
// the previous one had given its memory or space back.
func (p *Provider) FreshNode() (*MemoryStats, *FsStats, error) {
	m, err := readNodeMemory(p.cfg.ProcRoot)
	if err != nil {
		return nil, nil, err
	}
	p.cgroups.rootMemory(&m)
	at := metav1.NewTime(p.cfg.Now())
	mem := memoryStats(at, m.memoryReading)
	mem.AvailableBytes = ptr(m.capacity - min(m.capacity, m.workingSet))
	if p.cfg.RootDir == "" {
		return mem, nil, nil
	}
	r, err := statFS(p.cfg.RootDir)
	if err != nil {
		return nil, nil, err
	}
	return mem, fsStats(at, r), nil
}
