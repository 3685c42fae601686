package containerruntime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// generate builds a spec from containerd's defaults and opts, with the
// root filesystem at root (for the user lookups).
func generate(t *testing.T, root string, opts ...oci.SpecOpts) *oci.Spec {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), Namespace)
	setRoot := func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Root = &specs.Root{Path: root}
		return nil
	}
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c"}, append([]oci.SpecOpts{setRoot}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func securitySpec(t *testing.T, sec Security) *oci.Spec {
	t.Helper()
	opts, err := securityOpts(sec)
	if err != nil {
		t.Fatal(err)
	}
	return generate(t, t.TempDir(), opts...)
}

func TestCapabilities(t *testing.T) {
	def := generate(t, t.TempDir()).Process.Capabilities.Bounding
	if !slices.Contains(def, "CAP_CHOWN") || slices.Contains(def, "CAP_SYS_ADMIN") {
		t.Fatalf("containerd's default set unexpected: %v", def)
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		has, not  []string
	}{
		{"default", nil, nil, []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"}, []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
		{"drop one", nil, []string{"CHOWN"}, []string{"CAP_KILL"}, []string{"CAP_CHOWN"}},
		{"add with prefix", []string{"CAP_NET_ADMIN", "sys_time"}, nil, []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_CHOWN"}, nil},
		{"drop all add one", []string{"NET_BIND_SERVICE"}, []string{"ALL"}, []string{"CAP_NET_BIND_SERVICE"}, []string{"CAP_CHOWN", "CAP_KILL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps := securitySpec(t, Security{CapAdd: tc.add, CapDrop: tc.drop}).Process.Capabilities
			for _, set := range [][]string{caps.Bounding, caps.Effective, caps.Permitted} {
				for _, c := range tc.has {
					if !slices.Contains(set, c) {
						t.Errorf("%s missing from %v", c, set)
					}
				}
				for _, c := range tc.not {
					if slices.Contains(set, c) {
						t.Errorf("%s in %v", c, set)
					}
				}
			}
		})
	}
}

func TestSecurityOpts(t *testing.T) {
	plain := securitySpec(t, Security{})
	if plain.Root.Readonly || plain.Process.NoNewPrivileges || plain.Linux.Seccomp != nil || len(plain.Linux.MaskedPaths) == 0 {
		t.Errorf("default spec: readonly %v, no_new_privs %v, seccomp %v, masked %v; want all off but the masked paths",
			plain.Root.Readonly, plain.Process.NoNewPrivileges, plain.Linux.Seccomp, plain.Linux.MaskedPaths)
	}
	s := securitySpec(t, Security{ReadOnlyRootfs: true, NoNewPrivileges: true, Seccomp: SeccompRuntimeDefault})
	if !s.Root.Readonly || !s.Process.NoNewPrivileges || s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("readonly %v, no_new_privs %v, seccomp %+v", s.Root.Readonly, s.Process.NoNewPrivileges, s.Linux.Seccomp)
	}
	if _, err := securityOpts(Security{Seccomp: "Bogus"}); err == nil {
		t.Error("unknown seccomp type: no error")
	}
	if os.Geteuid() == 0 {
		// WithPrivileged copies the caller's capabilities.
		p := securitySpec(t, Security{Privileged: true, CapDrop: []string{"ALL"}})
		if !slices.Contains(p.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || len(p.Linux.MaskedPaths) != 0 || len(p.Linux.ReadonlyPaths) != 0 {
			t.Errorf("privileged: caps %v, masked %v, readonly %v", p.Process.Capabilities.Bounding, p.Linux.MaskedPaths, p.Linux.ReadonlyPaths)
		}
		allowed := false
		for _, d := range p.Linux.Resources.Devices {
			allowed = allowed || (d.Allow && d.Access == "rwm" && d.Type == "")
		}
		if !allowed {
			t.Errorf("privileged: devices %+v, want all allowed", p.Linux.Resources.Devices)
		}
	}
}

func TestResourceOpts(t *testing.T) {
	adj := 5
	s := generate(t, t.TempDir(), resourceOpts(Resources{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20, OOMScoreAdj: &adj}, true)...)
	cpu, mem := s.Linux.Resources.CPU, s.Linux.Resources.Memory
	if cpu == nil || *cpu.Shares != 256 || *cpu.Quota != 50000 || *cpu.Period != 100000 {
		t.Errorf("cpu = %+v", cpu)
	}
	if mem == nil || *mem.Limit != 64<<20 || *mem.Swap != 64<<20 {
		t.Errorf("memory = %+v", mem)
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 5 {
		t.Errorf("oom_score_adj = %v", s.Process.OOMScoreAdj)
	}
	none := generate(t, t.TempDir(), resourceOpts(Resources{}, true)...)
	if r := none.Linux.Resources; r.CPU != nil || r.Memory != nil {
		t.Errorf("no resources: cpu %+v memory %+v", r.CPU, r.Memory)
	}
	noSwap := generate(t, t.TempDir(), resourceOpts(Resources{MemoryLimit: 1 << 20}, false)...)
	if m := noSwap.Linux.Resources.Memory; m.Swap != nil {
		t.Errorf("swap limit without swap accounting: %d", *m.Swap)
	}
}

func TestUserOpts(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
	group := "root:x:0:\napp:x:1000:\nwheel:x:10:app\n"
	for f, c := range map[string]string{"etc/passwd": passwd, "etc/group": group} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name      string
		sec       Security
		imageUser string
		want      specs.User
	}{
		{"image default", Security{}, "", specs.User{UID: 0, GID: 0}},
		{"runAsUser in passwd", Security{RunAsUser: i64(1000)}, "", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10}}},
		{"runAsUser unknown", Security{RunAsUser: i64(4242)}, "", specs.User{UID: 4242, GID: 0, AdditionalGids: []uint32{0}}},
		{"runAsUser and runAsGroup", Security{RunAsUser: i64(1000), RunAsGroup: i64(3000)}, "", specs.User{UID: 1000, GID: 3000, AdditionalGids: []uint32{3000, 10}}},
		{"runAsGroup with the image's user", Security{RunAsGroup: i64(3000)}, "app", specs.User{UID: 1000, GID: 3000, AdditionalGids: []uint32{3000, 10}}},
		{"supplemental groups", Security{RunAsUser: i64(1000), SupplementalGroups: []int64{2000, 2001}}, "", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 10, 2000, 2001}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := generate(t, root, userOpts(tc.sec, tc.imageUser)...)
			got := s.Process.User
			if tc.want.AdditionalGids == nil {
				got.AdditionalGids = nil
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}
