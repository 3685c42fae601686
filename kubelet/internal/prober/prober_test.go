package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// recordedEvent is one Eventf call.
type recordedEvent struct {
	ref               *corev1.ObjectReference
	eventType, reason string
	message           string
}

type fakeRecorder struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (r *fakeRecorder) Eventf(obj runtime.Object, eventType, reason, _ string, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, _ := obj.(*corev1.ObjectReference)
	r.events = append(r.events, recordedEvent{ref: ref, eventType: eventType, reason: reason, message: fmt.Sprintf(format, args...)})
}

func (r *fakeRecorder) all() []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events...)
}

func testPod(c corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
	}
}

// hostPort splits a test server's URL into host and port.
func hostPort(t *testing.T, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), port
}

func TestHTTPProbe(t *testing.T) {
	var gotHeaders sync.Map
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("fine")) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/notfound", http.NotFound)
	mux.HandleFunc("/local-redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/remote-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://probe-target.invalid/ok", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		gotHeaders.Store("User-Agent", r.Header.Get("User-Agent"))
		gotHeaders.Store("X-Custom", r.Header.Get("X-Custom"))
		gotHeaders.Store("Host", r.Host)
		gotHeaders.Store("Accept", r.Header.Get("Accept"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	host, port := hostPort(t, srv.URL)
	_, tlsPort := hostPort(t, tlsSrv.URL)

	for _, tc := range []struct {
		name    string
		action  corev1.HTTPGetAction
		ports   []corev1.ContainerPort
		want    outcome
		wantOut string // a substring of the output
		wantErr string // a substring of the error
	}{
		{name: "200", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port))}, want: outSuccess, wantOut: "fine"},
		{name: "500", action: corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt32(int32(port))}, want: outFailure, wantOut: "HTTP probe failed with statuscode: 500"},
		{name: "404", action: corev1.HTTPGetAction{Path: "/notfound", Port: intstr.FromInt32(int32(port))}, want: outFailure, wantOut: "HTTP probe failed with statuscode: 404"},
		{name: "redirect to the same host is followed", action: corev1.HTTPGetAction{Path: "/local-redirect", Port: intstr.FromInt32(int32(port))}, want: outSuccess, wantOut: "fine"},
		{name: "redirect elsewhere is not followed", action: corev1.HTTPGetAction{Path: "/remote-redirect", Port: intstr.FromInt32(int32(port))}, want: outWarning, wantOut: "Probe terminated redirects"},
		{name: "timeout", action: corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt32(int32(port))}, want: outFailure, wantOut: "Client.Timeout exceeded"},
		{name: "https without verification", action: corev1.HTTPGetAction{Path: "/ok", Scheme: corev1.URISchemeHTTPS, Port: intstr.FromInt32(int32(tlsPort))}, want: outSuccess, wantOut: "fine"},
		{name: "named port", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("web")},
			ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}, want: outSuccess},
		{name: "number as a string", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString(strconv.Itoa(port))}, want: outSuccess},
		{name: "unknown named port", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("metrics")},
			ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}, want: outUnknown, wantErr: `container "c" has no port named "metrics"`},
		{name: "port out of range", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(70000)}, want: outUnknown, wantErr: "invalid port number: 70000"},
		{name: "connection refused", action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(closedPort(t)))}, want: outFailure, wantOut: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManager(Config{Logger: zaptest.NewLogger(t)})
			c := corev1.Container{Name: "c", Ports: tc.ports}
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &tc.action}, TimeoutSeconds: 1}
			got, out, err := m.runOnce(context.Background(), p, &corev1.PodStatus{PodIP: host}, &c, "containerd://id")
			if got != tc.want {
				t.Errorf("outcome = %s, want %s (output %q, err %v)", got, tc.want, out, err)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("output = %q, want it to contain %q", out, tc.wantOut)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		m := NewManager(Config{Logger: zaptest.NewLogger(t)})
		c := corev1.Container{Name: "c"}
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/headers", Port: intstr.FromInt32(int32(port)),
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Custom", Value: "v1"}, {Name: "Host", Value: "example.test"}, {Name: "Accept", Value: ""}},
		}}}
		if got, out, err := m.runOnce(context.Background(), p, &corev1.PodStatus{PodIP: host}, &c, ""); got != outSuccess || err != nil {
			t.Fatalf("outcome = %s, %q, %v; want success", got, out, err)
		}
		for k, want := range map[string]string{"User-Agent": userAgent, "X-Custom": "v1", "Host": "example.test", "Accept": ""} {
			if v, _ := gotHeaders.Load(k); v != want {
				t.Errorf("header %s = %q, want %q", k, v, want)
			}
		}
	})
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name    string
		port    intstr.IntOrString
		host    string
		ports   []corev1.ContainerPort
		want    outcome
		wantOut string
	}{
		{name: "open", port: intstr.FromInt32(int32(open)), want: outSuccess},
		{name: "open by name", port: intstr.FromString("svc"), ports: []corev1.ContainerPort{{Name: "svc", ContainerPort: int32(open)}}, want: outSuccess},
		{name: "explicit host", port: intstr.FromInt32(int32(open)), host: "127.0.0.1", want: outSuccess},
		{name: "closed", port: intstr.FromInt32(int32(closedPort(t))), want: outFailure, wantOut: "connection refused"},
		{name: "unknown name", port: intstr.FromString("nope"), want: outUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManager(Config{Logger: zaptest.NewLogger(t)})
			c := corev1.Container{Name: "c", Ports: tc.ports}
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: tc.port, Host: tc.host}}}
			podIP := "127.0.0.1"
			if tc.host != "" {
				podIP = "192.0.2.1" // unused: the probe's host wins
			}
			got, out, _ := m.runOnce(context.Background(), p, &corev1.PodStatus{PodIP: podIP}, &c, "")
			if got != tc.want || !strings.Contains(out, tc.wantOut) {
				t.Errorf("outcome = %s, %q; want %s, containing %q", got, out, tc.want, tc.wantOut)
			}
		})
	}
}

func TestGRPCProbe(t *testing.T) {
	serve := func(t *testing.T, withHealth bool) int {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		if withHealth {
			hs := health.NewServer()
			hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
			hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
			healthpb.RegisterHealthServer(s, hs)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Serve(l) }()
		t.Cleanup(func() { s.Stop(); <-done })
		return l.Addr().(*net.TCPAddr).Port
	}
	healthy := serve(t, true)
	bare := serve(t, false)
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name    string
		port    int
		service *string
		want    outcome
		wantOut string
	}{
		{name: "server serving", port: healthy, want: outSuccess, wantOut: "service healthy"},
		{name: "service serving", port: healthy, service: str("up"), want: outSuccess},
		{name: "service not serving", port: healthy, service: str("down"), want: outFailure, wantOut: `service unhealthy (responded with "NOT_SERVING")`},
		{name: "unknown service", port: healthy, service: str("other"), want: outFailure, wantOut: "health rpc probe failed"},
		{name: "no health service", port: bare, want: outFailure, wantOut: "does not implement the grpc health protocol"},
		{name: "nothing listening", port: closedPort(t), want: outFailure, wantOut: "timeout: failed to connect service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManager(Config{Logger: zaptest.NewLogger(t)})
			c := corev1.Container{Name: "c"}
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(tc.port), Service: tc.service}}, TimeoutSeconds: 1}
			got, out, err := m.runOnce(context.Background(), p, &corev1.PodStatus{PodIP: "127.0.0.1"}, &c, "")
			if got != tc.want || !strings.Contains(out, tc.wantOut) || err != nil {
				t.Errorf("outcome = %s, %q, %v; want %s, containing %q", got, out, err, tc.want, tc.wantOut)
			}
		})
	}
}

// fakeExec answers Exec with canned results and records the calls.
type fakeExec struct {
	out  string
	code int
	err  error

	mu    sync.Mutex
	calls [][]string
	ids   []string
}

func (f *fakeExec) Exec(_ context.Context, id string, cmd []string, _ time.Duration) ([]byte, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, cmd)
	f.ids = append(f.ids, id)
	return []byte(f.out), f.code, f.err
}

func TestExecProbe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exec    *fakeExec
		want    outcome
		wantOut string
		wantErr bool
	}{
		{name: "exit 0", exec: &fakeExec{out: "ok"}, want: outSuccess, wantOut: "ok"},
		{name: "exit 1", exec: &fakeExec{out: "cat: can't open '/tmp/ready'", code: 1}, want: outFailure, wantOut: "can't open"},
		{name: "timeout", exec: &fakeExec{err: fmt.Errorf("exec: %w", context.DeadlineExceeded)}, want: outFailure, wantOut: `command "cat /tmp/hello" timed out`},
		{name: "runtime error", exec: &fakeExec{err: errors.New("container not running")}, want: outUnknown, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManager(Config{Exec: tc.exec, Logger: zaptest.NewLogger(t)})
			c := corev1.Container{Name: "c", Env: []corev1.EnvVar{{Name: "FILE", Value: "/tmp/hello"}}}
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "$(FILE)"}}}}
			got, out, err := m.runOnce(context.Background(), p, &corev1.PodStatus{}, &c, "containerd://abc")
			if got != tc.want || !strings.Contains(out, tc.wantOut) || (err != nil) != tc.wantErr {
				t.Errorf("outcome = %s, %q, %v; want %s, containing %q, error %v", got, out, err, tc.want, tc.wantOut, tc.wantErr)
			}
			if len(tc.exec.calls) != 1 || strings.Join(tc.exec.calls[0], " ") != "cat /tmp/hello" || tc.exec.ids[0] != "abc" {
				t.Errorf("exec calls = %q in %q, want [cat /tmp/hello] in abc", tc.exec.calls, tc.exec.ids)
			}
		})
	}
}

// TestProbeEvents checks the verdicts and the Events of whole probes, with
// upstream's messages.
func TestProbeEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	httpProbe := func(path string, p intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: p}}}
	}
	for _, tc := range []struct {
		name       string
		kind       Kind
		c          corev1.Container
		want       Result
		wantErr    bool
		wantReason string
		wantMsg    string
	}{
		{name: "liveness failed", kind: Liveness, c: corev1.Container{Name: "c", LivenessProbe: httpProbe("/healthz", intstr.FromInt32(int32(port)))},
			want: Failure, wantReason: ReasonUnhealthy, wantMsg: "Liveness probe failed: HTTP probe failed with statuscode: 500"},
		{name: "readiness passed", kind: Readiness, c: corev1.Container{Name: "c", ReadinessProbe: httpProbe("/", intstr.FromInt32(int32(port)))},
			want: Success},
		{name: "no probe", kind: Startup, c: corev1.Container{Name: "c"}, want: Success},
		{name: "unknown named port", kind: Readiness, c: corev1.Container{Name: "c", ReadinessProbe: httpProbe("/", intstr.FromString("admin"))},
			want: Failure, wantErr: true, wantReason: ReasonUnhealthy,
			wantMsg: `Readiness probe errored and resulted in unknown state: container "c" has no port named "admin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			m := NewManager(Config{Recorder: rec, Logger: zaptest.NewLogger(t)})
			pod := testPod(tc.c)
			got, err := m.probe(context.Background(), tc.kind, pod, &corev1.PodStatus{PodIP: host}, &pod.Spec.Containers[0], "containerd://abc")
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("probe = %s, %v; want %s, error %v", got, err, tc.want, tc.wantErr)
			}
			evs := rec.all()
			if tc.wantReason == "" {
				if len(evs) != 0 {
					t.Errorf("events = %+v, want none", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("events = %+v, want one", evs)
			}
			ev := evs[0]
			if ev.reason != tc.wantReason || ev.eventType != corev1.EventTypeWarning || ev.message != tc.wantMsg {
				t.Errorf("event = %s %s %q, want Warning %s %q", ev.eventType, ev.reason, ev.message, tc.wantReason, tc.wantMsg)
			}
			if ev.ref == nil || ev.ref.Name != "p" || ev.ref.Namespace != "ns" || ev.ref.UID != "uid-1" || ev.ref.FieldPath != "spec.containers{c}" {
				t.Errorf("event object = %+v, want pod ns/p, spec.containers{c}", ev.ref)
			}
		})
	}
}

// TestHTTPProbeConnections checks the plain-http probe transport: one
// connection per probe, closed ("Connection: close", none left open), and
// a probe whose context is cancelled ends at once with no verdict.
func TestHTTPProbeConnections(t *testing.T) {
	var (
		mu      sync.Mutex
		closeHd []bool
	)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		closeHd = append(closeHd, r.Close)
		mu.Unlock()
		_, _ = w.Write([]byte("fine"))
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	// Connections open; a counter, not a WaitGroup: the hanging probe
	// below opens one more after the wait.
	var open atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	host, port := hostPort(t, srv.URL)

	m := NewManager(Config{Logger: zaptest.NewLogger(t)})
	c := corev1.Container{Name: "c"}
	probe := func(ctx context.Context, path string) (outcome, string, error) {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(port))}}, TimeoutSeconds: 30}
		return m.runOnce(ctx, p, &corev1.PodStatus{PodIP: host}, &c, "")
	}
	for range 5 {
		if got, out, err := probe(context.Background(), "/ok"); got != outSuccess || out != "fine" || err != nil {
			t.Fatalf("outcome = %s, %q, %v; want success, fine", got, out, err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); open.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the probes' connections are still open 10 s after the probes", open.Load())
		}
	}
	mu.Lock()
	if len(closeHd) != 5 || slicesContain(closeHd, false) {
		t.Errorf("requests asked to close the connection: %v, want 5 times true", closeHd)
	}
	mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	got, out, _ := probe(ctx, "/hang")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a cancelled probe took %v, want it to end at once", d)
	}
	if got != outFailure || !strings.Contains(out, "context canceled") {
		t.Errorf("cancelled probe: outcome %s, %q; want failure, context canceled", got, out)
	}
}

func slicesContain(s []bool, v bool) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// BenchmarkHTTPProbe compares the plain-http probe on http.Transport (a
// dial goroutine, read and write loops per connection) with
// probeTransport (the caller's goroutine only), the kubelet's CPU with
// 100 probes a second (issue 7).
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	b.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"http.Transport", newTransport()}, {"probeTransport", newProbeTransport()}} {
		b.Run(tc.name, func(b *testing.B) {
			m := NewManager(Config{})
			m.transport = tc.rt
			c := corev1.Container{Name: "c"}
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(port))}}, TimeoutSeconds: 1}
			st := &corev1.PodStatus{PodIP: u.Hostname()}
			b.ReportAllocs()
			for b.Loop() {
				if got, out, err := m.runOnce(context.Background(), p, st, &c, ""); got != outSuccess {
					b.Fatalf("outcome %s, %q, %v", got, out, err)
				}
			}
		})
	}
}
