package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/coxswain/coxswain/pkg/harness"
)

// oldKubectl unpacks Debian's kubernetes-client (kubectl 1.20) into a temp
// folder with apt-get download and dpkg -x, leaving /usr/bin/kubectl alone.
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
	dl := exec.Command("apt-get", "download", "kubernetes-client")
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

// The older kubectl of Debian 12 works for the core verbs.
func TestOldKubectl(t *testing.T) {
	bin := oldKubectl(t)
	env := harness.Start(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl 1.20 %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	mustContain(t, "version", run("version"), `GitVersion:"v1.20`, `GitVersion:"v1.32.0-coxswain"`)
	mustContain(t, "get ns", run("get", "ns"), "default", "Active")
	mustContain(t, "create cm", run("create", "configmap", "old", "--from-literal=a=b"), "configmap/old created")
	mustContain(t, "get cm -o yaml", run("get", "cm", "old", "-o", "yaml"), "a: b")
	mustContain(t, "label", run("label", "cm", "old", "x=y"), "configmap/old labeled")
	mustContain(t, "get -l", run("get", "cm", "-l", "x=y", "-o", "name"), "configmap/old")
	mustContain(t, "describe", run("describe", "cm", "old"), "Name:", "old")
	mustContain(t, "delete", run("delete", "cm", "old"), `configmap "old" deleted`)
	mustContain(t, "api-resources", run("api-resources"), "deployments")
}
