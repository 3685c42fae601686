package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func listen(t *testing.T, path string) *Listener {
	t.Helper()
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// abstractName is unique per test run, so parallel runs do not collide in
// the (per network namespace) abstract namespace.
func abstractName(t *testing.T) string {
	return fmt.Sprintf("@coxswain-sdnotify-test-%d-%s", os.Getpid(), t.Name())
}

func TestSend(t *testing.T) {
	tests := []struct {
		name   string
		socket func(t *testing.T) string
		states []string
		want   []string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") }, []string{Ready}, []string{"READY=1"}},
		{"abstract", abstractName, []string{Stopping}, []string{"STOPPING=1"}},
		{"several in one datagram", func(t *testing.T) string { return filepath.Join(t.TempDir(), "n.sock") },
			[]string{Ready, "STATUS=serving"}, []string{"READY=1", "STATUS=serving"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, tt.socket(t))
			if err := Send(l.Socket, tt.states...); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, err := l.Receive(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
		})
	}
}

// The datagram is exactly the assignments joined by newlines, as
// sd_notify(3) sends them.
func TestSendWireFormat(t *testing.T) {
	l := listen(t, filepath.Join(t.TempDir(), "n.sock"))
	if err := Send(l.Socket, Ready, "STATUS=a b"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if err := l.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := l.conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "READY=1\nSTATUS=a b"; got != want {
		t.Errorf("datagram %q, want %q", got, want)
	}
}

func TestSendErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		socket string
		states []string
	}{
		{"no such socket", filepath.Join(dir, "missing.sock"), []string{Ready}},
		{"not an assignment", filepath.Join(dir, "x.sock"), []string{"READY"}},
		{"two lines in one state", filepath.Join(dir, "x.sock"), []string{"READY=1\nSTOPPING=1"}},
		{"no states", filepath.Join(dir, "x.sock"), nil},
		{"vsock", "vsock:2:1234", []string{Ready}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Send(tt.socket, tt.states...); err == nil {
				t.Errorf("Send(%q, %q) succeeded, want an error", tt.socket, tt.states)
			}
		})
	}
	if err := Send("", Ready); err != nil {
		t.Errorf("Send with no socket: %v, want nil (a no-op)", err)
	}
}

func TestNewReadsEnvironment(t *testing.T) {
	l := listen(t, abstractName(t))
	t.Setenv(EnvSocket, l.Socket)
	n := New(zaptest.NewLogger(t))
	if !n.Enabled() {
		t.Fatalf("New with %s=%s is disabled", EnvSocket, l.Socket)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitFor(ctxT(t, 10*time.Second), Ready); err != nil {
		t.Fatal(err)
	}

	t.Setenv(EnvSocket, "")
	n = New(nil)
	if n.Enabled() {
		t.Errorf("New without %s is enabled", EnvSocket)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("Notify when disabled: %v, want nil", err)
	}
	n.Start(context.Background(), func(context.Context) error { return errors.New("never called") })()
}

// READY=1 is sent only once the check passes, STOPPING=1 once the context
// ends, nothing else.
func TestStartLifecycle(t *testing.T) {
	l := listen(t, filepath.Join(t.TempDir(), "n.sock"))
	n := NewForSocket(l.Socket, zaptest.NewLogger(t))
	n.interval = time.Millisecond
	var calls atomic.Int32
	ready := make(chan struct{})
	check := func(context.Context) error {
		calls.Add(1)
		select {
		case <-ready:
			return nil
		default:
			return errors.New("caches not synced")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := n.Start(ctx, check)
	defer stop()

	// Not ready: nothing arrives while the check fails (several times).
	wctx := ctxT(t, 10*time.Second)
	for calls.Load() < 5 {
		select {
		case <-wctx.Done():
			t.Fatalf("the check ran %d times in 10s", calls.Load())
		case <-time.After(time.Millisecond):
		}
	}
	shortCtx, shortCancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if got, err := l.Receive(shortCtx); err == nil {
		t.Fatalf("received %q before the check passed", got)
	}
	shortCancel()

	close(ready)
	got, err := l.Receive(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{Ready}, got); diff != "" {
		t.Fatalf("first datagram (-want +got):\n%s", diff)
	}
	cancel()
	got, err = l.Receive(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{Stopping}, got); diff != "" {
		t.Fatalf("second datagram (-want +got):\n%s", diff)
	}
}

// A service stopped before it got ready sends nothing.
func TestStartStoppedBeforeReady(t *testing.T) {
	l := listen(t, filepath.Join(t.TempDir(), "n.sock"))
	n := NewForSocket(l.Socket, zaptest.NewLogger(t))
	stop := n.Start(context.Background(), func(context.Context) error { return errors.New("not yet") })
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if got, err := l.Receive(ctx); err == nil {
		t.Fatalf("received %q from a service that never got ready", got)
	}
}

func TestStartNilCheckIsReadyAtOnce(t *testing.T) {
	l := listen(t, filepath.Join(t.TempDir(), "n.sock"))
	stop := NewForSocket(l.Socket, zaptest.NewLogger(t)).Start(context.Background(), nil)
	if _, err := l.WaitFor(ctxT(t, 10*time.Second), Ready); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := l.WaitFor(ctxT(t, 10*time.Second), Stopping); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPCheck(t *testing.T) {
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	for _, host := range []string{"127.0.0.1", "0.0.0.0", ""} {
		check := HTTPCheck(host, port, "/healthz")
		healthy.Store(false)
		if err := check(ctx); err == nil {
			t.Errorf("host %q: check passed on 503", host)
		}
		healthy.Store(true)
		if err := check(ctx); err != nil {
			t.Errorf("host %q: check failed on 200: %v", host, err)
		}
	}
	if HTTPCheck("127.0.0.1", 0, "/healthz") != nil {
		t.Error("HTTPCheck with port 0 is not nil (ready at once)")
	}
}
