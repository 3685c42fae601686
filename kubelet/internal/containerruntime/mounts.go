package containerruntime

import (
	"context"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
)

// Mount is a volume bind-mounted into a container.
type Mount struct {
	ContainerPath string
	HostPath      string
	ReadOnly      bool
	// Propagation is None (rprivate, the default) or HostToContainer
	// (rslave).
	Propagation corev1.MountPropagationMode
}

// withMounts adds the kubelet's files (base: /etc/hosts and the like) and
// the volumes to the spec, as the CRI does: a volume replaces a default or
// base mount at the same path, and mounts are ordered parents first, so a
// volume at /data is mounted before one at /data/cache.
func withMounts(base []specs.Mount, vols []Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		taken := map[string]bool{}
		var add []specs.Mount
		slave := false
		for _, v := range vols {
			dst := filepath.Clean(v.ContainerPath)
			taken[dst] = true
			prop := "rprivate"
			if v.Propagation == corev1.MountPropagationHostToContainer {
				prop, slave = "rslave", true
			}
			mode := "rw"
			if v.ReadOnly {
				mode = "ro"
			}
			add = append(add, specs.Mount{Destination: dst, Type: "bind", Source: v.HostPath, Options: []string{"rbind", prop, mode}})
		}
		for _, m := range base {
			if !taken[filepath.Clean(m.Destination)] {
				add = append(add, m)
			}
		}
		kept := s.Mounts[:0]
		for _, m := range s.Mounts {
			if !taken[filepath.Clean(m.Destination)] {
				kept = append(kept, m)
			}
		}
		sort.SliceStable(add, func(i, j int) bool { return depth(add[i].Destination) < depth(add[j].Destination) })
		s.Mounts = append(kept, add...)
		if slave {
			// Host mounts propagate into the container only below a
			// slave (or shared) root.
			if s.Linux == nil {
				s.Linux = &specs.Linux{}
			}
			if s.Linux.RootfsPropagation == "" || s.Linux.RootfsPropagation == "rprivate" || s.Linux.RootfsPropagation == "private" {
				s.Linux.RootfsPropagation = "rslave"
			}
		}
		return nil
	}
}

func depth(p string) int {
	p = filepath.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
