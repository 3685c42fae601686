package pods

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/logs"
)

// Bounds of a termination message, upstream's (pkg/kubelet/container):
// at most 4 KiB of the termination message file; with
// FallbackToLogsOnError, at most the last 80 lines and 2 KiB of the logs.
const (
	maxTerminationMessageLength    = 4 * 1024
	maxTerminationMessageLogLength = 2 * 1024
	maxTerminationMessageLogLines  = 80
)

// terminationMessagePath is the container's terminationMessagePath, with
// the API's default.
func terminationMessagePath(c *corev1.Container) string {
	if c.TerminationMessagePath != "" {
		return c.TerminationMessagePath
	}
	return corev1.TerminationMessagePathDefault
}

// terminationFile is the node's file bind-mounted at the container's
// terminationMessagePath for its run restart.
func (w *worker) terminationFile(name string, restart int32) string {
	return filepath.Join(w.podDir(), "containers", name, strconv.Itoa(int(restart)))
}

// terminationMessageFile makes the (empty, world-writable, as upstream's:
// the container may run as any user) file of the container's run and
// returns its mount.
func (w *worker) terminationMessageFile(c *corev1.Container, restart int32) ([]specs.Mount, error) {
	p := w.terminationFile(c.Name, restart)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("termination message file: %w", err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return nil, fmt.Errorf("termination message file: %w", err)
	}
	_ = f.Close()
	if err := os.Chmod(p, 0o666); err != nil {
		return nil, fmt.Errorf("termination message file: %w", err)
	}
	return []specs.Mount{{
		Destination: terminationMessagePath(c), Type: "bind", Source: p,
		Options: []string{"rbind", "rprivate", "rw"},
	}}, nil
}

// terminationMessage is the message of the container's run restart that
// exited with code, as upstream's: the last 4 KiB of its termination
// message file; when that is empty, the policy FallbackToLogsOnError and
// the container failed, the end of its log.
func (w *worker) terminationMessage(pod *corev1.Pod, c *corev1.Container, restart, code int32) string {
	fallback := c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && code != 0
	p := w.terminationFile(c.Name, restart)
	data, err := readTail(p, maxTerminationMessageLength)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Sprintf("Error on reading termination log %s: %v", p, err)
	case len(data) > 0:
		return string(data)
	}
	if !fallback {
		return ""
	}
	lp := logs.ContainerPath(w.m.cfg.LogDir, pod.Namespace, pod.Name, string(pod.UID), c.Name, int(restart))
	msg, err := lastLogLines(lp, maxTerminationMessageLogLines, maxTerminationMessageLogLength)
	if err != nil {
		return fmt.Sprintf("Error on reading termination message from logs: %v", err)
	}
	return msg
}

// readTail reads at most the last max bytes of the file.
func readTail(path string, max int64) ([]byte, error) {
	data, _, err := readTailCut(path, max)
	return data, err
}

// readTailCut is readTail that also says whether the file's start was cut.
func readTailCut(path string, max int64) ([]byte, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	cut := false
	if off := fi.Size() - max; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, false, err
		}
		cut = true
	}
	data, err := io.ReadAll(io.LimitReader(f, max))
	return data, cut, err
}

// lastLogLines is the content of the last lines (at most maxLines, and
// maxBytes) of a CRI log file ("<time> <stream> <F|P> <content>"): partial
// entries are joined, as upstream's log reader does.
func lastLogLines(path string, maxLines int, maxBytes int64) (string, error) {
	// An entry adds a timestamp and tags of about 40 bytes to its content:
	// reading this much of the file's end is enough for maxBytes of content
	// on up to maxLines lines.
	raw, cut, err := readTailCut(path, maxBytes+int64(maxLines)*64)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	entries := bytes.Split(raw, []byte("\n"))
	if cut {
		// The first entry is cut by the tail read.
		entries = entries[1:]
	}
	var lines [][]byte
	var partial []byte
	for _, e := range entries {
		fields := bytes.SplitN(e, []byte(" "), 4)
		if len(fields) < 3 {
			continue
		}
		var content []byte
		if len(fields) == 4 {
			content = fields[3]
		}
		if string(fields[2]) == "P" {
			partial = append(partial, content...)
			continue
		}
		line := append(partial, content...)
		partial = nil
		lines = append(lines, append(line, '\n'))
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	out := bytes.Join(lines, nil)
	if int64(len(out)) > maxBytes {
		out = out[int64(len(out))-maxBytes:]
	}
	return string(out), nil
}
