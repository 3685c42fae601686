// Package logs writes container output in the CRI log format
// ("<RFC3339Nano> <stream> <F|P> <line>") under /var/log/pods.
package logs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// Rotation bounds a container's log as upstream's kubelet does
// (--container-log-max-size, --container-log-max-files): once the file
// would pass MaxSize it is renamed <file>.<YYYYMMDD-hhmmss> and a new one
// started; rotated files but the newest are gzipped, and only the newest
// MaxFiles-1 rotated files are kept beside the current one. A zero MaxSize
// never rotates.
type Rotation struct {
	MaxSize  int64
	MaxFiles int
}

// File is a CRI log file shared by a container's stdout and stderr.
type File struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
	rot  Rotation
	now  func() time.Time
}

// Create opens (appending) the log file at path, creating its folders.
func Create(path string, rot Rotation) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	l := &File{path: path, rot: rot, now: time.Now}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

// rotate renames the current file aside, compresses the older rotated
// files, drops those beyond MaxFiles and opens a new file.
func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", l.path, err)
	}
	rotated := l.path + "." + l.now().UTC().Format("20060102-150405")
	for i := 1; ; i++ { // two rotations within a second
		if _, err := os.Lstat(rotated); errors.Is(err, os.ErrNotExist) {
			break
		}
		rotated = fmt.Sprintf("%s.%s-%d", l.path, l.now().UTC().Format("20060102-150405"), i)
	}
	if err := os.Rename(l.path, rotated); err != nil {
		if oerr := l.open(); oerr != nil {
			return errors.Join(fmt.Errorf("rotate %s: %w", l.path, err), oerr)
		}
		return fmt.Errorf("rotate %s: %w", l.path, err)
	}
	old, _ := filepath.Glob(l.path + ".*")
	sort.Strings(old) // timestamps sort by time
	for _, f := range old {
		if f != rotated && !strings.HasSuffix(f, ".gz") && !strings.HasSuffix(f, ".tmp") {
			if err := gzipFile(f); err != nil {
				return err
			}
		}
	}
	old, _ = filepath.Glob(l.path + ".*")
	sort.Strings(old)
	if keep := max(l.rot.MaxFiles-1, 1); len(old) > keep {
		for _, f := range old[:len(old)-keep] {
			_ = os.Remove(f)
		}
	}
	return l.open()
}

// gzipFile replaces f by f.gz.
func gzipFile(f string) error {
	in, err := os.Open(f)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := f + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f+".gz")
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compress %s: %w", f, err)
	}
	return os.Remove(f)
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
	if l.rot.MaxSize > 0 && l.size > 0 && l.size+int64(b.Len()) > l.rot.MaxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b.Bytes())
	l.size += int64(n)
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
