package stats

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of /proc/stat's CPU times (USER_HZ, 100 on Linux
// whatever the kernel's HZ).
const userHZ = 100

// procStat is what the kubelet reads of /proc/stat.
type procStat struct {
	cpuUsageNanos uint64 // busy time of all CPUs: all but idle and iowait
	bootTime      int64  // Unix seconds
}

// readProcStat reads the node's cumulative CPU time and boot time.
func readProcStat(proc string) (procStat, error) {
	f, err := os.Open(filepath.Join(proc, "stat"))
	if err != nil {
		return procStat{}, err
	}
	defer f.Close()
	var out procStat
	found := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "cpu":
			// user nice system idle iowait irq softirq steal (guest and
			// guest_nice are counted in user and nice already).
			var busy uint64
			for i, f := range fields[1:] {
				if i >= 8 {
					break
				}
				if i == 3 || i == 4 {
					continue
				}
				v, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					return out, fmt.Errorf("/proc/stat cpu line: %w", err)
				}
				busy += v
			}
			out.cpuUsageNanos = busy * (1e9 / userHZ)
			found = true
		case "btime":
			if len(fields) > 1 {
				out.bootTime, _ = strconv.ParseInt(fields[1], 10, 64)
			}
		}
	}
	if err := s.Err(); err != nil {
		return out, err
	}
	if !found {
		return out, errors.New("/proc/stat has no cpu line")
	}
	return out, nil
}

// nodeMemory is the node's memory from /proc/meminfo and /proc/vmstat.
type nodeMemory struct {
	capacity uint64
	memoryReading
}

// readNodeMemory reads the node's memory as upstream's kubelet reports it
// for the node: usage is all memory not free, the working set that less
// the inactive file cache.
func readNodeMemory(proc string) (nodeMemory, error) {
	f, err := os.Open(filepath.Join(proc, "meminfo"))
	if err != nil {
		return nodeMemory{}, err
	}
	defer f.Close()
	kb := map[string]uint64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			kb[k] = n * 1024
		}
	}
	if err := s.Err(); err != nil {
		return nodeMemory{}, err
	}
	total, ok := kb["MemTotal"]
	if !ok {
		return nodeMemory{}, errors.New("/proc/meminfo has no MemTotal")
	}
	usage := total - min(total, kb["MemFree"])
	m := nodeMemory{capacity: total, memoryReading: memoryReading{
		usage:      usage,
		workingSet: workingSet(usage, kb["Inactive(file)"]),
		rss:        kb["AnonPages"],
	}}
	if vm, err := readKeyValues(filepath.Join(proc, "vmstat")); err == nil {
		m.pageFaults, m.majorPageFaults = vm["pgfault"], vm["pgmajfault"]
	}
	return m, nil
}

// ifaceReading is one interface's counters from /proc/<pid>/net/dev.
type ifaceReading struct {
	name                                 string
	rxBytes, rxErrors, txBytes, txErrors uint64
}

// readNetDev reads the interfaces of the network namespace of the process
// whose /proc directory is dir, less the loopback and, when skipVeth, the
// host ends of pods' veth pairs.
func readNetDev(dir string, skipVeth bool) ([]ifaceReading, error) {
	f, err := os.Open(filepath.Join(dir, "net", "dev"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ifaceReading
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue // the two header lines
		}
		name = strings.TrimSpace(name)
		if name == "lo" || (skipVeth && strings.HasPrefix(name, "veth")) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 11 {
			continue
		}
		var v [11]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out = append(out, ifaceReading{name: name, rxBytes: v[0], rxErrors: v[2], txBytes: v[8], txErrors: v[10]})
	}
	return out, s.Err()
}

// defaultInterface is the interface of the default IPv4 route in the
// network namespace of the process whose /proc directory is dir, "" when
// there is none.
func defaultInterface(dir string) string {
	f, err := os.Open(filepath.Join(dir, "net", "route"))
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		f := strings.Fields(s.Text())
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" {
			return f[0]
		}
	}
	return ""
}

// fsReading is a filesystem's or a folder's space and inodes.
type fsReading struct {
	capacity, available, used, inodes, inodesFree, inodesUsed uint64
	hasCapacity, tmpfs                                        bool
}

// statFS reads the filesystem holding path.
func statFS(path string) (fsReading, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsReading{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	r := fsReading{
		capacity:    st.Blocks * bs,
		available:   st.Bavail * bs,
		used:        (st.Blocks - st.Bfree) * bs,
		inodes:      st.Files,
		inodesFree:  st.Ffree,
		inodesUsed:  st.Files - st.Ffree,
		hasCapacity: true,
		tmpfs:       st.Type == unix.TMPFS_MAGIC,
	}
	return r, nil
}

// diskUsage is the space (allocated blocks) and inodes used by the files
// under dir, as du counts them; hard links are counted each time.
func diskUsage(dir string) (used, inodes uint64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		inodes++
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			used += uint64(st.Blocks) * 512
		} else {
			used += uint64(info.Size())
		}
		return nil
	})
	return used, inodes, err
}

// processCount is the number of processes (threads) on the node: the
// total of /proc/loadavg's fourth field ("running/total"), as upstream's
// kubelet reads it.
func processCount(proc string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(proc, "loadavg"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	_, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, fmt.Errorf("/proc/loadavg: %q", b)
	}
	return strconv.ParseInt(total, 10, 64)
}
