//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cuSpec is a cluster that a test brings up with hack/cluster-up over the
// netns transport: its inventory and what the inventory names.
type cuSpec struct {
	name      string              // [cluster] name
	inventory string              // relative to test/e2e
	nsPrefix  string              // netns_prefix
	bridge    string              // netns_bridge
	chain     string              // the bridge's iptables chain
	state     string              // state_dir, relative to _output/cluster
	binDir    string              // bin_dir, relative to _output/cluster
	nodes     map[string][]string // node -> the components it runs
}

// The cluster of testdata/cluster-up.ini (TestClusterUp).
var cuOneMaster = cuSpec{
	name:      "e2e",
	inventory: "testdata/cluster-up.ini",
	nsPrefix:  "cxsup-",
	bridge:    "cxsup0",
	chain:     "COXSWAIN-CXSUP0",
	state:     "e2e",
	binDir:    "e2e-bin",
	nodes: map[string][]string{
		"master-1": {"kube-apiserver", "kube-scheduler", "kube-controller-manager"},
		"worker-1": {"containerd", "kubelet", "kube-proxy"},
		"worker-2": {"containerd", "kubelet", "kube-proxy"},
	},
}

// ours says whether the component is a Coxswain binary (in the node's
// /usr/local/bin; it sends READY=1 and, on SIGTERM, STOPPING=1).
func ours(comp string) bool { return comp != "containerd" && comp != "etcd" }

// sendsReady says whether the component tells systemd it is ready: ours,
// and etcd (etcd.service is Type=notify too); containerd is not watched.
func sendsReady(comp string) bool { return comp != "containerd" }

// cuRun is one test's cluster-up cluster: where it lives and systemd's
// end of every component's NOTIFY_SOCKET.
type cuRun struct {
	spec      cuSpec
	root      string
	inventory string
	state     string
	upEnv     []string
	listeners map[string]*notifyListener // node/component
	c         *cluster
	downDone  bool
}

// startClusterUp skips unless E2E_CLUSTER_UP is set and we are root, then
// brings spec's cluster up with hack/cluster-up (hack/cluster-down runs at
// cleanup unless the test already took the cluster down).
func startClusterUp(t *testing.T, spec cuSpec) *cuRun {
	t.Helper()
	if os.Getenv("E2E_CLUSTER_UP") == "" {
		t.Skip("brings up its own cluster with hack/cluster-up: run it with `make e2e-cluster-up` (E2E_CLUSTER_UP=1)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, containerd, iptables")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	inventory, err := filepath.Abs(spec.inventory)
	if err != nil {
		t.Fatal(err)
	}
	r := &cuRun{
		spec:      spec,
		root:      root,
		inventory: inventory,
		state:     filepath.Join(root, "_output", "cluster", spec.state),
		listeners: map[string]*notifyListener{},
	}
	binDir := filepath.Join(root, "_output", "cluster", spec.binDir)
	if out, err := exec.Command("ip", "link", "show", spec.bridge).CombinedOutput(); err == nil {
		t.Fatalf("bridge %s exists already (%s): is another cluster-up test running? hack/cluster-down %s removes it", spec.bridge, bytes.TrimSpace(out), inventory)
	}

	// A copy of the binaries (of _output/bin, or E2E_CLUSTER_UP_BIN): a
	// `make build` by someone else during the test must not look like a
	// change to the second cluster-up.
	snapshotBinaries(t, env("E2E_CLUSTER_UP_BIN", filepath.Join(root, "_output", "bin")), binDir)
	t.Cleanup(func() { _ = os.RemoveAll(binDir) })

	// Where "systemd" listens: one socket per component.
	notifyDir := t.TempDir()
	for node, comps := range spec.nodes {
		for _, comp := range comps {
			if sendsReady(comp) {
				r.listeners[node+"/"+comp] = listenNotify(t, filepath.Join(notifyDir, node+"-"+comp+".sock"))
			}
		}
	}
	t.Cleanup(func() {
		if !r.downDone {
			t.Log("cleaning up with hack/cluster-down")
			r.down(t)
		}
	})

	r.upEnv = []string{"CLUSTER_UP_NOTIFY_DIR=" + notifyDir}
	out := r.up(t, 15*time.Minute)
	if !strings.Contains(out, "Coxswain cluster "+spec.name+" is up") {
		t.Fatalf("hack/cluster-up did not report the cluster up; output:\n%s", out)
	}
	r.c = &cluster{root: root, kubeconfig: filepath.Join(r.state, "admin.kubeconfig"), logs: filepath.Join(r.state, "logs")}
	return r
}

// up runs hack/cluster-up and returns its output; the test fails if it does.
func (r *cuRun) up(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return runScript(t, r.root, timeout, r.upEnv, filepath.Join(r.root, "hack", "cluster-up"), r.inventory)
}

// down runs hack/cluster-down.
func (r *cuRun) down(t *testing.T) string {
	t.Helper()
	return runScript(t, r.root, 5*time.Minute, nil, filepath.Join(r.root, "hack", "cluster-down"), r.inventory)
}

// everyComponentNotifiedReady: every component sent READY=1 on its socket.
func (r *cuRun) everyComponentNotifiedReady(t *testing.T) {
	for _, key := range sortedKeys(r.listeners) {
		if err := r.listeners[key].waitFor(sdReady, 2*time.Minute); err != nil {
			t.Errorf("%s: %v", key, err)
		} else {
			t.Logf("%s sent %s", key, sdReady)
		}
	}
}

// TestClusterUp brings a one-master, two-worker cluster up with
// hack/cluster-up over the netns transport, checks that every component
// told "systemd" it was ready (READY=1 on the NOTIFY_SOCKET the transport
// hands it), that both nodes are Ready and pods run on them and reach each
// other, that a second hack/cluster-up changes nothing (no file rewritten,
// no process restarted), and that hack/cluster-down stops every component
// (STOPPING=1) and leaves nothing behind. It brings up its own cluster, so
// `make e2e` (which runs the suite against hack/netns-cluster.sh) skips it;
// `make e2e-cluster-up` runs it.
func TestClusterUp(t *testing.T) {
	r := startClusterUp(t, cuOneMaster)
	c := r.c

	t.Run("EveryComponentNotifiedReady", r.everyComponentNotifiedReady)
	t.Run("NodesReadyAndPodsRun", func(t *testing.T) {
		waitFor(t, "worker-1 and worker-2 Ready", 3*time.Minute, func() (bool, string) {
			var nodes corev1.NodeList
			if err := c.getJSON(&nodes, "get", "nodes"); err != nil {
				return false, err.Error()
			}
			var ready []string
			for _, n := range nodes.Items {
				if nodeReady(&n) {
					ready = append(ready, n.Name)
				}
			}
			sort.Strings(ready)
			return strings.Join(ready, ",") == "worker-1,worker-2", fmt.Sprintf("Ready: %v of %d nodes", ready, len(nodes.Items))
		})
		t.Log(c.must(t, "get", "nodes", "-o", "wide"))
		ns := c.namespace(t, "cluster-up")
		for _, w := range []string{"worker-1", "worker-2"} {
			c.apply(t, ns, &corev1.Pod{
				TypeMeta:   typeMeta("Pod", "v1"),
				ObjectMeta: metav1.ObjectMeta{Name: "sleeper-" + w},
				Spec: corev1.PodSpec{
					NodeName: w,
					Containers: []corev1.Container{{
						Name: "c", Image: "coxswain/busybox:latest", ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"sh", "-c", "echo hello from $(hostname); exec sleep 3600"},
					}},
				},
			})
		}
		ips := map[string]string{}
		waitFor(t, "both pods Running and Ready", 3*time.Minute, func() (bool, string) {
			pods, err := c.pods(ns, "")
			if err != nil {
				return false, err.Error()
			}
			n := 0
			for _, p := range pods {
				if podReady(&p) && p.Status.PodIP != "" {
					ips[p.Spec.NodeName] = p.Status.PodIP
					n++
				}
			}
			return n == 2, podSummary(pods)
		})
		t.Log(c.must(t, "-n", ns, "get", "pods", "-o", "wide"))
		// kubectl logs and exec go through the apiserver to the kubelets,
		// with the certificates cluster-up issued.
		if got := c.must(t, "-n", ns, "logs", "sleeper-worker-1"); !strings.Contains(got, "hello from sleeper-worker-1") {
			t.Errorf("kubectl logs sleeper-worker-1 = %q, want the greeting", got)
		}
		// Pod to pod across nodes: the host-gw routes cluster-up programs.
		got := c.must(t, "-n", ns, "exec", "sleeper-worker-1", "--", "ping", "-c", "2", "-W", "5", ips["worker-2"])
		if !strings.Contains(got, "2 packets received") {
			t.Errorf("ping from worker-1's pod to worker-2's pod %s:\n%s", ips["worker-2"], got)
		}
		t.Logf("pod on worker-1 pinged the pod on worker-2 (%s): %s", ips["worker-2"], lastLine(got))
	})
	if t.Failed() {
		return
	}

	t.Run("SecondRunChangesNothing", r.secondRunChangesNothing)
	t.Run("DownLeavesNothing", r.downLeavesNothing)
}

// secondRunChangesNothing runs hack/cluster-up again: it must report every
// node's files up to date, send, start, restart or issue nothing, and leave
// every process and every installed file as it was.
func (r *cuRun) secondRunChangesNothing(t *testing.T) {
	pidsBefore := componentPids(t, r.state, r.spec.nodes)
	filesBefore := nodeFiles(t, r.state, r.spec.nodes)
	t.Logf("before: %d processes %v; %d files on the nodes", len(pidsBefore), pidsBefore, len(filesBefore))
	out := r.up(t, 10*time.Minute)
	for _, bad := range []string{"starting ", "restarting ", "sent ", "route ", "issued certificate", "created the cluster CA", "building the"} {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, bad) {
				t.Errorf("second cluster-up did something: %q", line)
			}
		}
	}
	for node := range r.spec.nodes {
		if !strings.Contains(out, node+": files up to date") {
			t.Errorf("second cluster-up did not report %s's files up to date", node)
		}
	}
	pidsAfter := componentPids(t, r.state, r.spec.nodes)
	if d := diffMaps(pidsBefore, pidsAfter); d != "" {
		t.Errorf("processes changed across the second cluster-up (a restart):\n%s", d)
	}
	for key, pid := range pidsAfter {
		if err := checkProcess(pid, r.state, r.spec.nsPrefix, key); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	if d := diffMaps(filesBefore, nodeFiles(t, r.state, r.spec.nodes)); d != "" {
		t.Errorf("files on the nodes changed across the second cluster-up:\n%s", d)
	}
	for _, key := range sortedKeys(r.listeners) {
		if states := r.listeners[key].drain(); len(states) > 0 {
			t.Errorf("%s sent %q during the second cluster-up (restarted?)", key, states)
		}
	}
	t.Logf("after: same %d processes, same %d files", len(pidsAfter), len(filesBefore))
}

// downLeavesNothing runs hack/cluster-down: every component stops (ours
// say STOPPING=1), and no process, namespace, bridge, iptables chain, mount
// or state but the logs is left.
func (r *cuRun) downLeavesNothing(t *testing.T) {
	pids := componentPids(t, r.state, r.spec.nodes)
	r.downDone = true
	r.down(t)
	for _, key := range sortedKeys(r.listeners) {
		if _, comp, _ := strings.Cut(key, "/"); !ours(comp) {
			continue
		}
		if err := r.listeners[key].waitFor(sdStopping, time.Minute); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	for key, pid := range pids {
		if processAlive(pid) {
			t.Errorf("%s (pid %s) still runs after cluster-down", key, pid)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), r.spec.nsPrefix) {
		t.Errorf("namespaces left: %s", out)
	}
	if out, _ := exec.Command("ip", "-br", "link").Output(); strings.Contains(string(out), r.spec.bridge) {
		t.Errorf("bridge %s or its veths left:\n%s", r.spec.bridge, out)
	}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		if out, err := exec.Command(ipt, "-S", r.spec.chain).CombinedOutput(); err == nil {
			t.Errorf("%s chain %s left: %s", ipt, r.spec.chain, out)
		}
		if out, _ := exec.Command(ipt, "-S", "FORWARD").Output(); strings.Contains(string(out), r.spec.chain) {
			t.Errorf("%s FORWARD still jumps to %s:\n%s", ipt, r.spec.chain, out)
		}
	}
	if mounts, err := os.ReadFile("/proc/mounts"); err != nil {
		t.Error(err)
	} else if strings.Contains(string(mounts), r.state) || strings.Contains(string(mounts), "/run/netns/"+r.spec.nsPrefix) {
		t.Errorf("mounts left under %s or of its namespaces", r.state)
	}
	if procs := processesUnder(r.state); len(procs) > 0 {
		t.Errorf("processes left running from %s: %v", r.state, procs)
	}
	entries, err := os.ReadDir(r.state)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "logs" {
			t.Errorf("%s left in %s (only logs/ should stay)", e.Name(), r.state)
		}
	}
	t.Logf("cluster-down: %d processes gone, no namespace, bridge, chain, mount or state left", len(pids))
}

// runScript runs a hack script, its output in the test log, and fails the
// test when it fails.
func runScript(t *testing.T, dir string, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ %s %s (%v)\n%s", filepath.Base(name), strings.Join(args, " "), time.Since(start).Round(time.Second), buf.String())
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	return buf.String()
}

func snapshotBinaries(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubelet", "kube-proxy", "coxswain-images"} {
		if err := copyFile(filepath.Join(from, b), filepath.Join(to, b)); err != nil {
			t.Fatalf("snapshot of the binaries (run make build first): %v", err)
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(to+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(to+".tmp", to)
}

// componentPids reads the netns transport's pid files: node/component -> pid.
func componentPids(t *testing.T, state string, nodes map[string][]string) map[string]string {
	t.Helper()
	pids := map[string]string{}
	for node, comps := range nodes {
		for _, comp := range comps {
			b, err := os.ReadFile(filepath.Join(state, "nodes", node, "run", "coxswain", comp))
			if err != nil {
				t.Fatalf("pid of %s on %s: %v", comp, node, err)
			}
			pids[node+"/"+comp] = strings.TrimSpace(string(b))
		}
	}
	return pids
}

// checkProcess checks pid runs the component's binary (ours from the
// node's /usr/local/bin, etcd Debian's /usr/bin/etcd) in the node's network
// namespace (nsPrefix + node).
func checkProcess(pidStr, state, nsPrefix, key string) error {
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return fmt.Errorf("pid %q: %w", pidStr, err)
	}
	if !processAlive(pid) {
		return fmt.Errorf("pid %d is not running", pid)
	}
	node, comp, _ := strings.Cut(key, "/")
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return err
	}
	if want := filepath.Join(state, "nodes", node, "usr", "local", "bin", comp); ours(comp) && exe != want {
		return fmt.Errorf("pid %d runs %s, want %s", pid, exe, want)
	}
	if comp == "etcd" && exe != "/usr/bin/etcd" {
		return fmt.Errorf("pid %d runs %s, want /usr/bin/etcd", pid, exe)
	}
	nsOf := func(path string) (uint64, error) {
		info, err := os.Stat(path)
		if err != nil {
			return 0, err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, fmt.Errorf("stat %s: no inode", path)
		}
		return st.Ino, nil
	}
	procNS, err := nsOf(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	nodeNS, err := nsOf("/run/netns/" + nsPrefix + node)
	if err != nil {
		return err
	}
	if procNS != nodeNS {
		return fmt.Errorf("pid %d is not in namespace %s%s", pid, nsPrefix, node)
	}
	return nil
}

func processAlive[T int | string](pid T) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%v/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name; zombies are gone.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// processesUnder lists running processes whose executable lies under dir.
func processesUnder(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, dir+"/") && processAlive(e.Name()) {
			found = append(found, e.Name()+" "+exe)
		}
	}
	return found
}

// nodeFiles maps every file cluster-up installs on the nodes (binaries,
// units, env files, certificates, kubeconfigs, images) to its checksum and
// modification time.
func nodeFiles(t *testing.T, state string, nodes map[string][]string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for node := range nodes {
		base := filepath.Join(state, "nodes", node)
		for _, sub := range []string{"usr/local/bin", "etc/systemd/system", "etc/coxswain", "var/lib/coxswain/images"} {
			dir := filepath.Join(base, sub)
			err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil {
					if errors.Is(err, os.ErrNotExist) {
						return nil
					}
					return err
				}
				// The kubelet writes its CNI config; it is not cluster-up's.
				if d.IsDir() && path == filepath.Join(base, "etc/coxswain/cni") {
					return filepath.SkipDir
				}
				if d.IsDir() {
					return nil
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				sum, err := fileSum(path)
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(state, path)
				files[rel] = sum[:16] + " " + info.ModTime().UTC().Format(time.RFC3339Nano)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return files
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func diffMaps(before, after map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(before) {
		if a, ok := after[k]; !ok {
			fmt.Fprintf(&b, "  %s: %s -> gone\n", k, before[k])
		} else if a != before[k] {
			fmt.Fprintf(&b, "  %s: %s -> %s\n", k, before[k], a)
		}
	}
	for _, k := range sortedKeys(after) {
		if _, ok := before[k]; !ok {
			fmt.Fprintf(&b, "  %s: new %s\n", k, after[k])
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return last
}

// The sd_notify states (pkg/sdnotify; this module does not import pkg).
const (
	sdReady    = "READY=1"
	sdStopping = "STOPPING=1"
)

// notifyListener is systemd's end of NOTIFY_SOCKET: it records every
// state the component sends.
type notifyListener struct {
	conn *net.UnixConn
	mu   sync.Mutex
	seen []string
	got  chan struct{} // signalled on every datagram
}

func listenNotify(t *testing.T, path string) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// The components run as root but in other namespaces: any may write.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	l := &notifyListener{conn: conn, got: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.seen = append(l.seen, strings.Split(strings.TrimSpace(string(buf[:n])), "\n")...)
			l.mu.Unlock()
			select {
			case l.got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
		_ = os.Remove(path)
	})
	return l
}

// waitFor waits until state has arrived and consumes everything seen up to it.
func (l *notifyListener) waitFor(state string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for i, s := range l.seen {
			if s == state {
				l.seen = l.seen[i+1:]
				l.mu.Unlock()
				return nil
			}
		}
		seen := append([]string(nil), l.seen...)
		l.mu.Unlock()
		select {
		case <-l.got:
		case <-deadline.C:
			return fmt.Errorf("no %s within %v (received %q)", state, timeout, seen)
		}
	}
}

// drain returns and forgets what arrived since the last waitFor.
func (l *notifyListener) drain() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen
	l.seen = nil
	return s
}
