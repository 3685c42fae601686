package sdnotify

// The systemd units of deploy/systemd, which run the components with
// Type=notify, are checked here: deploy/ is not a Go module, and this is the
// package of the systemd side of the components, so `make test` runs it.

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite deploy/systemd/*.env from deploy/systemd/inventory.example")

// unitSpec is what each unit of deploy/systemd must say.
type unitSpec struct {
	name   string // unit and component name
	binary string // ExecStart binary
	envVar string // the variable of the env file ExecStart expands ("" for etcd: ETCD_* variables)
	node   string // the inventory.example node whose env file is the example
}

var units = []unitSpec{
	{"etcd", "/usr/bin/etcd", "", "master-1"},
	{"kube-apiserver", "/usr/local/bin/kube-apiserver", "KUBE_APISERVER_ARGS", "master-1"},
	{"kube-scheduler", "/usr/local/bin/kube-scheduler", "KUBE_SCHEDULER_ARGS", "master-1"},
	{"kube-controller-manager", "/usr/local/bin/kube-controller-manager", "KUBE_CONTROLLER_MANAGER_ARGS", "master-1"},
	{"kubelet", "/usr/local/bin/kubelet", "KUBELET_ARGS", "worker-1"},
	{"kube-proxy", "/usr/local/bin/kube-proxy", "KUBE_PROXY_ARGS", "worker-1"},
}

// Units the deploy/systemd units may depend on besides each other:
// systemd's own and Debian's containerd.service.
var externalUnits = []string{"network-online.target", "containerd.service"}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "systemd")); err != nil {
		t.Fatalf("no deploy/systemd under %s: %v", root, err)
	}
	return root
}

// parseUnit returns the unit's Key=value settings by key, in order.
func parseUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	var cont string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not Key=value: %q", path, line)
		}
		kv[k] = append(kv[k], v)
	}
	return kv
}

func TestSystemdUnitsShape(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "systemd")
	var ours []string
	for _, u := range units {
		ours = append(ours, u.name+".service")
	}
	for _, u := range units {
		t.Run(u.name, func(t *testing.T) {
			kv := parseUnit(t, filepath.Join(dir, u.name+".service"))
			want := map[string]string{
				"Type":            "notify",
				"Restart":         "always",
				"EnvironmentFile": "/etc/coxswain/" + u.name + ".env",
				"WantedBy":        "multi-user.target",
			}
			for k, v := range want {
				if got := kv[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s=%q, want %q", k, got, v)
				}
			}
			wantExec := u.binary
			if u.envVar != "" {
				wantExec += " $" + u.envVar
			}
			if got := kv["ExecStart"]; len(got) != 1 || got[0] != wantExec {
				t.Errorf("ExecStart=%q, want %q", got, wantExec)
			}
			for _, key := range []string{"After", "Wants", "Requires"} {
				for _, v := range kv[key] {
					for _, dep := range strings.Fields(v) {
						if !slices.Contains(ours, dep) && !slices.Contains(externalUnits, dep) {
							t.Errorf("%s=%s: unknown unit %s", key, v, dep)
						}
					}
				}
			}
			if !slices.Contains(strings.Fields(strings.Join(kv["After"], " ")), "network-online.target") {
				t.Errorf("After=%q lacks network-online.target", kv["After"])
			}
		})
	}
	// The ordering of the stack: etcd, apiserver, then the rest; containerd
	// before the kubelet.
	order := map[string][]string{
		"kube-apiserver":          {"etcd.service"},
		"kube-scheduler":          {"kube-apiserver.service"},
		"kube-controller-manager": {"kube-apiserver.service"},
		"kubelet":                 {"containerd.service"},
	}
	for unit, after := range order {
		kv := parseUnit(t, filepath.Join(dir, unit+".service"))
		for _, a := range after {
			if !slices.Contains(strings.Fields(strings.Join(kv["After"], " ")), a) {
				t.Errorf("%s: After=%q lacks %s", unit, kv["After"], a)
			}
		}
	}
}

// binaries returns the component binaries: _output/bin's (make build), or
// built into a temp dir when missing.
func binaries(t *testing.T, root string) map[string]string {
	t.Helper()
	pkgs := map[string]string{
		"kube-apiserver":          "./apiserver/cmd/kube-apiserver",
		"kube-scheduler":          "./scheduler/cmd/kube-scheduler",
		"kube-controller-manager": "./controller-manager/cmd/kube-controller-manager",
		"kubelet":                 "./kubelet/cmd/kubelet",
		"kube-proxy":              "./kube-proxy/cmd/kube-proxy",
	}
	bins := map[string]string{}
	var tmp string
	for name, pkg := range pkgs {
		p := filepath.Join(root, "_output", "bin", name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			bins[name] = p
			continue
		}
		if tmp == "" {
			tmp = t.TempDir()
		}
		bins[name] = filepath.Join(tmp, name)
		cmd := exec.Command("go", "build", "-o", bins[name], pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("no %s in _output/bin and go build %s failed: %v\n%s", name, pkg, err, out)
		}
		t.Logf("%s: not in _output/bin, built for the test", name)
	}
	return bins
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on copies of the
// units whose ExecStart points at the built binaries (etcd, which this
// project does not build, at a stub unless /usr/bin/etcd exists).
// systemd-analyze reports problems on its output but often still exits 0:
// any output fails the test.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd), so deploy/systemd cannot be verified")
	}
	root := repoRoot(t)
	bins := binaries(t, root)
	etcd := "/usr/bin/etcd"
	if _, err := os.Stat(etcd); err != nil {
		etcd = filepath.Join(t.TempDir(), "etcd")
		if err := os.WriteFile(etcd, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("etcd is not installed: etcd.service's ExecStart points at a stub %s", etcd)
	}
	bins["etcd"] = etcd

	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		src, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", u.name+".service"))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^ExecStart=` + regexp.QuoteMeta(u.binary))
		if !re.Match(src) {
			t.Fatalf("%s.service: no ExecStart=%s", u.name, u.binary)
		}
		p := filepath.Join(dir, u.name+".service")
		if err := os.WriteFile(p, re.ReplaceAll(src, []byte("ExecStart="+bins[u.name])), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	if out := verify(t, analyze, paths...); out != "" {
		t.Errorf("systemd-analyze verify deploy/systemd/*.service:\n%s", out)
	} else {
		t.Logf("systemd-analyze verify: %d units clean", len(paths))
	}

	// The check catches what systemd-analyze only warns about.
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte("[Service]\nType=notifyy\nExecStart="+bins["kubelet"]+"\nRestart=alwayz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := verify(t, analyze, bad); !strings.Contains(out, "notifyy") || !strings.Contains(out, "alwayz") {
		t.Errorf("a unit with Type=notifyy and Restart=alwayz passed verification: %q", out)
	}
}

// verify returns systemd-analyze verify's complaints ("" when clean).
func verify(t *testing.T, analyze string, paths ...string) string {
	t.Helper()
	args := append([]string{"verify", "--man=no", "--recursive-errors=no"}, paths...)
	out, err := exec.Command(analyze, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		t.Fatalf("systemd-analyze %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// The example env files are what hack/cluster-up writes for
// deploy/systemd/inventory.example, and the binaries accept their flags
// (read as bash reads them, which is how systemd reads EnvironmentFile=:
// quotes, backslash-newline continuations).
func TestEnvFileExamples(t *testing.T) {
	root := repoRoot(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "hack", "cluster-up"), "--render-env", out, filepath.Join(root, "deploy", "systemd", "inventory.example"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/cluster-up --render-env: %v\n%s", err, b)
	}
	bins := binaries(t, root)
	for _, u := range units {
		t.Run(u.name, func(t *testing.T) {
			example := filepath.Join(root, "deploy", "systemd", u.name+".env")
			rendered, err := os.ReadFile(filepath.Join(out, u.node, u.name+".env"))
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(example, rendered, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			have, err := os.ReadFile(example)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(rendered), string(have)); diff != "" {
				t.Errorf("deploy/systemd/%s.env is not what hack/cluster-up renders (go test -run TestEnvFileExamples -update rewrites it) (-rendered +file):\n%s", u.name, diff)
			}
			if u.envVar == "" {
				return
			}
			sh := exec.Command("bash", "-c", `set -a; . "$1"; set +a; printf '%s\n' ${`+u.envVar+`}`, "env", example)
			words, err := sh.Output()
			if err != nil {
				t.Fatalf("bash reading %s: %v", example, err)
			}
			args := strings.Fields(string(words))
			if len(args) < 2 {
				t.Fatalf("%s in %s holds %q, want flags", u.envVar, example, args)
			}
			for _, a := range args {
				if !strings.HasPrefix(a, "--") {
					t.Errorf("%s: %q is not a flag", u.envVar, a)
				}
			}
			// The flags parse: an unknown one makes the command fail
			// before --help is honoured.
			help := exec.Command(bins[u.name], append(args, "--help")...)
			if b, err := help.CombinedOutput(); err != nil {
				t.Errorf("%s %s --help: %v\n%s", u.name, strings.Join(args, " "), err, firstLines(string(b), 3))
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
