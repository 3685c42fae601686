package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupReader reads the CPU and memory accounting of a process's cgroup,
// on the unified hierarchy (cgroup v2) or the v1 cpuacct and memory
// controllers, as cadvisor does for upstream's kubelet.
type cgroupReader struct {
	root    string // where the hierarchies are mounted (/sys/fs/cgroup)
	proc    string // procfs (/proc)
	unified bool
}

func newCgroupReader(root, proc string) *cgroupReader {
	_, err := os.Stat(filepath.Join(root, "cgroup.controllers"))
	return &cgroupReader{root: root, proc: proc, unified: err == nil}
}

// cgroupPaths are the cgroup directories of one process, absolute.
type cgroupPaths struct {
	cpu    string // holds cpuacct.usage (v1) or cpu.stat (v2)
	memory string
}

// cgroupStats is one reading of a cgroup's counters.
type cgroupStats struct {
	cpuUsageNanos uint64 // cumulative CPU time
	memory        memoryReading
}

// memoryReading is the memory of a cgroup, or of the node.
type memoryReading struct {
	usage, workingSet, rss, pageFaults, majorPageFaults uint64
}

// paths resolves the cgroups of process pid from /proc/<pid>/cgroup, so
// that whatever cgroup driver or parent the runtime chose is followed.
func (c *cgroupReader) paths(pid uint32) (cgroupPaths, error) {
	b, err := os.ReadFile(filepath.Join(c.proc, strconv.FormatUint(uint64(pid), 10), "cgroup"))
	if err != nil {
		return cgroupPaths{}, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	return c.parsePaths(b)
}

// parsePaths reads the lines of /proc/<pid>/cgroup:
// "hierarchy-ID:controller-list:path"; v2's is "0::path".
func (c *cgroupReader) parsePaths(b []byte) (cgroupPaths, error) {
	var p cgroupPaths
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if c.unified {
			if parts[0] == "0" && parts[1] == "" {
				dir := filepath.Join(c.root, parts[2])
				p.cpu, p.memory = dir, dir
			}
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			switch ctrl {
			case "cpuacct":
				p.cpu = filepath.Join(c.root, "cpuacct", parts[2])
			case "memory":
				p.memory = filepath.Join(c.root, "memory", parts[2])
			}
		}
	}
	if p.cpu == "" || p.memory == "" {
		return p, errors.New("no cpu and memory cgroups")
	}
	return p, nil
}

// read reads the counters of the cgroups at p.
func (c *cgroupReader) read(p cgroupPaths) (cgroupStats, error) {
	if c.unified {
		return readV2(p)
	}
	return readV1(p)
}

func readV1(p cgroupPaths) (cgroupStats, error) {
	var s cgroupStats
	var err error
	if s.cpuUsageNanos, err = readUint(filepath.Join(p.cpu, "cpuacct.usage")); err != nil {
		return s, err
	}
	usage, err := readUint(filepath.Join(p.memory, "memory.usage_in_bytes"))
	if err != nil {
		return s, err
	}
	kv, err := readKeyValues(filepath.Join(p.memory, "memory.stat"))
	if err != nil {
		return s, err
	}
	s.memory = memoryReading{
		usage:           usage,
		workingSet:      workingSet(usage, kv["total_inactive_file"]),
		rss:             kv["total_rss"],
		pageFaults:      kv["total_pgfault"],
		majorPageFaults: kv["total_pgmajfault"],
	}
	return s, nil
}

func readV2(p cgroupPaths) (cgroupStats, error) {
	var s cgroupStats
	cpu, err := readKeyValues(filepath.Join(p.cpu, "cpu.stat"))
	if err != nil {
		return s, err
	}
	usec, ok := cpu["usage_usec"]
	if !ok {
		return s, fmt.Errorf("%s: no usage_usec", filepath.Join(p.cpu, "cpu.stat"))
	}
	s.cpuUsageNanos = usec * 1000
	usage, err := readUint(filepath.Join(p.memory, "memory.current"))
	if err != nil {
		return s, err
	}
	kv, err := readKeyValues(filepath.Join(p.memory, "memory.stat"))
	if err != nil {
		return s, err
	}
	s.memory = memoryReading{
		usage:           usage,
		workingSet:      workingSet(usage, kv["inactive_file"]),
		rss:             kv["anon"],
		pageFaults:      kv["pgfault"],
		majorPageFaults: kv["pgmajfault"],
	}
	return s, nil
}

// rootMemory replaces the node's memory usage and working set read from
// /proc/meminfo with the root memory cgroup's on cgroup v1, as cadvisor
// reads the root container for upstream's kubelet (the eviction
// manager's memory.available is capacity less this working set). On
// cgroup v2 the root has no memory.current and the meminfo figures stay,
// as runc derives the root's usage from meminfo too.
func (c *cgroupReader) rootMemory(m *nodeMemory) {
	if c.unified {
		return
	}
	dir := filepath.Join(c.root, "memory")
	usage, err := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return
	}
	kv, err := readKeyValues(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return
	}
	m.usage = usage
	m.workingSet = workingSet(usage, kv["total_inactive_file"])
	if rss, ok := kv["total_rss"]; ok {
		m.rss = rss
	}
}

// NodeMemory reads the node's memory capacity and working set as the
// summary and the eviction manager see them (procfs at /proc, cgroups at
// /sys/fs/cgroup); capacity - workingSet is memory.available.
func NodeMemory() (capacity, workingSet uint64, err error) {
	m, err := readNodeMemory("/proc")
	if err != nil {
		return 0, 0, err
	}
	newCgroupReader("/sys/fs/cgroup", "/proc").rootMemory(&m)
	return m.capacity, m.workingSet, nil
}

// workingSet is usage less the inactive file cache, as cadvisor computes
// it for upstream's kubelet; never below zero.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// readUint reads a file holding one unsigned number ("max" is not one).
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readKeyValues reads a flat-keyed file of "key value" lines (memory.stat,
// cpu.stat, /proc/vmstat); lines that do not parse are skipped.
func readKeyValues(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]uint64, 64)
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}
