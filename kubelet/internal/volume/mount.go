package volume

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

// mountAt returns the topmost mount whose mount point is path, if any.
func mountAt(path string) (mountinfo.Mount, bool, error) {
	ms, err := mountinfo.List()
	if err != nil {
		return mountinfo.Mount{}, false, err
	}
	path = filepath.Clean(path)
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].MountPoint == path {
			return ms[i], true, nil
		}
	}
	return mountinfo.Mount{}, false, nil
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
		if mi.FSType != "tmpfs" {
			return fmt.Errorf("%s is a %s mount, not tmpfs", dir, mi.FSType)
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
		mps, err := mountinfo.Under(dir)
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
