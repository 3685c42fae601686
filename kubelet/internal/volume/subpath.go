package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSubPathEscape is wrapped by the errors of a subPath that leaves its
// volume, directly or through a symlink.
var ErrSubPathEscape = errors.New("resolves outside the volume")

// maxSymlinks bounds the symlinks followed while resolving a subPath, as
// the kernel's ELOOP limit.
const maxSymlinks = 40

// openInRoot resolves rel inside the directory root without ever leaving
// it and returns an O_PATH descriptor of what it names. rel must be
// relative and free of ".."; symlinks met on the way are followed only as
// long as they stay within root (an absolute target counts as a host
// path). Every component is opened with O_NOFOLLOW relative to its parent's
// descriptor, so a symlink swapped in meanwhile is never followed blindly,
// and the descriptor returned pins the result against later renames. With
// mkdir, missing components are made as directories of mode perm (as
// upstream's SafeMakeDir).
func openInRoot(root, rel string, mkdir bool, perm os.FileMode) (*os.File, error) {
	if rel == "" || filepath.IsAbs(rel) {
		return nil, fmt.Errorf("subPath %q must be a relative path", rel)
	}
	for _, e := range strings.Split(rel, "/") {
		if e == ".." {
			return nil, fmt.Errorf("subPath %q must not contain '..': %w", rel, ErrSubPathEscape)
		}
	}
	canonRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("volume path: %w", err)
	}
	rootFd, err := unix.Open(canonRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open volume: %w", err)
	}
	defer unix.Close(rootFd)

	w := &rootWalker{root: rootFd, cur: -1}
	defer w.closeCur()
	todo := splitPath(rel)
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		if name == ".." {
			// Only from a symlink's target: a step back, never above root.
			if len(w.parts) == 0 {
				return nil, fmt.Errorf("subPath %q: a symlink %w", rel, ErrSubPathEscape)
			}
			if err := w.reopen(w.parts[:len(w.parts)-1]); err != nil {
				return nil, fmt.Errorf("subPath %q: %w", rel, err)
			}
			continue
		}
		fd, err := unix.Openat(w.dirFd(), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && mkdir {
			fd, err = w.mkdir(name, perm)
		}
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("subPath %q does not exist in the volume", rel)
			}
			return nil, fmt.Errorf("subPath %q: open %q: %w", rel, name, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("subPath %q: %w", rel, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := readlinkat(w.dirFd(), name)
			unix.Close(fd)
			if err != nil {
				return nil, fmt.Errorf("subPath %q: %w", rel, err)
			}
			if links++; links > maxSymlinks {
				return nil, fmt.Errorf("subPath %q: too many levels of symbolic links", rel)
			}
			if filepath.IsAbs(target) {
				// A host path: allowed only when it is inside the volume.
				t := filepath.Clean(target)
				if t != canonRoot && !strings.HasPrefix(t, canonRoot+"/") {
					return nil, fmt.Errorf("subPath %q: a symlink %w", rel, ErrSubPathEscape)
				}
				if err := w.reopen(nil); err != nil {
					return nil, err
				}
				todo = append(splitPath(strings.TrimPrefix(t, canonRoot)), todo...)
				continue
			}
			todo = append(splitPath(target), todo...)
		case unix.S_IFDIR:
			w.push(name, fd)
		default:
			if len(todo) > 0 {
				unix.Close(fd)
				return nil, fmt.Errorf("subPath %q: %q is not a directory", rel, name)
			}
			return os.NewFile(uintptr(fd), filepath.Join(append(w.parts, name)...)), nil
		}
	}
	// rel named a directory (or the root itself).
	fd, err := unix.Dup(w.dirFd())
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), filepath.Join(w.parts...)), nil
}

// rootWalker holds the directory reached so far below the root.
type rootWalker struct {
	root  int
	cur   int // -1: at the root
	parts []string
}

func (w *rootWalker) dirFd() int {
	if w.cur < 0 {
		return w.root
	}
	return w.cur
}

func (w *rootWalker) closeCur() {
	if w.cur >= 0 {
		unix.Close(w.cur)
		w.cur = -1
	}
}

func (w *rootWalker) push(name string, fd int) {
	w.closeCur()
	w.cur = fd
	w.parts = append(w.parts, name)
}

// reopen walks from the root to parts again, each component a directory
// and not a symlink (they were checked, but may have changed since).
func (w *rootWalker) reopen(parts []string) error {
	parts = append([]string(nil), parts...)
	w.closeCur()
	w.parts = nil
	for _, p := range parts {
		fd, err := unix.Openat(w.dirFd(), p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("reopen %q: %w", p, err)
		}
		w.push(p, fd)
	}
	return nil
}

// mkdir makes the directory name in the current one, sets its mode
// whatever the umask, and opens it without following symlinks.
func (w *rootWalker) mkdir(name string, perm os.FileMode) (int, error) {
	if err := unix.Mkdirat(w.dirFd(), name, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	dfd, err := unix.Openat(w.dirFd(), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	err = unix.Fchmod(dfd, uint32(perm.Perm()))
	unix.Close(dfd)
	if err != nil {
		return -1, err
	}
	return unix.Openat(w.dirFd(), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func readlinkat(dirFd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirFd, name, buf)
		if err != nil {
			return "", fmt.Errorf("readlink %q: %w", name, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<16 {
			return "", fmt.Errorf("readlink %q: target too long", name)
		}
	}
}

// splitPath splits a relative path into its elements, without "" and ".".
func splitPath(p string) []string {
	var out []string
	for _, e := range strings.Split(p, "/") {
		if e != "" && e != "." {
			out = append(out, e)
		}
	}
	return out
}

// bindSubPath resolves subPath inside the volume at volumePath (making it
// a directory when missing, as upstream) and bind-mounts what it names at
// target, through /proc/self/fd so that exactly the resolved file or
// directory is mounted even if the volume changes meanwhile. An earlier
// mount at target is replaced.
func bindSubPath(volumePath, subPath, target string) error {
	// An earlier mount goes first, so a refused subPath leaves none.
	if err := unmountAll(target); err != nil {
		return err
	}
	info, err := os.Stat(volumePath)
	if err != nil {
		return fmt.Errorf("volume path: %w", err)
	}
	f, err := openInRoot(volumePath, subPath, true, info.Mode().Perm())
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return err
	}
	// The mount point must be of the same kind as the source.
	if ti, err := os.Lstat(target); err == nil && ti.IsDir() != isDir {
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("replace subPath mount point: %w", err)
		}
	}
	if isDir {
		if err := os.Mkdir(target, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	} else {
		tf, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o640)
		if err != nil {
			return err
		}
		tf.Close()
	}
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount subPath: %w", err)
	}
	return nil
}
