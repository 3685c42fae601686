package containerruntime

import (
	"context"
	"testing"

	"github.com/containerd/containerd/oci"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
)

func TestWithMounts(t *testing.T) {
	bind := func(dst, src string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	s := &oci.Spec{
		Linux: &specs.Linux{},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"},
		},
	}
	base := []specs.Mount{
		bind("/etc/hosts", "/pod/etc-hosts", "rbind", "rprivate", "rw"),
		bind("/etc/hostname", "/pod/hostname", "rbind", "rprivate", "rw"),
	}
	vols := []Mount{
		{ContainerPath: "/data/cache", HostPath: "/vol/cache"},
		{ContainerPath: "/data", HostPath: "/vol/data", ReadOnly: true},
		{ContainerPath: "/etc/hosts", HostPath: "/vol/hosts"}, // replaces the kubelet's
		{ContainerPath: "/dev/shm/", HostPath: "/vol/shm"},    // replaces the default
		{ContainerPath: "/host", HostPath: "/", Propagation: corev1.MountPropagationHostToContainer},
	}
	if err := withMounts(base, vols)(context.Background(), nil, nil, s); err != nil {
		t.Fatal(err)
	}
	want := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		bind("/data", "/vol/data", "rbind", "rprivate", "ro"),
		bind("/host", "/", "rbind", "rslave", "rw"),
		bind("/data/cache", "/vol/cache", "rbind", "rprivate", "rw"),
		bind("/etc/hosts", "/vol/hosts", "rbind", "rprivate", "rw"),
		bind("/dev/shm", "/vol/shm", "rbind", "rprivate", "rw"),
		bind("/etc/hostname", "/pod/hostname", "rbind", "rprivate", "rw"),
	}
	if d := cmp.Diff(want, s.Mounts); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}
	if s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("rootfs propagation %q, want rslave for a HostToContainer mount", s.Linux.RootfsPropagation)
	}

	s = &oci.Spec{Linux: &specs.Linux{}}
	if err := withMounts(nil, []Mount{{ContainerPath: "/x", HostPath: "/y"}})(context.Background(), nil, nil, s); err != nil {
		t.Fatal(err)
	}
	if s.Linux.RootfsPropagation != "" {
		t.Errorf("rootfs propagation %q without a HostToContainer mount", s.Linux.RootfsPropagation)
	}
}
