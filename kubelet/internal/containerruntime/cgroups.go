package containerruntime

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

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// unifiedCgroups reports whether the node runs cgroup v2 only (no v1
// memory hierarchy).
func unifiedCgroups() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// memoryCgroupDir is the memory cgroup of a container's cgroupsPath (the
// cgroupfs driver's absolute path).
func memoryCgroupDir(path string) string {
	if unifiedCgroups() {
		return filepath.Join(cgroupRoot, path)
	}
	return filepath.Join(cgroupRoot, "memory", path)
}

// swapLimitSupported reports whether the memory controller limits swap,
// so that a memory limit can also cap memory+swap, as the CRI does.
func swapLimitSupported() bool {
	p := filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes")
	if unifiedCgroups() {
		// The root has no memory.swap.max: look in the kubelet's own
		// cgroup, as containerd does.
		b, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return false
		}
		own := ""
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				own = rest
			}
		}
		p = filepath.Join(cgroupRoot, own, "memory.swap.max")
	}
	_, err := os.Stat(p)
	return err == nil
}

// oomKills is the number of processes the OOM killer killed in the
// cgroup at path: memory.events' oom_kill on cgroup v2, memory.oom_control's
// on v1. A missing cgroup has none.
func oomKills(path string) (int, error) {
	if path == "" {
		return 0, nil
	}
	file, key := "memory.oom_control", "oom_kill"
	if unifiedCgroups() {
		file = "memory.events"
	}
	f, err := os.Open(filepath.Join(memoryCgroupDir(path), file))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if ok && k == key {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, s.Err()
}

// cgroupMounts are the mount points of the node's cgroup hierarchies
// (v1 controllers, named ones and the v2 tree).
func cgroupMounts() ([]string, error) {
	ms, err := mountinfo.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			out = append(out, m.MountPoint)
		}
	}
	return out, nil
}

// RemoveCgroup removes the cgroup at path (a pod's, whose containers are
// all gone) from every hierarchy, children first. A cgroup already gone
// is no error.
func RemoveCgroup(path string) error {
	path = filepath.Clean("/" + path)
	if path == "/" {
		return errors.New("refusing to remove the root cgroup")
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return fmt.Errorf("list cgroup mounts: %w", err)
	}
	var errs []error
	for _, m := range mounts {
		if err := removeCgroupDir(filepath.Join(m, path)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupDir rmdirs a cgroup directory and its child cgroups (a
// cgroup's files go with it; only directories are removed).
func removeCgroupDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupDir(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	return nil
}
