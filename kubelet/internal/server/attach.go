package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// serveAttach streams the output of the container's running process from
// now until it exits, as upstream's /attach does. The kubelet keeps a
// container's output in its CRI log, so attach follows that log; the
// kubelet gives containers no stdin, so what the client sends is dropped.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	ns, pod, uid, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container")
	opts, err := newStreamOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, err := s.cfg.Runtime.RunningContainer(r.Context(), ns, pod, uid, container)
	if err != nil {
		if errors.Is(err, containerruntime.ErrNotRunning) {
			containerNotFound(w, container)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	path, err := logFile(s.cfg.LogDir, ns, pod, container, false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sess, ok := s.createStreams(w, r, opts)
	if !ok {
		return
	}
	defer sess.close()
	if sess.stdin != nil {
		in := sess.stdin
		sess.wg.Go(func() { _, _ = io.Copy(io.Discard, in) })
	}
	exited, err := s.cfg.Runtime.WaitExit(sess.ctx, id)
	var st *apierrors.StatusError
	if err == nil {
		stdout, stderr := sess.stdout, sess.stderr
		if opts.tty {
			stderr = stdout
		}
		err = followCRILog(sess.ctx, f, stdout, stderr, exited)
	}
	switch {
	case err != nil && sess.ctx.Err() != nil:
		return
	case err != nil:
		s.logger.Info("attach failed", zap.String("namespace", ns), zap.String("pod", pod), zap.String("container", container), zap.Error(err))
		st = apierrors.NewInternalError(fmt.Errorf("error attaching to container: %w", err))
	default:
		st = &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusSuccess}}
	}
	_ = sess.writeStatus(st)
}

// followCRILog copies the entries appended to the CRI log f to stdout and
// stderr (each nil to drop its entries) until exited is closed, then copies
// what is left, or until ctx ends.
func followCRILog(ctx context.Context, f io.Reader, stdout, stderr io.Writer, exited <-chan struct{}) error {
	br := bufio.NewReaderSize(f, 64<<10)
	var pending []byte
	copyNew := func() error {
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				line = append(pending, line[:len(line)-1]...)
				pending = nil
				if werr := writeCRIEntry(line, stdout, stderr); werr != nil {
					return werr
				}
			} else if len(line) > 0 {
				pending = append(pending, line...)
			}
			if err != nil {
				return nil
			}
		}
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if err := copyNew(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return copyNew()
		case <-t.C:
		}
	}
}

// writeCRIEntry writes one CRI log line ("<time> <stream> <P|F> <content>")
// to the writer of its stream.
func writeCRIEntry(line []byte, stdout, stderr io.Writer) error {
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) < 3 {
		return nil
	}
	w := stdout
	if string(f[1]) == "stderr" {
		w = stderr
	}
	if w == nil {
		return nil
	}
	var out []byte
	if len(f) == 4 {
		out = f[3]
	}
	if string(f[2]) != "P" {
		out = append(out[:len(out):len(out)], '\n')
	}
	_, err := w.Write(out)
	return err
}
