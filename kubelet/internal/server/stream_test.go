package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/net/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// fakeRuntime runs a few canned commands in container "c" of pod
// "default/p", and forwards every port to echo.
type fakeRuntime struct {
	echo    string // host:port of an echo server
	started chan struct{}
}

func (f *fakeRuntime) RunningContainer(_ context.Context, ns, pod, _, container string) (string, error) {
	if ns != "default" || pod != "p" || container != "c" {
		return "", fmt.Errorf("container %q: %w", container, containerruntime.ErrNotRunning)
	}
	return "id-c", nil
}

func (f *fakeRuntime) ExecStream(ctx context.Context, _ string, cmd []string, s containerruntime.Streams) (int, error) {
	switch cmd[0] {
	case "cat":
		_, err := io.Copy(s.Stdout, s.Stdin)
		return 0, err
	case "exit":
		_, _ = io.WriteString(s.Stdout, "out")
		_, _ = io.WriteString(s.Stderr, "err")
		return strconv.Atoi(cmd[1])
	case "size":
		select {
		case size := <-s.Resize:
			_, _ = fmt.Fprintf(s.Stdout, "%dx%d", size.Width, size.Height)
			return 0, nil
		case <-time.After(5 * time.Second):
			return 0, errors.New("no terminal size")
		}
	case "block":
		close(f.started)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return 0, errors.New(`exec: "` + cmd[0] + `": executable file not found in $PATH`)
}

func (f *fakeRuntime) WaitExit(context.Context, string) (<-chan struct{}, error) {
	return nil, errors.New("not faked")
}

func (f *fakeRuntime) PodNetNS(_ context.Context, ns, pod, _ string) (string, error) {
	if ns != "default" || pod != "p" {
		return "", containerruntime.ErrNotRunning
	}
	return "/run/netns/p", nil
}

func (f *fakeRuntime) DialPort(ctx context.Context, _ string, port uint16) (net.Conn, error) {
	if port == 1 {
		return nil, errors.New("connection refused")
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", f.echo)
}

// echoServer echoes each connection until the client ends its side.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	return l.Addr().String()
}

type testServer struct {
	srv    *Server
	ts     *httptest.Server
	rt     *fakeRuntime
	cancel context.CancelFunc
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	rt := &fakeRuntime{echo: echoServer(t), started: make(chan struct{})}
	srv := New(Config{Runtime: rt, Logger: zaptest.NewLogger(t), StreamCreationTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	ts.Start()
	t.Cleanup(func() {
		cancel()
		ts.Close()
		srv.Close()
	})
	return &testServer{srv: srv, ts: ts, rt: rt, cancel: cancel}
}

// spdyConnect upgrades a POST to path to SPDY with the protocols.
func (s *testServer) spdyConnect(t *testing.T, path string, protocols ...string) (httpstream.Connection, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		req.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		t.Fatalf("SPDY upgrade of %s: %v", path, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, resp.Header.Get(httpstream.HeaderProtocolVersion)
}

func createStream(t *testing.T, conn httpstream.Connection, kv ...string) httpstream.Stream {
	t.Helper()
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	st, err := conn.CreateStream(h)
	if err != nil {
		t.Fatalf("create stream %v: %v", kv, err)
	}
	return st
}

// readAll reads r to its end, within a deadline.
func readAll(t *testing.T, what string, r io.Reader) string {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("read %s: %v", what, res.err)
		}
		return string(res.b)
	case <-time.After(10 * time.Second):
		t.Fatalf("read %s: timed out", what)
		return ""
	}
}

func exitCode(t *testing.T, statusJSON string) int {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal([]byte(statusJSON), &st); err != nil {
		t.Fatalf("status %q: %v", statusJSON, err)
	}
	if st.Status == metav1.StatusSuccess {
		return 0
	}
	if st.Reason != remotecommand.NonZeroExitCodeReason || st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Type != remotecommand.ExitCodeCauseType {
		t.Fatalf("status %q: want NonZeroExitCode with an ExitCode cause", statusJSON)
	}
	n, _ := strconv.Atoi(st.Details.Causes[0].Message)
	return n
}

func TestExecSPDY(t *testing.T) {
	s := startServer(t)

	// v4: stdin to stdout, then the exit status as JSON.
	conn, proto := s.spdyConnect(t, "/exec/default/p/c?command=cat&input=1&output=1", "v4.channel.k8s.io", "v3.channel.k8s.io")
	if proto != remotecommand.StreamProtocolV4Name {
		t.Fatalf("negotiated %q, want v4", proto)
	}
	errs := createStream(t, conn, corev1.StreamType, corev1.StreamTypeError)
	stdin := createStream(t, conn, corev1.StreamType, corev1.StreamTypeStdin)
	stdout := createStream(t, conn, corev1.StreamType, corev1.StreamTypeStdout)
	if _, err := io.WriteString(stdin, "hello\n"); err != nil {
		t.Fatal(err)
	}
	_ = stdin.Close()
	if got := readAll(t, "stdout", stdout); got != "hello\n" {
		t.Errorf("stdout %q, want hello", got)
	}
	if code := exitCode(t, readAll(t, "error stream", errs)); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}

	// v4: the exit code in the error stream, stderr apart.
	conn, _ = s.spdyConnect(t, "/exec/default/p/c?command=exit&command=3&output=1&error=1", "v4.channel.k8s.io")
	errs = createStream(t, conn, corev1.StreamType, corev1.StreamTypeError)
	stdout = createStream(t, conn, corev1.StreamType, corev1.StreamTypeStdout)
	stderr := createStream(t, conn, corev1.StreamType, corev1.StreamTypeStderr)
	if got := readAll(t, "stdout", stdout); got != "out" {
		t.Errorf("stdout %q, want out", got)
	}
	if got := readAll(t, "stderr", stderr); got != "err" {
		t.Errorf("stderr %q, want err", got)
	}
	if code := exitCode(t, readAll(t, "error stream", errs)); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}

	// v3: a terminal's size from the resize stream; failures as text.
	conn, _ = s.spdyConnect(t, "/exec/default/p/c?command=size&output=1&tty=1&error=1", "v3.channel.k8s.io")
	errs = createStream(t, conn, corev1.StreamType, corev1.StreamTypeError)
	stdout = createStream(t, conn, corev1.StreamType, corev1.StreamTypeStdout)
	resize := createStream(t, conn, corev1.StreamType, corev1.StreamTypeResize)
	if err := json.NewEncoder(resize).Encode(containerruntime.TerminalSize{Width: 97, Height: 33}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, "stdout", stdout); got != "97x33" {
		t.Errorf("stdout %q, want 97x33", got)
	}
	if got := readAll(t, "error stream", errs); got != "" {
		t.Errorf("v3 error stream %q on success, want nothing", got)
	}
	conn, _ = s.spdyConnect(t, "/exec/default/p/c?command=nope&output=1", "v3.channel.k8s.io")
	errs = createStream(t, conn, corev1.StreamType, corev1.StreamTypeError)
	createStream(t, conn, corev1.StreamType, corev1.StreamTypeStdout)
	if got := readAll(t, "error stream", errs); !strings.Contains(got, `error executing command in container: exec: "nope": executable file not found`) {
		t.Errorf("v3 error stream %q", got)
	}
}

// A kubelet refusal before the upgrade is plain text, as upstream's.
func TestExecRefusals(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/exec/default/p/other?command=true&output=1", http.StatusInternalServerError, `container not found ("other")`},
		{"/exec/default/p/c?command=true", http.StatusBadRequest, "you must specify at least 1 of stdin, stdout, stderr"},
		{"/exec/default/p/c?output=1", http.StatusBadRequest, "you must specify at least one command"},
		{"/portForward/default/gone", http.StatusInternalServerError, `pod not found ("gone_default")`},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.ts.URL+tc.path, nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "SPDY/3.1")
		req.Header.Set(httpstream.HeaderProtocolVersion, "v4.channel.k8s.io")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, b, tc.code, tc.body)
		}
	}
}

// wsDial opens a WebSocket to path with the subprotocols.
func (s *testServer) wsDial(t *testing.T, path string, protocols ...string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(s.ts.URL, "http")+path, s.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = protocols
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket %s: %v", path, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// wsReadChannels reads channel messages until the server closes,
// returning each channel's bytes.
func wsReadChannels(t *testing.T, ws *websocket.Conn) map[byte]string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	out := map[byte]string{}
	for {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("websocket receive: %v", err)
			}
			return out
		}
		if len(msg) > 0 {
			out[msg[0]] += string(msg[1:])
		}
	}
}

func TestExecWebSocket(t *testing.T) {
	s := startServer(t)

	// v5: stdin ends with the close signal.
	ws := s.wsDial(t, "/exec/default/p/c?command=cat&input=1&output=1", "v5.channel.k8s.io", "v4.channel.k8s.io")
	if got := ws.Config().Protocol; len(got) != 1 || got[0] != remotecommand.StreamProtocolV5Name {
		t.Fatalf("negotiated %v, want v5", got)
	}
	for _, m := range [][]byte{append([]byte{remotecommand.StreamStdIn}, "hello\n"...), {remotecommand.StreamClose, remotecommand.StreamStdIn}} {
		if err := websocket.Message.Send(ws, m); err != nil {
			t.Fatal(err)
		}
	}
	got := wsReadChannels(t, ws)
	if got[remotecommand.StreamStdOut] != "hello\n" || exitCode(t, got[remotecommand.StreamErr]) != 0 {
		t.Errorf("v5 cat: channels %q", got)
	}

	// v4: an exit code.
	ws = s.wsDial(t, "/exec/default/p/c?command=exit&command=7&output=1&error=1", "v4.channel.k8s.io")
	got = wsReadChannels(t, ws)
	if got[remotecommand.StreamStdOut] != "out" || got[remotecommand.StreamStdErr] != "err" || exitCode(t, got[remotecommand.StreamErr]) != 7 {
		t.Errorf("v4 exit 7: channels %q", got)
	}

	// v4: the resize channel, its first size not held up by what was typed
	// before it (the process has not read its stdin yet).
	ws = s.wsDial(t, "/exec/default/p/c?command=size&input=1&output=1&tty=1", "v4.channel.k8s.io")
	for _, m := range [][]byte{append([]byte{remotecommand.StreamStdIn}, "typed early"...), append([]byte{remotecommand.StreamResize}, `{"Width":80,"Height":24}`...)} {
		if err := websocket.Message.Send(ws, m); err != nil {
			t.Fatal(err)
		}
	}
	got = wsReadChannels(t, ws)
	if got[remotecommand.StreamStdOut] != "80x24" {
		t.Errorf("v4 resize: channels %q", got)
	}
}

// A client that goes ends its exec (the process's context), and the
// server's Close returns once sessions end with the server's context.
func TestExecEndsWithClientAndServer(t *testing.T) {
	s := startServer(t)
	ws := s.wsDial(t, "/exec/default/p/c?command=block&output=1", "v5.channel.k8s.io")
	<-s.rt.started
	_ = ws.Close()
	waitDone(t, "the exec to end with its client", s.srv)

	s = startServer(t)
	conn, _ := s.spdyConnect(t, "/exec/default/p/c?command=block&output=1", "v4.channel.k8s.io")
	createStream(t, conn, corev1.StreamType, corev1.StreamTypeError)
	createStream(t, conn, corev1.StreamType, corev1.StreamTypeStdout)
	<-s.rt.started
	s.cancel()
	waitDone(t, "the exec to end with the server", s.srv)
}

func waitDone(t *testing.T, what string, srv *Server) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// portForwardSPDY forwards one connection over conn: data in, echo out.
func portForwardSPDY(t *testing.T, conn httpstream.Connection, port, id, data string) (string, string) {
	t.Helper()
	errs := createStream(t, conn, corev1.StreamType, corev1.StreamTypeError, corev1.PortHeader, port, corev1.PortForwardRequestIDHeader, id)
	st := createStream(t, conn, corev1.StreamType, corev1.StreamTypeData, corev1.PortHeader, port, corev1.PortForwardRequestIDHeader, id)
	if _, err := io.WriteString(st, data); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	return readAll(t, "data stream", st), readAll(t, "error stream", errs)
}

func TestPortForwardSPDY(t *testing.T) {
	s := startServer(t)
	conn, proto := s.spdyConnect(t, "/portForward/default/p", "portforward.k8s.io")
	if proto != "portforward.k8s.io" {
		t.Fatalf("negotiated %q", proto)
	}
	for i := range 3 {
		data := strings.Repeat("x", 100000) + strconv.Itoa(i)
		if got, errs := portForwardSPDY(t, conn, "8080", strconv.Itoa(i), data); got != data || errs != "" {
			t.Errorf("connection %d: %d bytes back of %d, error stream %q", i, len(got), len(data), errs)
		}
	}
	if _, errs := portForwardSPDY(t, conn, "1", "9", "x"); !strings.Contains(errs, "error forwarding port 1 to pod p") || !strings.Contains(errs, "connection refused") {
		t.Errorf("refused port: error stream %q", errs)
	}
}

// kubectl 1.31+ tunnels the SPDY port-forward protocol in WebSocket binary
// messages.
func TestPortForwardTunneledSPDY(t *testing.T) {
	s := startServer(t)
	ws := s.wsDial(t, "/portForward/default/p", "SPDY/3.1+portforward.k8s.io")
	ws.PayloadType = websocket.BinaryFrame
	conn, err := spdy.NewClientConnection(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, errs := portForwardSPDY(t, conn, "8080", "0", "through the tunnel"); got != "through the tunnel" || errs != "" {
		t.Errorf("tunneled: %q, error stream %q", got, errs)
	}
}

func TestPortForwardWebSocket(t *testing.T) {
	s := startServer(t)
	ws := s.wsDial(t, "/portForward/default/p?port=8080", "v4.channel.k8s.io")
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	receive := func() []byte {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// Each channel starts with the port, little-endian.
	seen := map[byte]uint16{}
	for range 2 {
		m := receive()
		if len(m) != 3 {
			t.Fatalf("first message %v, want channel and port", m)
		}
		seen[m[0]] = binary.LittleEndian.Uint16(m[1:])
	}
	if seen[0] != 8080 || seen[1] != 8080 {
		t.Fatalf("port prefixes %v", seen)
	}
	if err := websocket.Message.Send(ws, append([]byte{0}, "ping"...)); err != nil {
		t.Fatal(err)
	}
	if m := receive(); string(m) != "\x00ping" {
		t.Errorf("echo %q", m)
	}
}
