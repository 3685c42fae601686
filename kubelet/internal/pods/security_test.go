package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

func TestEffectiveSecurityContext(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	b := func(v bool) *bool { return &v }
	podSC := &corev1.PodSecurityContext{
		RunAsUser: i64(1000), RunAsGroup: i64(2000), RunAsNonRoot: b(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		FSGroup:        i64(3000), SupplementalGroups: []int64{4000},
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.PodSecurityContext
		c    *corev1.SecurityContext
		want *corev1.SecurityContext
	}{
		{"none", nil, nil, &corev1.SecurityContext{}},
		{"pod only", podSC, nil, &corev1.SecurityContext{
			RunAsUser: i64(1000), RunAsGroup: i64(2000), RunAsNonRoot: b(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}},
		{"container only", nil, &corev1.SecurityContext{RunAsUser: i64(5), ReadOnlyRootFilesystem: b(true)},
			&corev1.SecurityContext{RunAsUser: i64(5), ReadOnlyRootFilesystem: b(true)}},
		{"container wins", podSC, &corev1.SecurityContext{
			RunAsUser: i64(7), RunAsNonRoot: b(false), Privileged: b(true), AllowPrivilegeEscalation: b(false),
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"CHOWN"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		}, &corev1.SecurityContext{
			RunAsUser: i64(7), RunAsGroup: i64(2000), RunAsNonRoot: b(false), Privileged: b(true), AllowPrivilegeEscalation: b(false),
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"CHOWN"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: tc.pod, Containers: []corev1.Container{{Name: "c", SecurityContext: tc.c}}}}
			got := effectiveSecurityContext(pod, &pod.Spec.Containers[0])
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("effective (-want +got):\n%s", diff)
			}
			// The pod's context is not aliased: changing the result leaves it.
			if got.RunAsUser != nil && tc.pod != nil {
				*got.RunAsUser = 99
				if *tc.pod.RunAsUser == 99 {
					t.Error("the effective context aliases the pod's")
				}
				*tc.pod.RunAsUser = 1000
			}
		})
	}
}

func TestRuntimeSecurity(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	b := func(v bool) *bool { return &v }
	s := func(v string) *string { return &v }
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: i64(1000), FSGroup: i64(3000), SupplementalGroups: []int64{4000, 4001}},
		Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{
			RunAsGroup: i64(2000), ReadOnlyRootFilesystem: b(true), AllowPrivilegeEscalation: b(false),
			Capabilities:   &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: s("profiles/audit.json")},
		}}},
	}}
	got, err := runtimeSecurity(pod, &pod.Spec.Containers[0], "/var/lib/kubelet")
	if err != nil {
		t.Fatal(err)
	}
	want := containerruntime.Security{
		RunAsUser: i64(1000), RunAsGroup: i64(2000), SupplementalGroups: []int64{3000, 4000, 4001},
		ReadOnlyRootfs: true, NoNewPrivileges: true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
		Seccomp: containerruntime.SeccompLocalhost, SeccompProfile: "/var/lib/kubelet/seccomp/profiles/audit.json",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("security (-want +got):\n%s", diff)
	}
	// allowPrivilegeEscalation unset: no no_new_privs.
	plain := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	if got, _ := runtimeSecurity(plain, &plain.Spec.Containers[0], "/r"); got.NoNewPrivileges || got.Privileged || got.ReadOnlyRootfs {
		t.Errorf("no security context: %+v", got)
	}
	// A Localhost profile cannot leave the seccomp folder.
	pod.Spec.Containers[0].SecurityContext.SeccompProfile.LocalhostProfile = s("../../../etc/passwd")
	if got, err := runtimeSecurity(pod, &pod.Spec.Containers[0], "/r"); err == nil && got.SeccompProfile != "/r/seccomp/etc/passwd" {
		t.Errorf("escaping profile: %q, %v", got.SeccompProfile, err)
	}
}

func TestVerifyRunAsNonRoot(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	b := func(v bool) *bool { return &v }
	mk := func(sc *corev1.SecurityContext) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", SecurityContext: sc}}},
		}
	}
	for _, tc := range []struct {
		name     string
		sc       *corev1.SecurityContext
		uid      *int64
		username string
		want     string
	}{
		{"not asked", nil, nil, "", ""},
		{"asked, image root by default", &corev1.SecurityContext{RunAsNonRoot: b(true)}, nil, "",
			`container has runAsNonRoot and image will run as root (pod: "p_ns(u)", container: c)`},
		{"asked, image uid 0", &corev1.SecurityContext{RunAsNonRoot: b(true)}, i64(0), "",
			`container has runAsNonRoot and image will run as root (pod: "p_ns(u)", container: c)`},
		{"asked, image named user", &corev1.SecurityContext{RunAsNonRoot: b(true)}, nil, "app",
			`container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: "p_ns(u)", container: c)`},
		{"asked, image uid 1000", &corev1.SecurityContext{RunAsNonRoot: b(true)}, i64(1000), "", ""},
		{"asked, runAsUser 1000", &corev1.SecurityContext{RunAsNonRoot: b(true), RunAsUser: i64(1000)}, nil, "", ""},
		{"asked, runAsUser 0", &corev1.SecurityContext{RunAsNonRoot: b(true), RunAsUser: i64(0)}, i64(1000), "",
			`container's runAsUser breaks non-root policy (pod: "p_ns(u)", container: c)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := mk(tc.sc)
			err := verifyRunAsNonRoot(pod, &pod.Spec.Containers[0], tc.uid, tc.username)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
