package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// The remotecommand protocols served, newest first. SPDY/3.1 carries
// v4 (exit codes in the error stream as a Status), v3 (terminal resize) and
// v2; WebSockets carry v5 (v4 plus the close signal, which wsstream
// handles), v4 and the unversioned channel protocols, binary or base64.
var spdyRemoteCommandProtocols = []string{
	remotecommand.StreamProtocolV4Name,
	remotecommand.StreamProtocolV3Name,
	remotecommand.StreamProtocolV2Name,
}

const (
	wsV4Base64Protocol = "v4." + wsstream.Base64ChannelWebSocketProtocol
)

// streamOptions are the streams an exec or attach asks for.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
}

// newStreamOptions reads the kubelet's stream parameters (input, output,
// error, tty: "1" when set), as upstream's kubelet does.
func newStreamOptions(r *http.Request) (streamOptions, error) {
	q := r.URL.Query()
	o := streamOptions{
		stdin:  q.Get(corev1.ExecStdinParam) == "1",
		stdout: q.Get(corev1.ExecStdoutParam) == "1",
		stderr: q.Get(corev1.ExecStderrParam) == "1",
		tty:    q.Get(corev1.ExecTTYParam) == "1",
	}
	if o.tty && o.stderr {
		// A terminal carries both outputs.
		o.stderr = false
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return o, nil
}

// session is the streams of one exec or attach, whatever protocol carries
// them. ctx ends when the client's connection does, or the request's
// context; close ends everything the session started.
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
	conn   io.Closer

	stdin          io.Reader // nil when not asked for
	stdout, stderr io.Writer // nil when not asked for
	resize         chan containerruntime.TerminalSize
	writeStatus    func(*apierrors.StatusError) error

	closers []func()
	wg      sync.WaitGroup
}

func newSession(r *http.Request, conn io.Closer) *session {
	ctx, cancel := context.WithCancel(r.Context())
	return &session{ctx: ctx, cancel: cancel, conn: conn, writeStatus: func(*apierrors.StatusError) error { return nil }}
}

// close closes the connection and waits for the session's goroutines.
func (s *session) close() {
	s.cancel()
	_ = s.conn.Close()
	for _, c := range s.closers {
		c()
	}
	s.wg.Wait()
}

// watchResize decodes the terminal sizes of the resize stream (JSON
// TerminalSize objects) until the stream ends, into s.resize with a
// terminal (without one they are dropped, so that a client sending them
// cannot stall the connection); gone is called at the end (the WebSocket
// resize channel only ends with the connection).
func (s *session) watchResize(stream io.Reader, tty bool, gone func()) {
	resize := make(chan containerruntime.TerminalSize)
	if tty {
		s.resize = resize
	}
	s.wg.Go(func() {
		dec := json.NewDecoder(stream)
		for {
			var size containerruntime.TerminalSize
			if err := dec.Decode(&size); err != nil {
				// A garbled size ends the resizing, not the session: the
				// stream is read to its end all the same.
				_, _ = io.Copy(io.Discard, stream)
				if gone != nil {
					gone()
				}
				return
			}
			if !tty {
				continue
			}
			select {
			case resize <- size:
			case <-s.ctx.Done():
				return
			}
		}
	})
}

// createStreams upgrades the request to a WebSocket or SPDY connection and
// gathers the asked streams. On failure the client has had its answer.
func (s *Server) createStreams(w http.ResponseWriter, r *http.Request, opts streamOptions) (*session, bool) {
	var sess *session
	var ok bool
	if wsstream.IsWebSocketRequest(r) {
		sess, ok = s.createWebSocketStreams(w, r, opts)
	} else {
		sess, ok = s.createSPDYStreams(w, r, opts)
	}
	if ok && opts.tty && sess.stdin != nil {
		// A terminal starts at the size the client sends first; what the
		// client types meanwhile must not hold that size up behind it (one
		// WebSocket reader feeds every channel).
		sess.stdin = sess.bufferStdin(sess.stdin)
	}
	return sess, ok
}

// maxBufferedStdin bounds the stdin read ahead of the process.
const maxBufferedStdin = 1 << 20

// bufferedStdin reads a stream ahead of its reader, up to maxBufferedStdin.
type bufferedStdin struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    bytes.Buffer
	err    error // the stream's end, once read
	closed bool  // the session's end
}

// bufferStdin starts reading stdin ahead; the session's close ends it.
func (s *session) bufferStdin(stdin io.Reader) io.Reader {
	b := &bufferedStdin{}
	b.cond = sync.NewCond(&b.mu)
	s.closers = append(s.closers, b.close)
	s.wg.Go(func() { b.pump(stdin) })
	return b
}

func (b *bufferedStdin) pump(r io.Reader) {
	p := make([]byte, 32<<10)
	for {
		n, err := r.Read(p)
		b.mu.Lock()
		for b.buf.Len() >= maxBufferedStdin && !b.closed {
			b.cond.Wait()
		}
		if b.closed {
			b.mu.Unlock()
			return
		}
		b.buf.Write(p[:n])
		if err != nil {
			b.err = err
		}
		b.cond.Broadcast()
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (b *bufferedStdin) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.buf.Len() == 0 && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	switch {
	case b.buf.Len() > 0:
		n, _ := b.buf.Read(p)
		b.cond.Broadcast()
		return n, nil
	case b.closed:
		return 0, io.EOF
	}
	return 0, b.err
}

func (b *bufferedStdin) close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
}

// createWebSocketStreams opens the channel protocols: 0 stdin, 1 stdout,
// 2 stderr, 3 error, 4 resize.
func (s *Server) createWebSocketStreams(w http.ResponseWriter, r *http.Request, opts streamOptions) (*session, bool) {
	ch := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		ch(opts.stdin, wsstream.ReadChannel),
		ch(opts.stdout, wsstream.WriteChannel),
		ch(opts.stderr, wsstream.WriteChannel),
		wsstream.WriteChannel,
		wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		"":                                      {Binary: true, Channels: channels},
		wsstream.ChannelWebSocketProtocol:       {Binary: true, Channels: channels},
		wsstream.Base64ChannelWebSocketProtocol: {Binary: false, Channels: channels},
		remotecommand.StreamProtocolV4Name:      {Binary: true, Channels: channels},
		wsV4Base64Protocol:                      {Binary: false, Channels: channels},
		remotecommand.StreamProtocolV5Name:      {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(s.cfg.StreamIdleTimeout)
	protocol, streams, err := conn.Open(w, r)
	if err != nil {
		s.logger.Info("websocket upgrade failed", zap.String("path", r.URL.Path), zap.Error(err))
		return nil, false
	}
	sess := newSession(r, conn)
	// An empty message on the first writable channel tells the client the
	// streams are ready.
	switch {
	case opts.stdout:
		_, _ = streams[remotecommand.StreamStdOut].Write(nil)
	case opts.stderr:
		_, _ = streams[remotecommand.StreamStdErr].Write(nil)
	default:
		_, _ = streams[remotecommand.StreamErr].Write(nil)
	}
	if opts.stdin {
		sess.stdin = streams[remotecommand.StreamStdIn]
	}
	if opts.stdout {
		sess.stdout = streams[remotecommand.StreamStdOut]
	}
	if opts.stderr {
		sess.stderr = streams[remotecommand.StreamStdErr]
	}
	if protocol == remotecommand.StreamProtocolV5Name || protocol == remotecommand.StreamProtocolV4Name || protocol == wsV4Base64Protocol {
		sess.writeStatus = v4WriteStatus(streams[remotecommand.StreamErr])
	} else {
		sess.writeStatus = v1WriteStatus(streams[remotecommand.StreamErr])
	}
	// The resize channel is always open; wsstream closes it (and every
	// channel) when the client goes.
	sess.watchResize(streams[remotecommand.StreamResize], opts.tty, sess.cancel)
	return sess, true
}

type streamAndReply struct {
	httpstream.Stream
	replySent <-chan struct{}
}

// createSPDYStreams negotiates the protocol, upgrades to SPDY/3.1 and waits
// for the client's streams (error, then stdin, stdout, stderr and resize
// as asked).
func (s *Server) createSPDYStreams(w http.ResponseWriter, r *http.Request, opts streamOptions) (*session, bool) {
	protocol, err := httpstream.Handshake(r, w, spdyRemoteCommandProtocols)
	if err != nil {
		// Handshake has answered the client.
		return nil, false
	}
	streamCh := make(chan streamAndReply)
	enough := make(chan struct{})
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, r, func(st httpstream.Stream, replySent <-chan struct{}) error {
		select {
		case streamCh <- streamAndReply{Stream: st, replySent: replySent}:
			return nil
		case <-enough:
			return fmt.Errorf("unexpected stream %q", st.Headers().Get(corev1.StreamType))
		}
	})
	if conn == nil {
		// The upgrader has answered the client.
		close(enough)
		return nil, false
	}
	conn.SetIdleTimeout(s.cfg.StreamIdleTimeout)
	sess := newSession(r, conn)
	expected := 1
	for _, on := range []bool{opts.stdin, opts.stdout, opts.stderr, opts.tty && protocol != remotecommand.StreamProtocolV2Name} {
		if on {
			expected++
		}
	}
	timer := time.NewTimer(s.cfg.StreamCreationTimeout)
	defer timer.Stop()
	fail := func(msg string) (*session, bool) {
		close(enough)
		s.logger.Info("remotecommand streams not created", zap.String("path", r.URL.Path), zap.String("reason", msg))
		sess.close()
		return nil, false
	}
	var errStream, resizeStream httpstream.Stream
	for received := 0; received < expected; {
		var st streamAndReply
		select {
		case st = <-streamCh:
		case <-timer.C:
			return fail("timed out waiting for client to create streams")
		case <-conn.CloseChan():
			return fail("connection closed")
		}
		// Nothing is written on a stream before its reply went out.
		select {
		case <-st.replySent:
		case <-timer.C:
			return fail("timed out waiting for client to create streams")
		case <-conn.CloseChan():
			return fail("connection closed")
		}
		switch t := st.Headers().Get(corev1.StreamType); t {
		case corev1.StreamTypeError:
			errStream = st.Stream
		case corev1.StreamTypeStdin:
			sess.stdin = st.Stream
		case corev1.StreamTypeStdout:
			sess.stdout = st.Stream
		case corev1.StreamTypeStderr:
			sess.stderr = st.Stream
		case corev1.StreamTypeResize:
			resizeStream = st.Stream
		default:
			s.logger.Info("unexpected stream type", zap.String("type", t))
			continue
		}
		received++
	}
	close(enough)
	if errStream != nil {
		if protocol == remotecommand.StreamProtocolV4Name {
			sess.writeStatus = v4WriteStatus(errStream)
		} else {
			sess.writeStatus = v1WriteStatus(errStream)
		}
	}
	if resizeStream != nil {
		sess.watchResize(resizeStream, opts.tty, nil)
	}
	sess.wg.Go(func() {
		select {
		case <-conn.CloseChan():
			sess.cancel()
		case <-sess.ctx.Done():
		}
	})
	return sess, true
}

// v4WriteStatus writes the Status as JSON (protocols v4 and v5).
func v4WriteStatus(w io.Writer) func(*apierrors.StatusError) error {
	return func(st *apierrors.StatusError) error {
		b, err := json.Marshal(st.Status())
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
}

// v1WriteStatus writes a failure's message as text, and nothing on success
// (protocols before v4).
func v1WriteStatus(w io.Writer) func(*apierrors.StatusError) error {
	return func(st *apierrors.StatusError) error {
		if st.Status().Status == metav1.StatusSuccess {
			return nil
		}
		_, err := w.Write([]byte(st.Error()))
		return err
	}
}

// containerNotFound answers as upstream's kubelet does when the container
// is not running: kubectl shows "unable to upgrade connection: container
// not found ("c")".
func containerNotFound(w http.ResponseWriter, container string) {
	http.Error(w, fmt.Sprintf("container not found (%q)", container), http.StatusInternalServerError)
}

// serveExec runs the command of the query in the container, as upstream's
// kubelet serves /exec.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	ns, pod, uid, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container")
	opts, err := newStreamOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()[corev1.ExecCommandParam]
	if len(cmd) == 0 {
		http.Error(w, "you must specify at least one command for the container", http.StatusBadRequest)
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
	sess, ok := s.createStreams(w, r, opts)
	if !ok {
		return
	}
	defer sess.close()
	logger := s.logger.With(zap.String("namespace", ns), zap.String("pod", pod), zap.String("container", container))
	logger.Debug("exec", zap.Strings("command", cmd), zap.Bool("tty", opts.tty))
	code, err := s.cfg.Runtime.ExecStream(sess.ctx, id, cmd, containerruntime.Streams{
		Stdin: sess.stdin, Stdout: sess.stdout, Stderr: sess.stderr, TTY: opts.tty, Resize: sess.resize,
	})
	var st *apierrors.StatusError
	switch {
	case err != nil && sess.ctx.Err() != nil:
		logger.Debug("exec ended with its connection", zap.Error(err))
		return
	case err != nil:
		logger.Info("exec failed", zap.Strings("command", cmd), zap.Error(err))
		st = apierrors.NewInternalError(fmt.Errorf("error executing command in container: %w", err))
	case code != 0:
		st = exitStatus(cmd, code)
	default:
		st = &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusSuccess}}
	}
	if err := sess.writeStatus(st); err != nil {
		logger.Debug("write exec status", zap.Error(err))
	}
}

// exitStatus is the Status of a command that exited with code: reason
// NonZeroExitCode and the code as cause ExitCode, which kubectl turns into
// its own exit code.
func exitStatus(cmd []string, code int) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Reason:  remotecommand.NonZeroExitCodeReason,
		Message: fmt.Sprintf("command terminated with non-zero exit code: error executing command %v, exit code %d", cmd, code),
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(code),
		}}},
	}}
}
