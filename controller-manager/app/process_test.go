package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// buildControllerManager builds the kube-controller-manager binary into
// the test's temp dir.
func buildControllerManager(t *testing.T) string {
	t.Helper()
	return harness.BuildBinary(t, "github.com/coxswain/coxswain/controller-manager/cmd/kube-controller-manager")
}

// process is a kube-controller-manager binary the test started.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{}
	err  error // set before done is closed
}

// startProcess runs bin against the apiserver of kubeconfig with
// loopback health serving on a free port, plus args. The process is
// killed, if still running, when the test ends.
func startProcess(t *testing.T, name, bin, kubeconfig string, args ...string) *process {
	t.Helper()
	base := []string{"--kubeconfig", kubeconfig, "--bind-address=127.0.0.1", "--secure-port=0", "--min-resync-period=0"}
	p := &process{t: t, name: name, logs: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append(base, args...)...)
	p.cmd.Stdout = p.logs
	p.cmd.Stderr = p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test binary
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) log tail:\n%s", name, p.cmd.Process.Pid, p.logs.tail(60))
		}
	})
	return p
}

// kill sends SIGKILL to the process (only this pid) and waits for it.
func (p *process) kill() {
	p.t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("kill %s (pid %d): %v", p.name, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// exited says whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logged returns the JSON log entries whose message is msg.
func (p *process) logged(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(p.logs.bytes()))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		if entry["msg"] == msg {
			out = append(out, entry)
		}
	}
	return out
}

// logBuffer collects a process's output for concurrent reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *logBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(string(b.bytes()), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// watchState keeps the current objects of a resource in a namespace from a
// list and a watch (relisting when the watch ends) and calls observe with
// them, by name, after the list and after every event, from one goroutine.
// It runs until the test ends.
func watchState[T interface {
	k8sruntime.Object
	metav1.Object
}](t *testing.T, c *client.Typed[T], ns string, observe func(map[string]T)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// The first list is done here, so that observe has seen the state
	// before the test goes on.
	state, rv, err := listState(ctx, c, ns)
	if err != nil {
		cancel()
		close(done)
		t.Fatalf("list %s: %v", c.GVR().Resource, err)
	}
	observe(state)
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if rv == "" {
				select { // back off before relisting
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				if state, rv, err = listState(ctx, c, ns); err != nil {
					if ctx.Err() == nil {
						t.Logf("relist %s: %v", c.GVR().Resource, err)
					}
					continue
				}
				observe(state)
			}
			rv = follow(ctx, c, ns, rv, state, observe)
		}
	}()
}

func listState[T interface {
	k8sruntime.Object
	metav1.Object
}](ctx context.Context, c *client.Typed[T], ns string) (map[string]T, string, error) {
	items, lm, err := c.List(ctx, ns, metav1.ListOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("list: %w", err)
	}
	state := make(map[string]T, len(items))
	for _, o := range items {
		state[o.GetName()] = o
	}
	return state, lm.ResourceVersion, nil
}

// follow applies the events of a watch from rv to state and returns the
// last resourceVersion seen, or "" when a relist is needed.
func follow[T interface {
	k8sruntime.Object
	metav1.Object
}](ctx context.Context, c *client.Typed[T], ns, rv string, state map[string]T, observe func(map[string]T)) string {
	w, err := c.Watch(ctx, ns, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
	if err != nil {
		return ""
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			o, ok := ev.Object.(T)
			if !ok {
				return ""
			}
			if ev.Type == watch.Deleted {
				delete(state, o.GetName())
			} else {
				state[o.GetName()] = o
			}
			rv = o.GetResourceVersion()
			observe(state)
		case watch.Bookmark:
			if m, err := metaOf(ev.Object); err == nil {
				rv = m.GetResourceVersion()
			}
		default:
			return ""
		}
	}
	return rv
}

func metaOf(obj k8sruntime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

// kubectlPath returns the stock kubectl to drive, or "" when there is none.
func kubectlPath() string {
	if p, err := exec.LookPath("kubectl"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/local/bin/kubectl", "/usr/bin/kubectl"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// kubectlRun runs the stock kubectl with the apiserver's admin kubeconfig
// and returns its combined output.
func kubectlRun(t *testing.T, bin, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "KUBECACHEDIR="+filepath.Join(home, "cache"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), err
}

// kubectl is kubectlRun that fails the test unless kubectl succeeds.
func kubectl(t *testing.T, bin, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := kubectlRun(t, bin, kubeconfig, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}
