package containerruntime

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Resources are a container's cgroup settings, upstream's
// LinuxContainerResources: zero values leave the runtime's default.
type Resources struct {
	CPUShares   uint64 // cpu.shares (cpu.weight on cgroup v2)
	CPUQuota    int64  // CFS quota in µs per CPUPeriod; 0: no limit
	CPUPeriod   uint64 // CFS period in µs
	MemoryLimit int64  // bytes; 0: no limit
	// OOMScoreAdj is the oom_score_adj of the container's processes.
	OOMScoreAdj *int
}

// Seccomp profile types, as the pod API's.
const (
	SeccompUnconfined     = "Unconfined"
	SeccompRuntimeDefault = "RuntimeDefault"
	SeccompLocalhost      = "Localhost"
)

// Security is a container's security settings: the pod's and the
// container's securityContext merged, as the CRI's
// LinuxContainerSecurityContext.
type Security struct {
	RunAsUser  *int64
	RunAsGroup *int64
	// SupplementalGroups are added to the groups of the user in the
	// image's /etc/group.
	SupplementalGroups []int64
	ReadOnlyRootfs     bool
	// Privileged gives every capability and the host's devices, and
	// unmasks /proc and /sys.
	Privileged      bool
	NoNewPrivileges bool
	// CapAdd and CapDrop change the default set (containerd's, the CRI's);
	// names with or without "CAP_", "ALL" for all of them.
	CapAdd  []string
	CapDrop []string
	// Seccomp is "" or SeccompUnconfined (none), SeccompRuntimeDefault or
	// SeccompLocalhost (the profile at SeccompProfile).
	Seccomp        string
	SeccompProfile string
}

// resourceOpts sets the container's cgroup limits.
func resourceOpts(r Resources, swapLimit bool) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if r.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(r.CPUShares))
	}
	if r.CPUQuota > 0 && r.CPUPeriod > 0 {
		opts = append(opts, oci.WithCPUCFS(r.CPUQuota, r.CPUPeriod))
	}
	if r.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.MemoryLimit)))
		// No swapping beyond the limit, as the CRI does.
		if swapLimit {
			opts = append(opts, oci.WithMemorySwap(r.MemoryLimit))
		}
	}
	if r.OOMScoreAdj != nil {
		adj := *r.OOMScoreAdj
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Process == nil {
				s.Process = &specs.Process{}
			}
			s.Process.OOMScoreAdj = &adj
			return nil
		})
	}
	return opts
}

// userOpts sets the process's user and groups as the CRI does: runAsUser
// (else the image's user when only runAsGroup is given) with runAsGroup
// (else the user's group in the image's /etc/passwd), the user's groups
// in the image's /etc/group and the supplemental groups.
func userOpts(sec Security, imageUser string) []oci.SpecOpts {
	user := ""
	if sec.RunAsUser != nil {
		user = strconv.FormatInt(*sec.RunAsUser, 10)
	}
	imageName, _, _ := strings.Cut(imageUser, ":")
	var opts []oci.SpecOpts
	switch {
	case sec.RunAsGroup != nil:
		if user == "" {
			user = imageName
		}
		if user == "" {
			user = "0"
		}
		opts = append(opts, oci.WithUser(user+":"+strconv.FormatInt(*sec.RunAsGroup, 10)))
	case user != "":
		opts = append(opts, oci.WithUser(user))
	}
	if user == "" && len(sec.SupplementalGroups) == 0 {
		// The image's user and groups, as oci.WithImageConfig set them.
		return opts
	}
	if user == "" {
		user = imageName
	}
	if user == "" {
		user = "0"
	}
	opts = append(opts, oci.WithAdditionalGIDs(user))
	if len(sec.SupplementalGroups) > 0 {
		groups := make([]string, len(sec.SupplementalGroups))
		for i, g := range sec.SupplementalGroups {
			groups[i] = strconv.FormatInt(g, 10)
		}
		opts = append(opts, oci.WithAppendAdditionalGroups(groups...))
	}
	return opts
}

// securityOpts applies the security settings but the user, as the CRI:
// capabilities from containerd's default set, privileged, a read-only
// root filesystem, no_new_privs and seccomp.
func securityOpts(sec Security) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	if sec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	} else {
		opts = append(opts, capabilityOpts(sec.CapAdd, sec.CapDrop)...)
	}
	if sec.ReadOnlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	// containerd's default spec sets no_new_privs; the CRI clears it
	// unless asked (allowPrivilegeEscalation: false).
	if sec.NoNewPrivileges {
		opts = append(opts, oci.WithNoNewPrivileges)
	} else {
		opts = append(opts, oci.WithNewPrivileges)
	}
	if !sec.Privileged {
		switch sec.Seccomp {
		case "", SeccompUnconfined:
		case SeccompRuntimeDefault:
			opts = append(opts, seccomp.WithDefaultProfile())
		case SeccompLocalhost:
			opts = append(opts, seccomp.WithProfile(sec.SeccompProfile))
		default:
			return nil, fmt.Errorf("unknown seccomp profile type %q", sec.Seccomp)
		}
	}
	return opts, nil
}

// capabilityOpts adds and drops capabilities as the CRI: "ALL" first (all
// the runtime's capabilities, or none), then the single ones.
func capabilityOpts(add, drop []string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if containsAll(add) {
		opts = append(opts, oci.WithAllCurrentCapabilities)
	}
	if containsAll(drop) {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	if caps := capNames(add); len(caps) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(caps))
	}
	if caps := capNames(drop); len(caps) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(caps))
	}
	return opts
}

func containsAll(caps []string) bool {
	for _, c := range caps {
		if strings.EqualFold(c, "ALL") {
			return true
		}
	}
	return false
}

// capNames are the capabilities but "ALL", named as the OCI spec does
// ("CAP_CHOWN" for "CHOWN" or "chown").
func capNames(caps []string) []string {
	var out []string
	for _, c := range caps {
		c = strings.ToUpper(c)
		if c == "ALL" {
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}
