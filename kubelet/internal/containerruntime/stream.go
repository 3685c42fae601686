package containerruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ErrNotRunning is wrapped by the errors of RunningContainer and PodNetNS
// when the pod has no such running container or sandbox.
var ErrNotRunning = errors.New("not running")

// TerminalSize is a terminal's size in characters, as the resize channel of
// the remotecommand protocols carries it.
type TerminalSize struct {
	Width  uint16
	Height uint16
}

// initialSizeWait bounds the wait for a terminal's first size.
const initialSizeWait = time.Second

// Streams are the standard streams of an interactive exec. A nil stream is
// not attached; with TTY, Stderr is ignored (the terminal carries both
// outputs) and Resize, when set, delivers the terminal's size changes.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	TTY    bool
	Resize <-chan TerminalSize
}

// labelFilter is a containerd filter matching every label of m.
func labelFilter(m map[string]string) string {
	f := ""
	for k, v := range m {
		if f != "" {
			f += ","
		}
		f += fmt.Sprintf("labels.%q==%q", k, v)
	}
	return f
}

// running returns the newest container matching labels whose task is
// running, with its task.
func (r *Runtime) running(ctx context.Context, labels map[string]string) (containerd.Container, containerd.Task, error) {
	cs, err := r.client.Containers(ctx, labelFilter(labels))
	if err != nil {
		return nil, nil, fmt.Errorf("list containers: %w", err)
	}
	var (
		best     containerd.Container
		bestTask containerd.Task
		bestTime time.Time
	)
	for _, c := range cs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != containerd.Running {
			continue
		}
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		if best == nil || info.CreatedAt.After(bestTime) {
			best, bestTask, bestTime = c, task, info.CreatedAt
		}
	}
	if best == nil {
		return nil, nil, ErrNotRunning
	}
	return best, bestTask, nil
}

// podLabels selects the containers of pod namespace/pod, of uid when set.
func podLabels(namespace, pod, uid, kind string) map[string]string {
	m := map[string]string{LabelPodNamespace: namespace, LabelPodName: pod, LabelKind: kind}
	if uid != "" {
		m[LabelPodUID] = uid
	}
	return m
}

// RunningContainer returns the id of the running container named container
// of pod namespace/pod (of that uid when uid is set). The error wraps
// ErrNotRunning when there is none.
func (r *Runtime) RunningContainer(ctx context.Context, namespace, pod, uid, container string) (string, error) {
	labels := podLabels(namespace, pod, uid, "container")
	labels[LabelContainer] = container
	c, _, err := r.running(nsCtx(ctx), labels)
	if err != nil {
		return "", fmt.Errorf("container %q of pod %s/%s: %w", container, namespace, pod, err)
	}
	return c.ID(), nil
}

// ExecStream runs cmd in the running container id, with the container's
// process settings (user, environment, working directory) and s attached,
// and returns its exit code once it has exited and its output is drained.
// End of s.Stdin closes the process's stdin. When ctx ends first the
// process is killed and the error wraps ctx.Err().
func (r *Runtime) ExecStream(ctx context.Context, id string, cmd []string, s Streams) (int, error) {
	ctx = nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: spec: %w", id, err)
	}
	if spec.Process == nil {
		return 0, fmt.Errorf("exec in %s: the container's spec has no process", id)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = s.TTY
	pspec.ConsoleSize = nil
	if s.TTY && s.Resize != nil {
		// The client sends its terminal's size first thing: the terminal
		// starts at that size, so a quick command does not see 0x0 (the
		// size cannot be set before the process starts but through the spec).
		select {
		case size, ok := <-s.Resize:
			if ok {
				pspec.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
			}
			r.logger.Debug("exec terminal size", zap.String("container", id), zap.Uint16("width", size.Width), zap.Uint16("height", size.Height))
		case <-time.After(initialSizeWait):
			r.logger.Debug("no terminal size from the client", zap.String("container", id))
		case <-ctx.Done():
			return 0, fmt.Errorf("exec in %s: %w", id, ctx.Err())
		}
	}

	var stdin *stdinCloser
	var in io.Reader
	if s.Stdin != nil {
		stdin = &stdinCloser{r: s.Stdin}
		in = stdin
	}
	stdout, stderr := s.Stdout, s.Stderr
	if s.TTY {
		stderr = nil
	}
	ioOpts := []cio.Opt{cio.WithStreams(in, stdout, stderr)}
	if s.TTY {
		ioOpts = append(ioOpts, cio.WithTerminal)
	}
	if r.fifoDir != "" {
		ioOpts = append(ioOpts, cio.WithFIFODir(r.fifoDir))
	}
	execID := "exec-" + randomID()
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(ioOpts...))
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	// The process is deleted (killed if need be) whatever happens, so no
	// exec is left in the shim; deleting it also drains its output.
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := proc.Delete(dctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.logger.Warn("delete exec process", zap.String("container", id), zap.String("exec", execID), zap.Error(err))
		}
	}
	statusC, err := proc.Wait(ctx)
	if err != nil {
		cleanup()
		return 0, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		cleanup()
		return 0, fmt.Errorf("exec in %s: start: %w", id, err)
	}
	if stdin != nil {
		// Closing stdin before Start would be lost: the shim opens it then.
		stdin.arm(func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := proc.CloseIO(cctx, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				r.logger.Debug("close exec stdin", zap.String("exec", execID), zap.Error(err))
			}
		})
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	if s.TTY && s.Resize != nil {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case size, ok := <-s.Resize:
					if !ok {
						return
					}
					if err := proc.Resize(ctx, uint32(size.Width), uint32(size.Height)); err != nil && !errdefs.IsNotFound(err) {
						r.logger.Debug("resize exec terminal", zap.String("exec", execID), zap.Error(err))
					}
				}
			}
		})
	}
	defer func() {
		close(done)
		wg.Wait()
	}()
	select {
	case st := <-statusC:
		cleanup()
		code, _, err := st.Result()
		if err != nil {
			return 0, fmt.Errorf("exec in %s: %w", id, err)
		}
		return int(code), nil
	case <-ctx.Done():
		cleanup()
		return 0, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
}

// stdinCloser reads an exec's stdin and, at its end, closes the process's
// stdin through containerd once arm has said how.
type stdinCloser struct {
	r    io.Reader
	mu   sync.Mutex
	eof  bool
	fn   func()
	once sync.Once
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.mu.Lock()
		s.eof = true
		fn := s.fn
		s.mu.Unlock()
		if fn != nil {
			s.once.Do(fn)
		}
	}
	return n, err
}

func (s *stdinCloser) arm(fn func()) {
	s.mu.Lock()
	s.fn = fn
	eof := s.eof
	s.mu.Unlock()
	if eof {
		s.once.Do(fn)
	}
}

// WaitExit returns a channel closed when the task of the running container
// id exits, or when ctx ends.
func (r *Runtime) WaitExit(ctx context.Context, id string) (<-chan struct{}, error) {
	ctx = nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", id, err)
	}
	statusC, err := task.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", id, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-statusC:
		case <-ctx.Done():
		}
	}()
	return done, nil
}

// PodNetNS returns the network namespace of the running sandbox of pod
// namespace/pod (of that uid when uid is set). The error wraps
// ErrNotRunning when there is none.
func (r *Runtime) PodNetNS(ctx context.Context, namespace, pod, uid string) (string, error) {
	ctx = nsCtx(ctx)
	c, task, err := r.running(ctx, podLabels(namespace, pod, uid, "sandbox"))
	if err != nil {
		return "", fmt.Errorf("sandbox of pod %s/%s: %w", namespace, pod, err)
	}
	if spec, err := c.Spec(ctx); err == nil && spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace && ns.Path != "" {
				return ns.Path, nil
			}
		}
	}
	return fmt.Sprintf("/proc/%d/ns/net", task.Pid()), nil
}

// DialPort connects to 127.0.0.1:port inside the network namespace at
// netns (a pod's, from PodNetNS), as the CRI's port forwarding does.
func (r *Runtime) DialPort(ctx context.Context, netns string, port uint16) (net.Conn, error) {
	return DialInNetNS(ctx, netns, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
}

// DialInNetNS opens a TCP connection to addr from inside the network
// namespace at nsPath. The socket is made on an OS thread that enters the
// namespace and is never unlocked, so the Go runtime ends that thread with
// the goroutine instead of reusing it in the wrong namespace; the
// connection, once made, belongs to the namespace wherever it is used.
func DialInNetNS(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(nsPath)
		if err != nil {
			res <- result{err: fmt.Errorf("open network namespace: %w", err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{err: fmt.Errorf("enter network namespace %s: %w", nsPath, err)}
			return
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			err = fmt.Errorf("connect to %s inside network namespace %q: %w", addr, nsPath, err)
		}
		res <- result{conn: c, err: err}
	}()
	r := <-res
	return r.conn, r.err
}
