package pods

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/prober"
)

func TestFieldValue(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Labels: map[string]string{"app": "web"}}, Spec: corev1.PodSpec{NodeName: "n1"}}
	for path, want := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u", "spec.nodeName": "n1",
		"status.hostIP": "192.0.2.9", "status.podIP": "10.0.0.5", "metadata.labels['app']": "web",
	} {
		got, err := fieldValue(pod, path, "192.0.2.9", []string{"10.0.0.5"})
		if err != nil || got != want {
			t.Errorf("fieldValue(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := fieldValue(pod, "spec.bogus", "", nil); err == nil {
		t.Error("unsupported fieldRef: got no error")
	}
}

func newTestWorker(pod *corev1.Pod) *worker {
	m := &Manager{cfg: Config{NodeIP: "192.0.2.9", BackoffBase: 10 * time.Second, BackoffMax: 5 * time.Minute}, logger: zap.NewNop()}
	w := newWorker(m, pod.UID, pod)
	w.startTime = metav1.NewTime(time.Unix(1000, 0))
	return w
}

func TestPhase(t *testing.T) {
	term := func(code int32) *corev1.ContainerStateTerminated {
		return &corev1.ContainerStateTerminated{ExitCode: code}
	}
	for _, tc := range []struct {
		name   string
		policy corev1.RestartPolicy
		states []containerState
		want   corev1.PodPhase
	}{
		{"not started", corev1.RestartPolicyAlways, []containerState{{}}, corev1.PodPending},
		{"running", corev1.RestartPolicyAlways, []containerState{{running: true, everRan: true}}, corev1.PodRunning},
		{"one running one waiting", corev1.RestartPolicyAlways, []containerState{{running: true, everRan: true}, {}}, corev1.PodPending},
		{"never failed", corev1.RestartPolicyNever, []containerState{{everRan: true, last: term(1)}}, corev1.PodFailed},
		{"never succeeded", corev1.RestartPolicyNever, []containerState{{everRan: true, last: term(0)}}, corev1.PodSucceeded},
		{"always restarting", corev1.RestartPolicyAlways, []containerState{{everRan: true, last: term(0)}}, corev1.PodRunning},
		{"onfailure failed", corev1.RestartPolicyOnFailure, []containerState{{everRan: true, last: term(2)}}, corev1.PodRunning},
		{"onfailure succeeded", corev1.RestartPolicyOnFailure, []containerState{{everRan: true, last: term(0)}}, corev1.PodSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"}, Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
			w := newTestWorker(pod)
			for i, s := range tc.states {
				name := string(rune('a' + i))
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: name, Image: "img"})
				s.name = name
				w.containers[name] = &s
			}
			st := w.status(pod)
			if st.Phase != tc.want {
				t.Errorf("phase = %s, want %s", st.Phase, tc.want)
			}
		})
	}
}

func TestCrashLoopStatus(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}
	w := newTestWorker(pod)
	cs := w.state("c")
	cs.id, cs.running, cs.everRan, cs.startedAt, cs.waitReason = "u-c-0", true, true, time.Now(), ""
	w.onExit(context.Background(), exitEvent{name: "c", id: "u-c-0"})
	if time.Until(cs.nextStart) > time.Second {
		t.Errorf("first restart is delayed by %s, want immediate", time.Until(cs.nextStart))
	}
	cs.restartCount, cs.running = 1, true
	w.onExit(context.Background(), exitEvent{name: "c", id: "u-c-0"})
	if d := time.Until(cs.nextStart); d < 9*time.Second || d > 11*time.Second {
		t.Errorf("second restart delay %s, want 10s", d)
	}
	st := w.status(pod)
	got := st.ContainerStatuses[0]
	if got.State.Waiting == nil || got.State.Waiting.Reason != "CrashLoopBackOff" || got.LastTerminationState.Terminated == nil {
		t.Errorf("status = %+v", got)
	}
	cs.running = true
	w.onExit(context.Background(), exitEvent{name: "c", id: "u-c-0"})
	if d := time.Until(cs.nextStart); d < 19*time.Second {
		t.Errorf("third restart delay %s, want 20s", d)
	}
	for i := 0; i < 10; i++ {
		w.bumpBackoff(cs)
	}
	if cs.backoff != 5*time.Minute {
		t.Errorf("back-off capped at %s, want 5m", cs.backoff)
	}
}

func TestQOSClass(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{}}}}
	if got := qosClass(pod); got != corev1.PodQOSBestEffort {
		t.Errorf("got %s", got)
	}
}

func TestResolvConf(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "web"}, Spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst}}
	got := resolvConf(pod, []string{"169.254.20.10"}, "cluster.local")
	want := "nameserver 169.254.20.10\nsearch web.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolv.conf (-want +got):\n%s", diff)
	}
}

func TestUnhealthyKill(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	probe := func(grace *int64) *corev1.Probe { return &corev1.Probe{TerminationGracePeriodSeconds: grace} }
	for _, tc := range []struct {
		name      string
		podGrace  *int64
		policy    corev1.RestartPolicy
		c         corev1.Container
		kind      prober.Kind
		wantGrace time.Duration
		wantMsg   string
	}{
		{name: "pod grace", podGrace: i64(5), policy: corev1.RestartPolicyAlways, c: corev1.Container{Name: "app", LivenessProbe: probe(nil)},
			kind: prober.Liveness, wantGrace: 5 * time.Second, wantMsg: "Container app failed liveness probe, will be restarted"},
		{name: "probe grace wins", podGrace: i64(60), policy: corev1.RestartPolicyOnFailure, c: corev1.Container{Name: "app", LivenessProbe: probe(i64(2))},
			kind: prober.Liveness, wantGrace: 2 * time.Second, wantMsg: "Container app failed liveness probe, will be restarted"},
		{name: "startup probe's own grace", podGrace: i64(60), policy: corev1.RestartPolicyAlways,
			c:    corev1.Container{Name: "app", LivenessProbe: probe(i64(2)), StartupProbe: probe(i64(7))},
			kind: prober.Startup, wantGrace: 7 * time.Second, wantMsg: "Container app failed startup probe, will be restarted"},
		{name: "default grace, never restarted", policy: corev1.RestartPolicyNever, c: corev1.Container{Name: "app", LivenessProbe: probe(nil)},
			kind: prober.Liveness, wantGrace: 30 * time.Second, wantMsg: "Container app failed liveness probe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{TerminationGracePeriodSeconds: tc.podGrace, RestartPolicy: tc.policy, Containers: []corev1.Container{tc.c}}}
			grace, msg := unhealthyKill(pod, &pod.Spec.Containers[0], tc.kind)
			if grace != tc.wantGrace || msg != tc.wantMsg {
				t.Errorf("unhealthyKill = %s, %q; want %s, %q", grace, msg, tc.wantGrace, tc.wantMsg)
			}
		})
	}
}
