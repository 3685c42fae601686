package pods

import (
	"fmt"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// effectiveSecurityContext merges the pod's securityContext with the
// container's, the container's fields winning, as upstream's
// securitycontext.DetermineEffectiveSecurityContext. It never returns nil.
func effectiveSecurityContext(pod *corev1.Pod, c *corev1.Container) *corev1.SecurityContext {
	eff := &corev1.SecurityContext{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		eff.SELinuxOptions = psc.SELinuxOptions.DeepCopy()
		eff.WindowsOptions = psc.WindowsOptions.DeepCopy()
		eff.RunAsUser = copyPtr(psc.RunAsUser)
		eff.RunAsGroup = copyPtr(psc.RunAsGroup)
		eff.RunAsNonRoot = copyPtr(psc.RunAsNonRoot)
		eff.SeccompProfile = psc.SeccompProfile.DeepCopy()
		eff.AppArmorProfile = psc.AppArmorProfile.DeepCopy()
	}
	csc := c.SecurityContext
	if csc == nil {
		return eff
	}
	if csc.SELinuxOptions != nil {
		eff.SELinuxOptions = csc.SELinuxOptions.DeepCopy()
	}
	if csc.WindowsOptions != nil {
		eff.WindowsOptions = csc.WindowsOptions.DeepCopy()
	}
	if csc.Capabilities != nil {
		eff.Capabilities = csc.Capabilities.DeepCopy()
	}
	if csc.Privileged != nil {
		eff.Privileged = copyPtr(csc.Privileged)
	}
	if csc.RunAsUser != nil {
		eff.RunAsUser = copyPtr(csc.RunAsUser)
	}
	if csc.RunAsGroup != nil {
		eff.RunAsGroup = copyPtr(csc.RunAsGroup)
	}
	if csc.RunAsNonRoot != nil {
		eff.RunAsNonRoot = copyPtr(csc.RunAsNonRoot)
	}
	if csc.ReadOnlyRootFilesystem != nil {
		eff.ReadOnlyRootFilesystem = copyPtr(csc.ReadOnlyRootFilesystem)
	}
	if csc.AllowPrivilegeEscalation != nil {
		eff.AllowPrivilegeEscalation = copyPtr(csc.AllowPrivilegeEscalation)
	}
	if csc.ProcMount != nil {
		eff.ProcMount = copyPtr(csc.ProcMount)
	}
	if csc.SeccompProfile != nil {
		eff.SeccompProfile = csc.SeccompProfile.DeepCopy()
	}
	if csc.AppArmorProfile != nil {
		eff.AppArmorProfile = csc.AppArmorProfile.DeepCopy()
	}
	return eff
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// runtimeSecurity is what the runtime applies of the effective security
// context, with the pod's fsGroup and supplementalGroups as supplemental
// groups, as upstream's kubelet. Localhost seccomp profiles live under
// <rootDir>/seccomp.
func runtimeSecurity(pod *corev1.Pod, c *corev1.Container, rootDir string) (containerruntime.Security, error) {
	eff := effectiveSecurityContext(pod, c)
	sec := containerruntime.Security{
		RunAsUser:  eff.RunAsUser,
		RunAsGroup: eff.RunAsGroup,
		Privileged: eff.Privileged != nil && *eff.Privileged,
		// allowPrivilegeEscalation: false sets no_new_privs; unset
		// leaves it off, as upstream's AddNoNewPrivileges.
		NoNewPrivileges: eff.AllowPrivilegeEscalation != nil && !*eff.AllowPrivilegeEscalation,
		ReadOnlyRootfs:  eff.ReadOnlyRootFilesystem != nil && *eff.ReadOnlyRootFilesystem,
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.FSGroup != nil {
			sec.SupplementalGroups = append(sec.SupplementalGroups, *psc.FSGroup)
		}
		sec.SupplementalGroups = append(sec.SupplementalGroups, psc.SupplementalGroups...)
	}
	if caps := eff.Capabilities; caps != nil {
		for _, c := range caps.Add {
			sec.CapAdd = append(sec.CapAdd, string(c))
		}
		for _, c := range caps.Drop {
			sec.CapDrop = append(sec.CapDrop, string(c))
		}
	}
	if sp := eff.SeccompProfile; sp != nil {
		switch sp.Type {
		case corev1.SeccompProfileTypeUnconfined:
			sec.Seccomp = containerruntime.SeccompUnconfined
		case corev1.SeccompProfileTypeRuntimeDefault:
			sec.Seccomp = containerruntime.SeccompRuntimeDefault
		case corev1.SeccompProfileTypeLocalhost:
			if sp.LocalhostProfile == nil || *sp.LocalhostProfile == "" {
				return sec, fmt.Errorf("localhostProfile must be set for seccomp profile type Localhost")
			}
			dir := filepath.Join(rootDir, "seccomp")
			p := filepath.Join(dir, filepath.Clean("/"+*sp.LocalhostProfile))
			if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				return sec, fmt.Errorf("seccomp localhostProfile %q is outside %s", *sp.LocalhostProfile, dir)
			}
			sec.Seccomp, sec.SeccompProfile = containerruntime.SeccompLocalhost, p
		default:
			return sec, fmt.Errorf("unknown seccomp profile type %q", sp.Type)
		}
	}
	return sec, nil
}

// podString is upstream's format.Pod: name_namespace(uid).
func podString(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// verifyRunAsNonRoot refuses a container that must not run as root but
// would, with upstream's messages: uid and username are the image's user
// (neither: root).
func verifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container, uid *int64, username string) error {
	eff := effectiveSecurityContext(pod, c)
	if eff.RunAsNonRoot == nil || !*eff.RunAsNonRoot {
		return nil
	}
	if eff.RunAsUser != nil {
		if *eff.RunAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podString(pod), c.Name)
		}
		return nil
	}
	switch {
	case uid != nil && *uid == 0, uid == nil && username == "":
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podString(pod), c.Name)
	case uid == nil:
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", username, podString(pod), c.Name)
	default:
		return nil
	}
}
