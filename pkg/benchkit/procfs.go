// Package benchkit holds what the components' benchmark tools share: the
// machine description, CPU and memory of a process from /proc, percentiles,
// number formatting and the sections of docs/benchmarks.md.
package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPUModel  string
	Cores     int
	MemoryMiB int64
	Kernel    string
	GoVersion string
	// TempFS is the file system of the temporary directory holding etcd's
	// data (it decides what an fsync costs).
	TempFS string
	// LoadAvg is the 1-minute load average when the run started: other
	// work on the machine shares its cores with the benchmark.
	LoadAvg string
}

func (m Machine) String() string {
	s := fmt.Sprintf("%s, %d cores, %s RAM, Linux %s, %s, etcd data on %s",
		m.CPUModel, m.Cores, FormatBytes(m.MemoryMiB<<20), m.Kernel, m.GoVersion, m.TempFS)
	if m.LoadAvg != "" {
		s += ", load average " + m.LoadAvg + " at the start"
	}
	return s
}

// DetectMachine reads the machine's description from /proc.
func DetectMachine(tmpDir string) Machine {
	m := Machine{CPUModel: "unknown", Cores: runtime.NumCPU(), Kernel: "unknown", GoVersion: runtime.Version(), TempFS: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, err := readKB("/proc/meminfo", "MemTotal"); err == nil {
		m.MemoryMiB = kb / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg = f[0]
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(tmpDir, &st); err == nil {
		m.TempFS = fsName(int64(st.Type))
	}
	return m
}

func fsName(magic int64) string {
	switch magic {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	case 0x2FC12FC1:
		return "zfs"
	default:
		return fmt.Sprintf("fs 0x%x", magic)
	}
}

// clockTicks is the kernel's USER_HZ: what /proc/<pid>/stat counts in.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

// ProcessCPU is the user plus system CPU time process pid has used.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b, clockTicks)
}

// parseStatCPU reads utime and stime (fields 14 and 15) from the contents
// of /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat []byte, ticks int64) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(ticks), nil
}

// ProcessRSS returns the resident set size and its peak (VmRSS, VmHWM) of
// process pid, in bytes.
func ProcessRSS(pid int) (rss, peak int64, err error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	rss, err = readKB(path, "VmRSS")
	if err != nil {
		return 0, 0, err
	}
	peak, err = readKB(path, "VmHWM")
	if err != nil {
		return 0, 0, err
	}
	return rss << 10, peak << 10, nil
}

// readKB reads a "Key:   123 kB" line of a /proc file.
func readKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		return strconv.ParseInt(v, 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// WaitIdle waits until the processes pids together use at most share of
// one core over a window, and returns how long that took. It gives up at
// ctx's end or after limit, returning the error.
func WaitIdle(ctx context.Context, pids []int, share float64, window, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	total := func() (time.Duration, error) {
		var sum time.Duration
		for _, pid := range pids {
			c, err := ProcessCPU(pid)
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(window)
	defer tick.Stop()
	last, err := total()
	if err != nil {
		return 0, err
	}
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-deadline.C:
			return time.Since(start), fmt.Errorf("processes %v still busy after %v", pids, limit)
		case now := <-tick.C:
			cur, err := total()
			if err != nil {
				return time.Since(start), err
			}
			if float64(cur-last) <= share*float64(now.Sub(lastAt)) {
				return time.Since(start), nil
			}
			last, lastAt = cur, now
		}
	}
}
