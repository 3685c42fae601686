// Package logs writes container output in the CRI log format
// ("<RFC3339Nano> <stream> <F|P> <line>") under /var/log/pods.
package logs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// MaxLine is the longest line written as one entry; longer lines are split
// into partial (P) entries.
const MaxLine = 16 * 1024

// PodDir is the pod's log folder under root: <namespace>_<name>_<uid>.
func PodDir(root, namespace, name, uid string) string {
	return filepath.Join(root, fmt.Sprintf("%s_%s_%s", namespace, name, uid))
}

// ContainerPath is the log file of one run of a container.
func ContainerPath(root, namespace, name, uid, container string, restart int) string {
	return filepath.Join(PodDir(root, namespace, name, uid), container, fmt.Sprintf("%d.log", restart))
}

// File is a CRI log file shared by a container's stdout and stderr.
type File struct {
	mu  sync.Mutex
	f   *os.File
	now func() time.Time
}

// Create opens (appending) the log file at path, creating its folders.
func Create(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &File{f: f, now: time.Now}, nil
}

// Stream returns the writer of one stream ("stdout" or "stderr").
func (l *File) Stream(name string) *StreamWriter {
	return &StreamWriter{file: l, stream: name}
}

// Close closes the file.
func (l *File) Close() error { return l.f.Close() }

func (l *File) entry(stream string, tag byte, line []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	b.WriteString(l.now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteByte(tag)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
	_, err := l.f.Write(b.Bytes())
	return err
}

// StreamWriter turns a stream's bytes into CRI log entries, one per line.
type StreamWriter struct {
	file   *File
	stream string
	buf    []byte
}

var _ io.WriteCloser = (*StreamWriter)(nil)

// Write implements io.Writer.
func (w *StreamWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if err := w.emit('F', w.buf[:i]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= MaxLine {
		if err := w.file.entry(w.stream, 'P', w.buf[:MaxLine]); err != nil {
			return 0, err
		}
		w.buf = w.buf[MaxLine:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

func (w *StreamWriter) emit(tag byte, line []byte) error {
	for len(line) > MaxLine {
		if err := w.file.entry(w.stream, 'P', line[:MaxLine]); err != nil {
			return err
		}
		line = line[MaxLine:]
	}
	return w.file.entry(w.stream, tag, line)
}

// Close writes what remains of an unterminated last line.
func (w *StreamWriter) Close() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.file.entry(w.stream, 'F', w.buf)
	w.buf = nil
	return err
}
