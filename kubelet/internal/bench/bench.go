// Package bench measures the kubelet as issues 6 and 7 ask: a real kubelet
// binary on a private containerd and a real kube-apiserver; the pod start
// latency (50 single-container pods bound to the node, create to Running)
// against containerd's own create and start of the same containers; then
// 100 pods each with an HTTP readiness probe every second, the kubelet's
// CPU and RSS over a window and the latency of its summary API.
// cmd/kubelet-bench runs it.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/images"
	"github.com/coxswain/coxswain/kubelet/internal/stats"
	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/kubeconfig"

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

// Targets of issue 7.
const (
	cpuTarget     = 0.10 // of one core
	summaryTarget = 50 * time.Millisecond
)

// Config scales the run.
type Config struct {
	apiserverBin    string
	kubeletBin      string
	out             string
	quick           bool
	pods            int
	idleWindow      time.Duration
	settle          time.Duration
	window          time.Duration
	summaryRequests int
	podCIDR         string
	readyTimeout    time.Duration
	// startPods are the pods of the pod start phase.
	startPods int
	// kubeletLogLevel is the kubelet's --log-level; keepKubeletLog, where
	// its log is copied before the teardown.
	kubeletLogLevel string
	keepKubeletLog  string
}

// DefaultConfig is the run make bench does.
func DefaultConfig() *Config {
	return &Config{out: "docs/benchmarks.md", pods: 100, idleWindow: 20 * time.Second, settle: 10 * time.Second,
		window: 60 * time.Second, summaryRequests: 200, podCIDR: "10.213.91.0/24", readyTimeout: 5 * time.Minute, startPods: 50, kubeletLogLevel: "warn"}
}

// AddFlags binds the flags of kubelet-bench.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.apiserverBin, "apiserver-bin", c.apiserverBin, "kube-apiserver binary (default _output/bin/kube-apiserver when it exists, else built).")
	fs.StringVar(&c.kubeletBin, "kubelet-bin", c.kubeletBin, "kubelet binary (default _output/bin/kubelet when it exists, else built).")
	fs.StringVar(&c.out, "out", c.out, "Markdown report whose kubelet section is written (other sections are kept); empty writes none.")
	fs.BoolVar(&c.quick, "quick", c.quick, "A smoke run: 10 pods, short windows.")
	fs.IntVar(&c.pods, "pods", c.pods, "Pods with an HTTP readiness probe every second.")
	fs.DurationVar(&c.idleWindow, "idle-window", c.idleWindow, "Window over which the kubelet's CPU is measured with no pods.")
	fs.DurationVar(&c.settle, "settle", c.settle, "Time left between the last pod turning ready and the CPU window.")
	fs.DurationVar(&c.window, "window", c.window, "Window over which the kubelet's CPU is measured with the pods.")
	fs.IntVar(&c.summaryRequests, "summary-requests", c.summaryRequests, "Requests to /stats/summary timed after the window.")
	fs.StringVar(&c.podCIDR, "pod-cidr", c.podCIDR, "Pod CIDR of the benchmark's node; must be unused on this machine.")
	fs.DurationVar(&c.readyTimeout, "ready-timeout", c.readyTimeout, "Bound of the wait for the pods to be ready.")
	fs.StringVar(&c.kubeletLogLevel, "kubelet-log-level", c.kubeletLogLevel, "The kubelet's --log-level (its log is kubelet.log in the run's folder, removed after).")
	fs.StringVar(&c.keepKubeletLog, "keep-kubelet-log", c.keepKubeletLog, "Copy the kubelet's log there before the teardown.")
	fs.IntVar(&c.startPods, "start-pods", c.startPods, "Pods of the pod start phase (created one after the other), and as many containerd-only starts.")
}

// report is what the run measured.
type report struct {
	date        time.Time
	quick       bool
	machine     benchkit.Machine
	apiserver   string
	kubelet     string
	containerd  string
	pods        int
	idleCPU     float64 // cores
	idleWindow  time.Duration
	readyIn     time.Duration
	podsCPU     float64 // cores, with the pods
	window      time.Duration
	containerdC float64 // containerd's cores over the window
	stillReady  int
	summaries   []time.Duration
	summaryPods int
	summarySize int
	metricsAPI  []time.Duration
	metricsPods int
	problems    []string
	// The pod start phase: create to Running through the kubelet, and
	// containerd's own create+start of the same containers.
	podStart []time.Duration
	rawStart []time.Duration
	// podStartSlowest is the index, in creation order, of the slowest.
	podStartSlowest int
	// The kubelet's RSS with the pods running, after the CPU window.
	podsRSS int64
}

// env is the running cluster of one node.
type env struct {
	cfg        *Config
	tmp        string
	logf       func(string, ...any)
	bridge     string
	sock       string
	containerd *benchkit.Process
	apiserver  *benchkit.APIServer
	kubelet    *benchkit.Process
	kubeletAPI string
	root       string
	airgap     string
}

// Run brings up the apiserver, containerd and the kubelet, measures, writes
// the report and tears everything down.
func Run(ctx context.Context, cfg *Config) error {
	logf := func(format string, args ...any) {
		fmt.Printf(time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	if cfg.quick {
		cfg.pods, cfg.idleWindow, cfg.settle, cfg.window, cfg.summaryRequests = 10, 5*time.Second, 3*time.Second, 15*time.Second, 50
		cfg.startPods = 10
	}
	if err := checkNodeEnv(cfg.podCIDR); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kubelet-bench-")
	if err != nil {
		return err
	}
	rep := &report{date: time.Now().UTC(), quick: cfg.quick, machine: benchkit.DetectMachine(tmp), pods: cfg.pods}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	e := &env{cfg: cfg, tmp: tmp, logf: logf, bridge: "cxsb" + hex.EncodeToString(rnd[:]), root: filepath.Join(tmp, "kubelet-root")}
	defer e.teardown()

	if cfg.apiserverBin == "" {
		if cfg.apiserverBin, rep.apiserver, err = benchkit.Binary(ctx, "_output/bin/kube-apiserver", "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver", tmp, logf); err != nil {
			return err
		}
	} else {
		rep.apiserver = "`" + cfg.apiserverBin + "`"
	}
	if cfg.kubeletBin == "" {
		if cfg.kubeletBin, rep.kubelet, err = benchkit.Binary(ctx, "_output/bin/kubelet", "github.com/coxswain/coxswain/kubelet/cmd/kubelet", tmp, logf); err != nil {
			return err
		}
	} else {
		rep.kubelet = "`" + cfg.kubeletBin + "`"
	}
	if err := e.start(ctx, rep); err != nil {
		return err
	}

	measure := func(name string, f func(context.Context) error) {
		if ctx.Err() != nil {
			return
		}
		logf("phase %s", name)
		if err := f(ctx); err != nil {
			rep.problems = append(rep.problems, fmt.Sprintf("%s: %v", name, err))
			logf("  failed: %v", err)
		}
	}
	measure("idle", func(ctx context.Context) (err error) {
		rep.idleCPU, err = e.cpu(ctx, e.kubelet.PID(), cfg.idleWindow)
		rep.idleWindow = cfg.idleWindow
		return err
	})
	measure("podstart", func(ctx context.Context) error { return e.podStart(ctx, rep) })
	measure("podstart-containerd", func(ctx context.Context) error { return e.rawStart(ctx, rep) })
	measure("pods", func(ctx context.Context) error { return e.createPods(ctx, rep) })
	if len(rep.problems) == 0 {
		measure("probes", func(ctx context.Context) error { return e.probeWindow(ctx, rep) })
		measure("summary", func(ctx context.Context) error { return e.summaryLatency(ctx, rep) })
		measure("metrics-api", func(ctx context.Context) error { return e.metricsLatency(ctx, rep) })
	}

	md := rep.markdown(cfg)
	fmt.Print("\n" + md)
	if ctx.Err() != nil {
		logf("interrupted: %s not written", cfg.out)
		return ctx.Err()
	}
	if cfg.out != "" {
		if err := benchkit.WriteSection(cfg.out, "kubelet", md); err != nil {
			return err
		}
		logf("kubelet section written to %s", cfg.out)
	}
	if len(rep.problems) > 0 {
		return errors.New(strings.Join(rep.problems, "; "))
	}
	return nil
}

// checkNodeEnv says what is missing to run pods here.
func checkNodeEnv(podCIDR string) error {
	if os.Geteuid() != 0 {
		return errors.New("the kubelet benchmark needs root (network namespaces, containerd, CNI)")
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("the kubelet benchmark needs %s: %w", p, err)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return errors.New("the kubelet benchmark needs runc in PATH")
	}
	_, cidr, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return fmt.Errorf("-pod-cidr: %w", err)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && cidr.Contains(ipn.IP) {
			return fmt.Errorf("%s is in use on this machine (%s): pick another -pod-cidr", podCIDR, ipn)
		}
	}
	return nil
}

// start runs containerd, the apiserver and the kubelet, and waits for the
// node to be Ready.
func (e *env) start(ctx context.Context, rep *report) error {
	pause := filepath.Join(e.tmp, "pause")
	e.logf("building the pause binary and the images")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", pause, "github.com/coxswain/coxswain/kubelet/cmd/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause: %w\n%s", err, out)
	}
	airgap := filepath.Join(e.tmp, "airgap")
	e.airgap = airgap
	if _, err := images.Build(images.Options{OutDir: airgap, PauseBinary: pause, BusyboxBinary: "/bin/busybox"}); err != nil {
		return err
	}

	dir := filepath.Join(e.tmp, "containerd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	e.sock = filepath.Join(dir, "containerd.sock")
	conf := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n[grpc]\n  address = %q\n\n[ttrpc]\n  address = %q\n\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), e.sock, e.sock+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(conf), 0o644); err != nil {
		return err
	}
	var err error
	if e.containerd, err = benchkit.StartProcess("containerd", "/usr/bin/containerd", filepath.Join(e.tmp, "containerd.log"), "--config", filepath.Join(dir, "config.toml")); err != nil {
		return err
	}
	if err := waitUntil(ctx, 30*time.Second, func() error {
		if err := e.containerd.Alive(); err != nil {
			return permanent{err}
		}
		c, err := containerd.New(e.sock, containerd.WithTimeout(time.Second))
		if err != nil {
			return err
		}
		defer c.Close()
		v, err := c.Version(ctx)
		rep.containerd = v.Version
		return err
	}); err != nil {
		return fmt.Errorf("containerd: %w\n%s", err, e.containerd.LogTail())
	}

	e.logf("starting kube-apiserver")
	if e.apiserver, err = benchkit.StartAPIServer(ctx, e.cfg.apiserverBin, e.tmp, 4); err != nil {
		return err
	}
	c := e.apiserver.Clients[0]
	const nodeName = "bench-node"
	if _, err := client.For[*corev1.Node](c).Create(ctx, "", &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Spec:       corev1.NodeSpec{PodCIDR: e.cfg.podCIDR, PodCIDRs: []string{e.cfg.podCIDR}},
	}); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	e.kubeletAPI = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e.logf("starting the kubelet")
	if e.kubelet, err = benchkit.StartProcess("kubelet", e.cfg.kubeletBin, filepath.Join(e.tmp, "kubelet.log"),
		"--kubeconfig", e.apiserver.Kubeconfig, "--hostname-override", nodeName, "--node-ip", "127.0.0.1",
		"--containerd-address", e.sock, "--root-dir", e.root, "--pod-log-dir", filepath.Join(e.tmp, "pod-logs"),
		"--cni-conf-dir", filepath.Join(e.tmp, "cni-conf"), "--cni-bridge", e.bridge, "--image-airgap-dir", airgap,
		"--healthz-port", "0", "--address", "127.0.0.1", "--port", strconv.Itoa(port), "--log-level", e.cfg.kubeletLogLevel); err != nil {
		return err
	}
	if err := waitUntil(ctx, 2*time.Minute, func() error {
		if err := e.kubelet.Alive(); err != nil {
			return permanent{err}
		}
		n, err := client.For[*corev1.Node](c).Get(ctx, "", nodeName)
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("node not Ready")
	}); err != nil {
		return fmt.Errorf("kubelet: %w\n%s", err, e.kubelet.LogTail())
	}
	return nil
}

// permanent is an error of a wait's condition that waiting will not cure
// (a process died).
type permanent struct{ error }

// waitUntil polls cond until it returns nil, for at most timeout, or until
// it returns a permanent error.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if p, ok := err.(permanent); ok {
			return p.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond): // polling; the deadline decides
		}
	}
}

// cpu is the cores process pid used over window.
func (e *env) cpu(ctx context.Context, pid int, window time.Duration) (float64, error) {
	before, err := benchkit.ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window): // the measurement window
	}
	after, err := benchkit.ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(time.Since(start)), nil
}

// benchPod runs busybox httpd on 8080 with a readiness probe on it every
// second.
func benchPod(i int, node string) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%03d", i), Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "web", Image: images.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 3, SuccessThreshold: 1,
				},
			}},
		},
	}
}

func readyCount(pods []*corev1.Pod) int {
	n := 0
	for _, p := range pods {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

func (e *env) listPods(ctx context.Context) ([]*corev1.Pod, error) {
	pods, _, err := client.For[*corev1.Pod](e.apiserver.Clients[0]).List(ctx, metav1.NamespaceDefault, metav1.ListOptions{LabelSelector: "app=bench"})
	return pods, err
}

// createPods creates the pods and waits for all to be ready.
func (e *env) createPods(ctx context.Context, rep *report) error {
	start := time.Now()
	failed, first := benchkit.Parallel(ctx, e.apiserver.Clients, e.cfg.pods, 8, func(ctx context.Context, c *client.Client, i int) error {
		_, err := client.For[*corev1.Pod](c).Create(ctx, metav1.NamespaceDefault, benchPod(i, "bench-node"))
		return err
	})
	if failed > 0 {
		return fmt.Errorf("%d pod creates failed, the first: %s", failed, first)
	}
	last := 0
	err := waitUntil(ctx, e.cfg.readyTimeout, func() error {
		if err := e.kubelet.Alive(); err != nil {
			return permanent{err}
		}
		pods, err := e.listPods(ctx)
		if err != nil {
			return err
		}
		if n := readyCount(pods); n < e.cfg.pods {
			if n/10 != last/10 {
				e.logf("  %d of %d pods ready", n, e.cfg.pods)
			}
			last = n
			return fmt.Errorf("%d of %d pods ready", n, e.cfg.pods)
		}
		return nil
	})
	rep.readyIn = time.Since(start)
	e.logf("  %d pods ready in %v", e.cfg.pods, rep.readyIn.Round(100*time.Millisecond))
	return err
}

// probeWindow measures the kubelet's (and containerd's) CPU while it
// probes every pod every second, then checks the pods are still ready.
func (e *env) probeWindow(ctx context.Context, rep *report) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.cfg.settle): // the pods' start-up work ends
	}
	cBefore, _ := benchkit.ProcessCPU(e.containerd.PID())
	start := time.Now()
	cores, err := e.cpu(ctx, e.kubelet.PID(), e.cfg.window)
	if err != nil {
		return err
	}
	cAfter, _ := benchkit.ProcessCPU(e.containerd.PID())
	rep.podsCPU, rep.window = cores, e.cfg.window
	rep.containerdC = float64(cAfter-cBefore) / float64(time.Since(start))
	pods, err := e.listPods(ctx)
	if err != nil {
		return err
	}
	rep.stillReady = readyCount(pods)
	if rss, _, err := benchkit.ProcessRSS(e.kubelet.PID()); err == nil {
		rep.podsRSS = rss
	}
	e.logf("  kubelet %.1f%% of a core (idle %.1f%%), %d pods ready after the window", 100*cores, 100*rep.idleCPU, rep.stillReady)
	return nil
}

// httpClient is an HTTP/2 client with the admin's client certificate (the
// cluster CA's, which the kubelet accepts); the kubelet's serving
// certificate is self-signed, as upstream's is by default.
func (e *env) httpClient(insecure bool) (*http.Client, error) {
	kc, err := kubeconfig.Load(e.apiserver.Kubeconfig)
	if err != nil {
		return nil, err
	}
	tc, err := kc.TLSConfig()
	if err != nil {
		return nil, err
	}
	if insecure {
		tc.RootCAs, tc.InsecureSkipVerify = nil, true
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}, nil
}

// timeGets GETs url n times over one warm connection and returns the
// latencies, sorted, and the last body.
func timeGets(ctx context.Context, c *http.Client, url string, n int) ([]time.Duration, []byte, error) {
	var lat []time.Duration
	var body []byte
	for i := range n + 1 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, nil, err
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		d := time.Since(start)
		if err != nil {
			return nil, nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, nil, fmt.Errorf("GET %s: HTTP %d: %.300s", url, resp.StatusCode, body)
		}
		if i > 0 { // the first opens the connection
			lat = append(lat, d)
		}
	}
	slices.Sort(lat)
	return lat, body, nil
}

// summaryLatency times the full /stats/summary.
func (e *env) summaryLatency(ctx context.Context, rep *report) error {
	c, err := e.httpClient(true)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	lat, body, err := timeGets(ctx, c, "https://"+e.kubeletAPI+"/stats/summary", e.cfg.summaryRequests)
	if err != nil {
		return err
	}
	var s stats.Summary
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("decode summary: %w", err)
	}
	rep.summaries, rep.summaryPods, rep.summarySize = lat, len(s.Pods), len(body)
	e.logf("  /stats/summary: p50 %v, p99 %v, %d pods, %d bytes", benchkit.Percentile(lat, 50), benchkit.Percentile(lat, 99), len(s.Pods), len(body))
	return nil
}

// metricsLatency times the metrics.k8s.io pod list through the apiserver,
// which reads the kubelet's summary (what kubectl top pods does).
func (e *env) metricsLatency(ctx context.Context, rep *report) error {
	kc, err := kubeconfig.Load(e.apiserver.Kubeconfig)
	if err != nil {
		return err
	}
	host, err := kc.Host()
	if err != nil {
		return err
	}
	c, err := e.httpClient(false)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	lat, body, err := timeGets(ctx, c, "https://"+host+"/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", max(e.cfg.summaryRequests/4, 10))
	if err != nil {
		return err
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("decode PodMetricsList: %w", err)
	}
	rep.metricsAPI, rep.metricsPods = lat, len(list.Items)
	return nil
}

// teardown deletes the pods, stops the kubelet, removes what is left in
// containerd, stops it and the apiserver, and removes the network and
// the folder.
func (e *env) teardown() {
	quiet := func(string, ...any) {}
	if e.apiserver != nil && e.kubelet != nil && e.kubelet.Alive() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		pods := client.For[*corev1.Pod](e.apiserver.Clients[0])
		if list, err := e.listPods(ctx); err == nil {
			e.logf("deleting %d pods", len(list))
			benchkit.Parallel(ctx, e.apiserver.Clients, len(list), 8, func(ctx context.Context, _ *client.Client, i int) error {
				_, err := pods.Delete(ctx, metav1.NamespaceDefault, list[i].Name, metav1.DeleteOptions{})
				return err
			})
			_ = waitUntil(ctx, 2*time.Minute, func() error {
				left, err := e.listPods(ctx)
				if err == nil && len(left) > 0 {
					err = fmt.Errorf("%d pods left", len(left))
				}
				return err
			})
		}
		cancel()
	}
	if e.kubelet != nil {
		e.kubelet.Stop(15*time.Second, e.logf)
		if e.cfg.keepKubeletLog != "" {
			if data, err := os.ReadFile(e.kubelet.LogPath()); err == nil {
				_ = os.WriteFile(e.cfg.keepKubeletLog, data, 0o644)
			}
		}
	}
	if e.containerd != nil {
		if c, err := containerd.New(e.sock, containerd.WithTimeout(5*time.Second)); err == nil {
			ctx := namespaces.WithNamespace(context.Background(), containerruntime.Namespace)
			cs, _ := c.Containers(ctx)
			for _, ct := range cs {
				if task, err := ct.Task(ctx, nil); err == nil {
					_, _ = task.Delete(ctx, containerd.WithProcessKill)
				}
				_ = ct.Delete(ctx, containerd.WithSnapshotCleanup)
			}
			_ = c.Close()
		}
		e.containerd.Stop(15*time.Second, e.logf)
	}
	if e.apiserver != nil {
		e.apiserver.Close(quiet)
	}
	unmountUnder(e.tmp)
	if _, err := net.InterfaceByName(e.bridge); err == nil {
		if out, err := exec.Command("ip", "link", "del", e.bridge).CombinedOutput(); err != nil {
			e.logf("delete bridge %s: %v %s", e.bridge, err, out)
		}
	}
	if err := os.RemoveAll(e.tmp); err != nil {
		e.logf("remove %s: %v", e.tmp, err)
	}
}

// unmountUnder lazily unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	mps, _ := mountinfo.Under(dir)
	for _, mp := range mps {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}
