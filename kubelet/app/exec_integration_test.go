package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// kubectlResult is how a kubectl run ended.
type kubectlResult struct {
	stdout, stderr string
	code           int
}

// kubectlRunner runs a kubectl binary against the test's apiserver.
type kubectlRunner struct {
	bin, kubeconfig, home string
	env                   []string
}

func (k kubectlRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+k.home), k.env...)
	return cmd
}

// run runs kubectl with stdin (nil: none) and a deadline.
func (k kubectlRunner) run(t *testing.T, stdin io.Reader, args ...string) kubectlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := k.command(ctx, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := kubectlResult{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("kubectl %v: %v (ctx %v)\nstdout: %s\nstderr: %s", args, err, ctx.Err(), res.stdout, res.stderr)
		}
		res.code = ee.ExitCode()
	}
	return res
}

// ok runs kubectl and fails the test unless it exits 0.
func (k kubectlRunner) ok(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	res := k.run(t, stdin, args...)
	if res.code != 0 {
		t.Fatalf("kubectl %v: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// noFallback checks, from the -v=4 log of kubectl, that the WebSocket
// protocol served and kubectl did not fall back to SPDY.
func noFallback(t *testing.T, what string, res kubectlResult) {
	t.Helper()
	if strings.Contains(strings.ToLower(res.stderr), "fallback") {
		t.Errorf("%s fell back from WebSockets to SPDY:\n%s", what, res.stderr)
	}
}

// containerPids is the number of processes in the pod's container.
func (k *testKubelet) containerPids(t *testing.T, pod string) (int, error) {
	t.Helper()
	p, err := k.pods.Get(context.Background(), "default", pod)
	if err != nil {
		return 0, err
	}
	cs, err := runningContainer(p)
	if err != nil {
		return 0, err
	}
	ctx := namespaces.WithNamespace(context.Background(), containerruntime.Namespace)
	c, err := k.server.Runtime.Client().LoadContainer(ctx, strings.TrimPrefix(cs.ContainerID, "containerd://"))
	if err != nil {
		return 0, err
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return 0, err
	}
	pids, err := task.Pids(ctx)
	return len(pids), err
}

// TestKubectlExecPortForwardCp drives the real kubectl (1.32) through the
// apiserver to the kubelet and containerd: exec with output, exit codes and
// stdin, over WebSockets (v5, kubectl's default) and SPDY (the fallback);
// a terminal with its size; cp both ways (tar in the container); attach;
// port-forward over WebSocket-tunneled SPDY and plain SPDY to httpd in the
// pod; the exec process killed when kubectl goes; NotFound for a missing
// pod and the kubelet's "container not found" for a container that is not
// running; and, when Debian's kubectl 1.20 can be fetched, exec over SPDY
// with it.
func TestKubectlExecPortForwardCp(t *testing.T) {
	kubectlBin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not in PATH")
	}
	k := startTestKubelet(t, "exec-it")
	ctx := context.Background()
	const page = "hello through port-forward"
	shell := k.busyboxPod("shell", "mkdir -p /www && echo '"+page+"' > /www/index.html && exec httpd -f -p 8080 -h /www", corev1.RestartPolicyAlways)
	ticker := k.busyboxPod("ticker", `i=0; while true; do echo tick $i; echo tock $i >&2; i=$((i+1)); sleep 0.2; done`, corev1.RestartPolicyAlways)
	// A pod whose second container has ended while the first runs.
	two := k.busyboxPod("two", "sleep 3600", corev1.RestartPolicyNever)
	two.Spec.Containers = append(two.Spec.Containers, corev1.Container{
		Name: "done", Image: two.Spec.Containers[0].Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"true"},
	})
	for _, p := range []*corev1.Pod{shell, ticker, two} {
		if _, err := k.pods.Create(ctx, "default", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"shell", "ticker"} {
		k.waitPod(t, name, "Running", 60*time.Second, func(p *corev1.Pod) error {
			_, err := runningContainer(p)
			return err
		})
	}
	kc := kubectlRunner{bin: kubectlBin, kubeconfig: k.env.Kubeconfig, home: t.TempDir()}
	spdy := kc
	spdy.env = []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}

	for _, tc := range []struct {
		name string
		kc   kubectlRunner
		ws   bool
	}{{"websocket", kc, true}, {"spdy", spdy, false}} {
		t.Run("exec/"+tc.name, func(t *testing.T) {
			kc := tc.kc
			res := kc.run(t, nil, "-v=4", "exec", "shell", "--", "echo", "hi")
			if res.code != 0 || res.stdout != "hi\n" {
				t.Fatalf("exec echo hi: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
			}
			if tc.ws {
				noFallback(t, "exec", res)
			}
			res = kc.run(t, nil, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
			if res.code != 3 || res.stdout != "out\n" || !strings.Contains(res.stderr, "err\n") || !strings.Contains(res.stderr, "command terminated with exit code 3") {
				t.Fatalf("exec exit 3: exit %d, stdout %q, stderr %q; want exit 3, out, err and kubectl's message", res.code, res.stdout, res.stderr)
			}
			in := "line one\nline two\n" + strings.Repeat("x", 100000) + "\n"
			res = kc.run(t, strings.NewReader(in), "-v=4", "exec", "-i", "shell", "--", "cat")
			if res.code != 0 || res.stdout != in {
				t.Fatalf("exec -i cat: exit %d, %d bytes back of %d, stderr %s", res.code, len(res.stdout), len(in), res.stderr)
			}
			if tc.ws {
				noFallback(t, "exec -i", res)
			}
			res = kc.run(t, nil, "exec", "shell", "--", "no-such-command")
			if res.code == 0 || !strings.Contains(res.stderr, "no-such-command") {
				t.Fatalf("exec of a missing command: exit %d, stderr %q", res.code, res.stderr)
			}
		})
	}

	t.Run("tty", func(t *testing.T) {
		script, err := exec.LookPath("script")
		if err != nil {
			t.Skip("script (util-linux) not found: no terminal to run kubectl exec -t in")
		}
		// script gives kubectl a terminal of 33 rows and 97 columns; kubectl
		// sends that size, and stty in the container's terminal reports it.
		c := fmt.Sprintf("stty rows 33 cols 97; exec %s --kubeconfig %s exec -it shell -- busybox stty size", kubectlBin, k.env.Kubeconfig)
		for _, env := range [][]string{kc.env, spdy.env} {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			cmd := exec.CommandContext(cctx, script, "-qec", c, "/dev/null")
			cmd.Env = append(append(os.Environ(), "HOME="+kc.home), env...)
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil || !strings.Contains(string(out), "33 97") {
				t.Fatalf("kubectl exec -it stty size (env %v): %v\n%q", env, err, out)
			}
		}
	})

	t.Run("cp", func(t *testing.T) {
		// kubectl cp runs tar in the container; the image links busybox's
		// applets but not tar, so link it first.
		kc.ok(t, nil, "exec", "shell", "--", "ln", "-sf", "/bin/busybox", "/bin/tar")
		dir := t.TempDir()
		data := make([]byte, 300<<10)
		_, _ = rand.Read(data)
		src := filepath.Join(dir, "in.bin")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		kc.ok(t, nil, "cp", src, "default/shell:/tmp/in.bin")
		if got := kc.ok(t, nil, "exec", "shell", "--", "wc", "-c", "/tmp/in.bin"); !strings.HasPrefix(strings.TrimSpace(got), strconv.Itoa(len(data))) {
			t.Fatalf("wc -c in the pod: %q, want %d bytes", got, len(data))
		}
		back := filepath.Join(dir, "back.bin")
		kc.ok(t, nil, "cp", "default/shell:/tmp/in.bin", back)
		got, err := os.ReadFile(back)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copied back %d bytes (%v), want the %d sent", len(got), err, len(data))
		}
	})

	t.Run("attach", func(t *testing.T) {
		actx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cmd := kc.command(actx, "attach", "ticker")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}()
		lines := make(chan string)
		go func() {
			defer close(lines)
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				select {
				case lines <- s.Text():
				case <-actx.Done():
					return
				}
			}
		}()
		var seen []string
		for len(seen) < 3 {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("kubectl attach ended after %q; stderr %s", seen, stderr.String())
				}
				if !strings.HasPrefix(l, "tick ") {
					t.Fatalf("attach stdout line %q, want ticks only (tocks go to stderr)", l)
				}
				seen = append(seen, l)
			case <-actx.Done():
				t.Fatalf("no ticks from kubectl attach: %q; stderr %s", seen, stderr.String())
			}
		}
	})

	for _, tc := range []struct {
		name string
		kc   kubectlRunner
		ws   bool
	}{{"websocket", kc, true}, {"spdy", spdy, false}} {
		t.Run("port-forward/"+tc.name, func(t *testing.T) {
			local := freePort(t)
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			cmd := tc.kc.command(pctx, "-v=4", "port-forward", "pod/shell", fmt.Sprintf("%d:8080", local))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() {
				_, _ = io.Copy(io.Discard, stdout)
				close(exited)
			}()
			defer func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
				_ = cmd.Wait()
				if t.Failed() {
					t.Logf("kubectl port-forward stderr:\n%s", stderr.String())
				}
			}()
			url := fmt.Sprintf("http://127.0.0.1:%d/index.html", local)
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			var body string
			waitFor(t, "an answer through kubectl port-forward", 30*time.Second, func() (bool, error) {
				resp, err := hc.Get(url)
				if err != nil {
					return false, err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				body = string(b)
				return err == nil && resp.StatusCode == http.StatusOK, fmt.Errorf("status %d, %v", resp.StatusCode, err)
			})
			if strings.TrimSpace(body) != page {
				t.Fatalf("body %q, want %q", body, page)
			}
			// More connections over the same port-forward.
			for i := range 3 {
				resp, err := hc.Get(url)
				if err != nil {
					t.Fatalf("GET %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.TrimSpace(string(b)) != page {
					t.Fatalf("GET %d: %q", i, b)
				}
			}
			if tc.ws {
				if strings.Contains(strings.ToLower(stderr.String()), "fallback") {
					t.Errorf("port-forward fell back from WebSockets to SPDY:\n%s", stderr.String())
				}
			}
		})
	}

	t.Run("disconnect kills the exec", func(t *testing.T) {
		waitFor(t, "httpd alone in its container", 30*time.Second, func() (bool, error) {
			n, err := k.containerPids(t, "shell")
			return err == nil && n == 1, fmt.Errorf("%d processes, %v", n, err)
		})
		for _, kc := range []kubectlRunner{kc, spdy} {
			dctx, cancel := context.WithCancel(ctx)
			cmd := kc.command(dctx, "exec", "shell", "--", "sleep", "1000")
			if err := cmd.Start(); err != nil {
				cancel()
				t.Fatal(err)
			}
			waitFor(t, "the exec's sleep in the container", 30*time.Second, func() (bool, error) {
				n, err := k.containerPids(t, "shell")
				return err == nil && n == 2, fmt.Errorf("%d processes, %v", n, err)
			})
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			cancel()
			waitFor(t, "the exec's sleep gone with kubectl", 30*time.Second, func() (bool, error) {
				n, err := k.containerPids(t, "shell")
				return err == nil && n == 1, fmt.Errorf("%d processes, %v", n, err)
			})
		}
	})

	t.Run("errors", func(t *testing.T) {
		res := kc.run(t, nil, "exec", "nosuch", "--", "true")
		if res.code != 1 || !strings.Contains(res.stderr, `Error from server (NotFound): pods "nosuch" not found`) {
			t.Fatalf("exec into a missing pod: exit %d, stderr %q", res.code, res.stderr)
		}
		// A container that is not running: the kubelet's refusal, as
		// upstream's, reaches kubectl through the apiserver.
		k.waitPod(t, "two", "with container done terminated", 60*time.Second, func(p *corev1.Pod) error {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.Name == "done" && cs.State.Terminated != nil {
					return nil
				}
			}
			return fmt.Errorf("phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
		})
		res = kc.run(t, nil, "exec", "two", "-c", "done", "--", "true")
		if res.code != 1 || !strings.Contains(res.stderr, `unable to upgrade connection: container not found ("done")`) {
			t.Fatalf("exec into a container that is not running: exit %d, stderr %q", res.code, res.stderr)
		}
		res = kc.run(t, nil, "port-forward", "pod/nosuch", "1234:80")
		if res.code != 1 || !strings.Contains(res.stderr, `Error from server (NotFound): pods "nosuch" not found`) {
			t.Fatalf("port-forward to a missing pod: exit %d, stderr %q", res.code, res.stderr)
		}
	})

	t.Run("kubectl 1.20 over SPDY", func(t *testing.T) {
		old := kubectlRunner{bin: oldKubectl(t), kubeconfig: k.env.Kubeconfig, home: t.TempDir()}
		if out := old.ok(t, nil, "exec", "shell", "--", "echo", "hi"); out != "hi\n" {
			t.Fatalf("kubectl 1.20 exec echo hi: %q", out)
		}
		if res := old.run(t, nil, "exec", "shell", "--", "sh", "-c", "exit 3"); res.code != 3 {
			t.Fatalf("kubectl 1.20 exec exit 3: exit %d, stderr %q", res.code, res.stderr)
		}
		if out := old.ok(t, strings.NewReader("from old\n"), "exec", "-i", "shell", "--", "cat"); out != "from old\n" {
			t.Fatalf("kubectl 1.20 exec -i cat: %q", out)
		}
	})

	for _, name := range []string{"shell", "ticker", "two"} {
		if _, err := k.pods.Delete(ctx, "default", name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// oldKubectl is Debian's kubernetes-client (kubectl 1.20), from
// $COXSWAIN_OLD_KUBECTL or unpacked to a temp folder with apt-get download
// and dpkg -x (leaving /usr/bin/kubectl alone); the test skips without it.
func oldKubectl(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("COXSWAIN_OLD_KUBECTL"); p != "" {
		return p
	}
	for _, tool := range []string{"apt-get", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: cannot fetch Debian's kubernetes-client", tool)
		}
	}
	dir := t.TempDir()
	// apt's sandbox user must be able to write the download folder.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dl := exec.CommandContext(ctx, "apt-get", "download", "kubernetes-client")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		t.Skipf("apt-get download kubernetes-client: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "kubernetes-client_*.deb"))
	if len(debs) == 0 {
		t.Skip("apt-get download left no kubernetes-client package")
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -x: %v\n%s", err, out)
	}
	return filepath.Join(root, "usr", "bin", "kubectl")
}
