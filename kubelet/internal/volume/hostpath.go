package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// hostPath is a path of the node's, checked against its type.
type hostPath struct {
	source *corev1.HostPathVolumeSource
}

func (h *hostPath) SetUp(context.Context, *corev1.Pod) (string, error) {
	t := corev1.HostPathUnset
	if h.source.Type != nil {
		t = *h.source.Type
	}
	if err := checkHostPathType(h.source.Path, t); err != nil {
		return "", err
	}
	return h.source.Path, nil
}

// TearDown leaves the node's path alone.
func (h *hostPath) TearDown() error { return nil }

// checkHostPathType checks (or makes) path as upstream's hostPath type
// checker does. The unset type checks nothing, but a missing path is made
// a directory, as the CRI runtimes do before bind-mounting it.
func checkHostPathType(path string, t corev1.HostPathType) error {
	if path == "" || path[0] != '/' {
		return fmt.Errorf("hostPath %q is not an absolute path", path)
	}
	info, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath type check failed: %w", err)
	}
	mode := fs.FileMode(0)
	if exists {
		mode = info.Mode()
	}
	switch t {
	case corev1.HostPathUnset:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("create hostPath %s: %w", path, err)
			}
		}
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath type check failed: create directory %s: %w", path, err)
			}
			return nil
		}
		if !mode.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", path)
		}
	case corev1.HostPathDirectory:
		if !exists || !mode.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", path)
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fmt.Errorf("hostPath type check failed: create file %s: %w", path, err)
			}
			return f.Close()
		}
		if !mode.IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", path)
		}
	case corev1.HostPathFile:
		if !exists || !mode.IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", path)
		}
	case corev1.HostPathSocket:
		if !exists || mode.Type() != fs.ModeSocket {
			return fmt.Errorf("hostPath type check failed: %s is not a socket file", path)
		}
	case corev1.HostPathCharDev:
		if !exists || mode.Type() != fs.ModeDevice|fs.ModeCharDevice {
			return fmt.Errorf("hostPath type check failed: %s is not a character device", path)
		}
	case corev1.HostPathBlockDev:
		if !exists || mode.Type() != fs.ModeDevice {
			return fmt.Errorf("hostPath type check failed: %s is not a block device", path)
		}
	default:
		return fmt.Errorf("hostPath type %q is not a valid type", t)
	}
	return nil
}
