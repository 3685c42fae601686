package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

// kubectlBin is the stock kubectl the tests drive.
const kubectlBin = "/usr/bin/kubectl"

type kubectl struct {
	t   *testing.T
	env *harness.Env
}

func newKubectl(t *testing.T, env *harness.Env) *kubectl {
	t.Helper()
	if _, err := os.Stat(kubectlBin); err != nil {
		t.Skipf("stock kubectl not found at %s: %v", kubectlBin, err)
	}
	return &kubectl{t: t, env: env}
}

// run runs kubectl with the apiserver's admin kubeconfig and returns
// stdout, stderr and the error.
func (k *kubectl) run(stdin string, args ...string) (string, string, error) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectlBin, append([]string{"--kubeconfig", k.env.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+k.t.TempDir(), "KUBECACHEDIR="+k.t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// ok runs kubectl and fails the test unless it succeeds.
func (k *kubectl) ok(args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run("", args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs kubectl, expects it to fail, and returns stderr.
func (k *kubectl) fails(args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run("", args...)
	if err == nil {
		k.t.Fatalf("kubectl %s succeeded, want failure\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: output lacks %q:\n%s", what, w, got)
		}
	}
}

func TestKubectlDiscoveryAndReads(t *testing.T) {
	env := harness.Start(t)
	k := newKubectl(t, env)

	mustContain(t, "version", k.ok("version"), "Server Version: v1.32")
	res := k.ok("api-resources")
	for _, line := range []string{"pods", "po", "deployments", "deploy", "replicasets", "rs", "services", "svc", "namespaces", "ns", "nodes", "no", "configmaps", "cm", "endpoints", "ep", "daemonsets", "ds", "statefulsets", "sts", "horizontalpodautoscalers", "hpa", "cronjobs", "cj", "replicationcontrollers", "rc"} {
		mustContain(t, "api-resources", res, line)
	}
	mustContain(t, "api-resources --namespaced=false", k.ok("api-resources", "--namespaced=false"), "namespaces", "nodes")
	mustContain(t, "api-versions", k.ok("api-versions"), "v1\n", "apps/v1", "batch/v1", "coordination.k8s.io/v1")
	mustContain(t, "cluster-info", k.ok("cluster-info"), "Kubernetes control plane is running at https://127.0.0.1:")

	mustContain(t, "get ns", k.ok("get", "ns"), "NAME", "STATUS", "default", "Active", "kube-system", "kube-node-lease", "kube-public")
	mustContain(t, "get svc -A -o wide", k.ok("get", "svc", "-A", "-o", "wide"), "NAMESPACE", "CLUSTER-IP", "kubernetes", "443/TCP", "SELECTOR")
	errOut := k.fails("get", "pod", "nope")
	mustContain(t, "get missing pod", errOut, `Error from server (NotFound): pods "nope" not found`)
	mustContain(t, "get all", k.ok("get", "all"), "service/kubernetes")
}

func TestKubectlWorkflow(t *testing.T) {
	env := harness.Start(t)
	k := newKubectl(t, env)
	dir := t.TempDir()

	// The seed manifest (RC, NodePort Service, Deployment, ConfigMap,
	// Secret in one file) creates unchanged.
	out := k.ok("create", "-f", "testdata/seed.yaml")
	mustContain(t, "create -f", out, "replicationcontroller/redis-master created", "service/frontend created", "deployment.apps/frontend created", "configmap/guestbook-config created", "secret/guestbook-secret created")
	mustContain(t, "get rc,svc,deploy", k.ok("get", "rc,svc,deploy"), "redis-master", "80:30001/TCP", "frontend")
	mustContain(t, "get -l", k.ok("get", "deploy,svc", "-l", "app=guestbook", "-o", "name"), "deployment.apps/frontend", "service/frontend")
	mustContain(t, "get -o jsonpath", k.ok("get", "deploy", "frontend", "-o", "jsonpath={.spec.replicas}"), "3")
	mustContain(t, "get -o custom-columns", k.ok("get", "svc", "frontend", "-o", "custom-columns=NAME:.metadata.name,PORT:.spec.ports[0].nodePort"), "frontend", "30001")
	mustContain(t, "get --show-labels", k.ok("get", "rc", "--show-labels"), "app=redis,role=master")
	mustContain(t, "get -o yaml", k.ok("get", "cm", "guestbook-config", "-o", "yaml"), "greeting: hello", "resourceVersion:")
	var secret map[string]any
	if err := json.Unmarshal([]byte(k.ok("get", "secret", "guestbook-secret", "-o", "json")), &secret); err != nil {
		t.Fatalf("get -o json: %v", err)
	}
	if data, _ := secret["data"].(map[string]any); data["password"] != "czNjcmV0" {
		t.Fatalf("secret data = %v, want password=base64(s3cret)", secret["data"])
	}
	mustContain(t, "describe deploy", k.ok("describe", "deploy", "frontend"), "Name:", "frontend", "Replicas:", "3 desired")

	// apply: create, then change the file and apply again.
	manifest := filepath.Join(dir, "app.yaml")
	write := func(replicas, image string) {
		doc := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: ` + replicas + `
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: ` + image + `
`
		if err := os.WriteFile(manifest, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1", "busybox:1")
	mustContain(t, "apply (create)", k.ok("apply", "-f", manifest), "deployment.apps/app created")
	write("2", "busybox:2")
	mustContain(t, "apply (change)", k.ok("apply", "-f", manifest), "deployment.apps/app configured")
	mustContain(t, "applied change", k.ok("get", "deploy", "app", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}"), "2 busybox:2")
	mustContain(t, "apply (unchanged)", k.ok("apply", "-f", manifest), "deployment.apps/app unchanged")
	mustContain(t, "apply --server-side", k.ok("apply", "--server-side", "-f", manifest), "serverside-applied")

	// replace, scale, label, annotate, patch (three types).
	write("4", "busybox:2")
	mustContain(t, "replace", k.ok("replace", "-f", manifest), "deployment.apps/app replaced")
	mustContain(t, "scale", k.ok("scale", "deploy", "app", "--replicas=5"), "deployment.apps/app scaled")
	mustContain(t, "scaled", k.ok("get", "deploy", "app", "-o", "jsonpath={.spec.replicas}"), "5")
	k.ok("label", "deploy", "app", "tier=backend")
	k.ok("annotate", "deploy", "app", "owner=team-a")
	mustContain(t, "label/annotate", k.ok("get", "deploy", "app", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}"), "backend team-a")
	k.ok("patch", "deploy", "app", "-p", `{"spec":{"replicas":2}}`)
	k.ok("patch", "deploy", "app", "--type=merge", "-p", `{"metadata":{"labels":{"merged":"yes"}}}`)
	k.ok("patch", "deploy", "app", "--type=json", "-p", `[{"op":"replace","path":"/spec/replicas","value":3}]`)
	mustContain(t, "patches", k.ok("get", "deploy", "app", "-o", "jsonpath={.spec.replicas} {.metadata.labels.merged}"), "3 yes")

	// edit through an EDITOR script.
	editor := filepath.Join(dir, "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/greeting: hello/greeting: edited/' \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectlBin, "--kubeconfig", env.Kubeconfig, "edit", "cm", "guestbook-config")
	cmd.Env = append(os.Environ(), "EDITOR="+editor, "HOME="+t.TempDir())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl edit: %v\n%s", err, b)
	}
	mustContain(t, "edit", k.ok("get", "cm", "guestbook-config", "-o", "jsonpath={.data.greeting}"), "edited")

	// Bad input reads as upstream's.
	bad := `apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: c
`
	_, errOut, err := k.run(bad, "create", "-f", "-")
	if err == nil {
		t.Fatalf("creating a pod without an image succeeded")
	}
	mustContain(t, "invalid pod", errOut, `The Pod "bad" is invalid`, "spec.containers[0].image: Required value")

	// delete: by name, -f, -l, --all.
	mustContain(t, "delete by name", k.ok("delete", "deploy", "app"), `deployment.apps "app" deleted`)
	mustContain(t, "delete -l", k.ok("delete", "rc", "-l", "app=redis"), `replicationcontroller "redis-master" deleted`)
	mustContain(t, "delete -f", k.ok("delete", "-f", "testdata/seed.yaml", "--ignore-not-found"), `service "frontend" deleted`)
	k.ok("create", "cm", "a", "--from-literal=x=1")
	k.ok("create", "cm", "b", "--from-literal=x=2")
	mustContain(t, "delete --all", k.ok("delete", "cm", "--all"), `configmap "a" deleted`, `configmap "b" deleted`)
	if out := k.ok("get", "cm", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("configmaps left after delete --all: %q", out)
	}
}

func TestKubectlWaitWatchExplainDiff(t *testing.T) {
	env := harness.Start(t)
	k := newKubectl(t, env)
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](env.Client)
	if _, err := pods.Create(ctx, "default", pod("w")); err != nil {
		t.Fatal(err)
	}

	// wait --for=condition: a status update made while kubectl waits.
	done := make(chan string, 1)
	go func() {
		out, errOut, err := k.run("", "wait", "--for=condition=Ready", "pod/w", "--timeout=30s")
		if err != nil {
			out = "ERR " + err.Error() + " " + errOut
		}
		done <- out
	}()
	waitFor(t, func() bool {
		p, err := pods.Get(ctx, "default", "w")
		if err != nil {
			return false
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		_, err = pods.UpdateStatus(ctx, "default", p)
		return err == nil
	})
	mustContain(t, "wait --for=condition", <-done, "pod/w condition met")

	// get -w sees a change made while it watches.
	watchOut := make(chan string, 1)
	go func() {
		out, _, _ := k.run("", "get", "pods", "-w", "--request-timeout=6s")
		watchOut <- out
	}()
	waitFor(t, func() bool {
		_, err := pods.Create(ctx, "default", pod("seen"))
		return err == nil || apierrors.IsAlreadyExists(err)
	})
	mustContain(t, "get -w", <-watchOut, "NAME", "w ", "seen")

	// wait --for=delete returns once the object is gone: a finalizer holds
	// it until kubectl is watching.
	held, err := pods.Get(ctx, "default", "seen")
	if err != nil {
		t.Fatal(err)
	}
	held.Finalizers = []string{"example.com/hold"}
	if _, err := pods.Update(ctx, "default", held); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Delete(ctx, "default", "seen", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		out, errOut, err := k.run("", "wait", "--for=delete", "pod/seen", "--timeout=30s")
		if err != nil {
			out = "ERR " + err.Error() + " " + errOut
		}
		done <- out
	}()
	waitFor(t, func() bool { return restWatchers(t, env, "pods") > 0 })
	select {
	case out := <-done:
		t.Fatalf("kubectl wait --for=delete returned while the pod exists: %s", out)
	default:
	}
	last, err := pods.Get(ctx, "default", "seen")
	if err != nil {
		t.Fatal(err)
	}
	last.Finalizers = nil
	if _, err := pods.Update(ctx, "default", last); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "wait --for=delete", <-done, "pod/seen condition met")

	mustContain(t, "explain", k.ok("explain", "pod.spec.containers"), "KIND:", "Pod", "FIELD: containers", "image")
	mustContain(t, "field selector", k.ok("get", "pods", "--field-selector", "metadata.name=w", "-o", "name"), "pod/w")
	k.ok("get", "events", "-A")

	// diff shows a change against the live object.
	manifest := filepath.Join(t.TempDir(), "cm.yaml")
	k.ok("create", "cm", "d", "--from-literal=k=v1")
	if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata:\n  k: v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := k.run("", "diff", "-f", manifest)
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
		t.Fatalf("kubectl diff: %v\n%s", err, errOut)
	}
	mustContain(t, "diff", out, "-  k: v1", "+  k: v2")
}

// restWatchers reads apiserver_registered_watchers for a resource.
func restWatchers(t *testing.T, env *harness.Env, resource string) int {
	t.Helper()
	cfg, err := kubeconfig.Load(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + env.Server.Address + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	prefix := `apiserver_registered_watchers{resource="` + resource + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			n, _ := strconv.Atoi(strings.TrimPrefix(line, prefix))
			return n
		}
	}
	return 0
}

// Server-side apply records field ownership and reports conflicts with
// another manager's fields, as upstream does.
func TestKubectlServerSideApply(t *testing.T) {
	env := harness.Start(t)
	k := newKubectl(t, env)
	manifest := filepath.Join(t.TempDir(), "app.yaml")
	doc := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ssa
  labels: {team: a}
spec:
  replicas: 2
  selector:
    matchLabels: {app: ssa}
  template:
    metadata:
      labels: {app: ssa}
    spec:
      containers:
      - name: app
        image: busybox:1
`
	if err := os.WriteFile(manifest, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "apply --server-side (create)", k.ok("apply", "--server-side", "-f", manifest), "deployment.apps/ssa serverside-applied")
	mf := k.ok("get", "deploy", "ssa", "-o", "yaml", "--show-managed-fields")
	mustContain(t, "managedFields", mf, "managedFields:", "manager: kubectl", "operation: Apply", "f:replicas: {}")

	k.ok("scale", "deploy", "ssa", "--replicas=5")
	mustContain(t, "scale tracked", k.ok("get", "deploy", "ssa", "-o", "yaml", "--show-managed-fields"), "operation: Update")
	errOut := k.fails("apply", "--server-side", "-f", manifest)
	mustContain(t, "apply conflict", errOut, "Apply failed with 1 conflict", `conflict with "kubectl"`, ".spec.replicas")
	k.ok("apply", "--server-side", "--force-conflicts", "-f", manifest)
	mustContain(t, "forced apply", k.ok("get", "deploy", "ssa", "-o", "jsonpath={.spec.replicas}"), "2")
}

// The demo's manifests apply unchanged (server-side dry run and for real).
func TestKubectlGuestbookManifest(t *testing.T) {
	env := harness.Start(t)
	k := newKubectl(t, env)
	manifest := filepath.Join("..", "..", "..", "deploy", "examples", "guestbook", "guestbook.yaml")
	mustContain(t, "apply --dry-run=server", k.ok("apply", "--dry-run=server", "-f", manifest), "deployment.apps/redis-master created (server dry run)")
	out := k.ok("apply", "-f", manifest)
	mustContain(t, "apply", out, "deployment.apps/redis-master created", "service/redis-replica created", "deployment.apps/frontend created", "service/frontend created")
	mustContain(t, "frontend NodePort", k.ok("get", "svc", "frontend", "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort}"), "NodePort 30001")
}
