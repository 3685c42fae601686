//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cluster is the netns cluster under test.
type cluster struct {
	root       string // repository root
	kubeconfig string
	script     string // hack/netns-cluster.sh
	logs       string // the components' logs
	registry   string // host:port of the images
	nodes      []node
}

type node struct {
	name string
	ip   string // InternalIP
	// worker is the worker's index in hack/netns-cluster.sh (worker-I).
	worker string
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		root:       root,
		kubeconfig: env("E2E_KUBECONFIG", filepath.Join(root, "_output", "netns", "admin.kubeconfig")),
		script:     env("E2E_CLUSTER_SCRIPT", filepath.Join(root, "hack", "netns-cluster.sh")),
		logs:       filepath.Join(root, "_output", "netns", "logs"),
		registry:   env("E2E_REGISTRY", "10.200.0.1:5000"),
	}
	if _, err := os.Stat(c.kubeconfig); err != nil {
		t.Fatalf("no kubeconfig at %s (%v): bring the cluster up with `hack/netns-cluster.sh up 3`, or run `make e2e`", c.kubeconfig, err)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is not on PATH")
	}
	waitFor(t, "the apiserver's /readyz", 2*time.Minute, func() (bool, string) {
		out, err := c.kubectl("get", "--raw", "/readyz")
		return err == nil, fmt.Sprint(out, err)
	})
	waitFor(t, "every node Ready", 3*time.Minute, func() (bool, string) {
		var nodes corev1.NodeList
		if err := c.getJSON(&nodes, "get", "nodes"); err != nil {
			return false, err.Error()
		}
		c.nodes = nil
		var notReady []string
		for _, n := range nodes.Items {
			nd := node{name: n.Name, worker: strings.TrimPrefix(n.Name, "worker-")}
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					nd.ip = a.Address
				}
			}
			c.nodes = append(c.nodes, nd)
			if !nodeReady(&n) {
				notReady = append(notReady, n.Name)
			}
		}
		sort.Slice(c.nodes, func(i, j int) bool { return c.nodes[i].name < c.nodes[j].name })
		return len(nodes.Items) > 0 && len(notReady) == 0, fmt.Sprintf("%d nodes, not Ready: %v", len(nodes.Items), notReady)
	})
	return c
}

// kubectl runs kubectl against the cluster and returns its standard output.
func (c *cluster) kubectl(args ...string) (string, error) {
	return c.kubectlStdin("", args...)
}

func (c *cluster) kubectlStdin(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", c.kubeconfig, "--request-timeout", "30s"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// must runs kubectl and fails the test on an error.
func (c *cluster) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// getJSON runs kubectl ARGS -o json and decodes the output into v.
func (c *cluster) getJSON(v any, args ...string) error {
	out, err := c.kubectl(append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decode kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// apply applies objects (each marshalled to JSON) with kubectl apply.
func (c *cluster) apply(t testing.TB, ns string, objs ...any) {
	t.Helper()
	var items []json.RawMessage
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, b)
	}
	list, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if _, err := c.kubectlStdin(string(list), "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// clusterScript runs hack/netns-cluster.sh with args (kill, start).
func (c *cluster) clusterScript(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.script, args...).CombinedOutput()
	t.Logf("%s %s:\n%s", filepath.Base(c.script), strings.Join(args, " "), strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("%s %s: %v", c.script, strings.Join(args, " "), err)
	}
}

// namespace creates a namespace for one test and deletes it afterwards
// (unless the test failed, to leave the evidence; hack/netns-cluster.sh down
// removes everything anyway).
func (c *cluster) namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := prefix + "-" + randSuffix()
	c.must(t, "create", "namespace", ns)
	t.Cleanup(func() {
		if t.Failed() {
			c.dump(t, ns)
			return
		}
		_, _ = c.kubectl("delete", "namespace", ns, "--wait=false")
	})
	return ns
}

// dump logs the state that explains a failure: nodes, the namespace's pods
// and events, and where the components' logs are.
func (c *cluster) dump(t testing.TB, ns string) {
	for _, args := range [][]string{
		{"get", "nodes", "-o", "wide"},
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "events", "-n", ns, "--sort-by", ".lastTimestamp"},
	} {
		out, err := c.kubectl(args...)
		t.Logf("kubectl %s:\n%s%v", strings.Join(args, " "), out, errOrEmpty(err))
	}
	t.Logf("component logs: %s", c.logs)
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func randSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitFor polls cond every second until it reports done or timeout passes;
// then the test fails with cond's last explanation.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		done, detail := cond()
		if done {
			t.Logf("%s: after %v", what, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, detail)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("cancelled waiting for %s; last state: %s", what, detail)
		case <-time.After(time.Second):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeReadyStatus(n *corev1.Node) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// deploymentComplete reports whether the Deployment's latest generation is
// rolled out: every replica updated and available, no old ones left.
func (c *cluster) deploymentComplete(ns, name string) (bool, string) {
	var d appsv1.Deployment
	if err := c.getJSON(&d, "get", "deployment", "-n", ns, name); err != nil {
		return false, err.Error()
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	detail := fmt.Sprintf("%s/%s: generation %d observed %d, replicas %d updated %d ready %d available %d (want %d)",
		ns, name, d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, want)
	return s.ObservedGeneration >= d.Generation && s.Replicas == want && s.UpdatedReplicas == want && s.AvailableReplicas == want, detail
}

// pods lists a namespace's pods matching a label selector.
func (c *cluster) pods(ns, selector string) ([]corev1.Pod, error) {
	var l corev1.PodList
	args := []string{"get", "pods", "-n", ns}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	if err := c.getJSON(&l, args...); err != nil {
		return nil, err
	}
	return l.Items, nil
}

func podSummary(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		del := ""
		if p.DeletionTimestamp != nil {
			del = " deleting"
		}
		fmt.Fprintf(&b, "[%s %s on %q ip %s ready=%v%s] ", p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP, podReady(&p), del)
	}
	return b.String()
}

// httpClient makes a new connection per request, never through a proxy.
var httpClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

func httpGet(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// The objects the tests create.

func ptr[T any](v T) *T { return &v }

func (c *cluster) busybox() string { return c.registry + "/coxswain/busybox:latest" }

func typeMeta(kind, apiVersion string) metav1.TypeMeta {
	return metav1.TypeMeta{Kind: kind, APIVersion: apiVersion}
}

// shellPod is a busybox pod running script with sh, on nodeName's node
// (through the kubernetes.io/hostname label, so the scheduler places it).
func (c *cluster) shellPod(name, nodeName string, labels map[string]string, restart corev1.RestartPolicy, script string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   typeMeta("Pod", "v1"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 restart,
			TerminationGracePeriodSeconds: ptr(int64(5)),
			Containers: []corev1.Container{{
				Name:    "main",
				Image:   c.busybox(),
				Command: []string{"sh", "-c", script},
			}},
		},
	}
	if nodeName != "" {
		p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: nodeName}
	}
	return p
}

// runToCompletion creates pods that exit by themselves, waits until each
// has Succeeded or Failed, and returns their logs by name.
func (c *cluster) runToCompletion(t *testing.T, ns string, timeout time.Duration, pods ...*corev1.Pod) map[string]string {
	t.Helper()
	objs := make([]any, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	c.apply(t, ns, objs...)
	for _, p := range pods {
		waitFor(t, "pod "+p.Name+" to finish", timeout, func() (bool, string) {
			var got corev1.Pod
			if err := c.getJSON(&got, "get", "pod", "-n", ns, p.Name); err != nil {
				return false, err.Error()
			}
			done := got.Status.Phase == corev1.PodSucceeded || got.Status.Phase == corev1.PodFailed
			return done, fmt.Sprintf("phase %s on %q", got.Status.Phase, got.Spec.NodeName)
		})
	}
	logs := map[string]string{}
	for _, p := range pods {
		out, err := c.kubectl("logs", "-n", ns, p.Name)
		if err != nil {
			t.Fatalf("logs of %s: %v", p.Name, err)
		}
		logs[p.Name] = out
	}
	return logs
}

// fetchScript defines fetch URL (wget into /tmp/out, killed after 5s:
// busybox-static's wget -T crashes) and check KIND WANT URL (retries fetch
// for 30s until the body starts with WANT; prints PASS or FAIL).
const fetchScript = `
fetch() {
  rm -f /tmp/out /tmp/err
  wget -q -O /tmp/out "$1" 2>/tmp/err &
  p=$!
  n=0
  while kill -0 $p 2>/dev/null; do
    n=$((n+1))
    if [ $n -gt 50 ]; then kill $p; echo "timeout" >>/tmp/err; break; fi
    sleep 0.1
  done
  wait $p
}
check() {
  i=0
  while [ $i -lt 30 ]; do
    if fetch "$3" && grep -q "^$2 " /tmp/out; then echo "PASS $1 $2 $3"; return 0; fi
    i=$((i+1))
    sleep 1
  done
  echo "FAIL $1 $2 $3: $(cat /tmp/out /tmp/err 2>/dev/null | tr '\n' ' ' | head -c 300)"
  failed=1
  return 1
}
failed=0
`
