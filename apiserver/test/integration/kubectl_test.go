package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coxswain/coxswain/pkg/harness"
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
