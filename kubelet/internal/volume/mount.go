package volume

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountInfo is one mount of /proc/self/mountinfo.
type mountInfo struct {
	mountPoint string
	fsType     string
	options    string // per-superblock options (size=... for tmpfs)
}

// listMounts reads the kubelet's mount table.
func listMounts() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return parseMountInfo(f)
}

// parseMountInfo parses the lines of a mountinfo file.
func parseMountInfo(r io.Reader) ([]mountInfo, error) {
	var out []mountInfo
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(s.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		mi := mountInfo{mountPoint: unescapeMountPath(fields[4]), fsType: fields[sep+1]}
		if sep+3 < len(fields) {
			mi.options = fields[sep+3]
		}
		out = append(out, mi)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsUnder returns the mount points at dir or below it, deepest (most
// recently mounted) first: the order to unmount them in.
func mountsUnder(dir string) ([]string, error) {
	ms, err := listMounts()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var out []string
	for i := len(ms) - 1; i >= 0; i-- {
		p := ms[i].mountPoint
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, nil
}

// mountAt returns the topmost mount whose mount point is path, if any.
func mountAt(path string) (mountInfo, bool, error) {
	ms, err := listMounts()
	if err != nil {
		return mountInfo{}, false, err
	}
	path = filepath.Clean(path)
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].mountPoint == path {
			return ms[i], true, nil
		}
	}
	return mountInfo{}, false, nil
}

// isMountPoint says whether something is mounted at path.
func isMountPoint(path string) (bool, error) {
	_, ok, err := mountAt(path)
	return ok, err
}

// mountTmpfs mounts a tmpfs at dir unless one is there already; size 0
// leaves the kernel's default (half the memory).
func mountTmpfs(dir string, size int64) error {
	mi, ok, err := mountAt(dir)
	if err != nil {
		return err
	}
	if ok {
		if mi.fsType != "tmpfs" {
			return fmt.Errorf("%s is a %s mount, not tmpfs", dir, mi.fsType)
		}
		return nil
	}
	opts := ""
	if size > 0 {
		opts = "size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// unmountAll unmounts every mount at dir or below it. A busy mount is
// detached (lazily unmounted) so that nothing stays reachable under dir.
func unmountAll(dir string) error {
	// Mounts can be stacked: go on until none is left.
	for range 16 {
		mps, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			err := unix.Unmount(mp, unix.UMOUNT_NOFOLLOW)
			switch {
			case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			case errors.Is(err, unix.EBUSY):
				if err := unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
					return fmt.Errorf("detach %s: %w", mp, err)
				}
			default:
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	return fmt.Errorf("mounts remain under %s after unmounting", dir)
}
