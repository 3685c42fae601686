package pods

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// initPod has init containers a and b and the regular container c.
func initPod(policy corev1.RestartPolicy) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{
			RestartPolicy:  policy,
			InitContainers: []corev1.Container{{Name: "a", Image: "img"}, {Name: "b", Image: "img"}},
			Containers:     []corev1.Container{{Name: "c", Image: "img"}},
		},
	}
}

// run and exit simulate the runtime.
func run(w *worker, name string) {
	cs := w.state(name)
	restart := cs.restartCount
	if cs.everRan {
		restart++
	}
	cs.id, cs.restartCount = fmt.Sprintf("u-%s-%d", name, restart), restart
	cs.running, cs.everRan, cs.startedAt, cs.waitReason = true, true, time.Now(), ""
}

func exit(w *worker, name string, code int32) {
	w.onExit(context.Background(), exitEvent{name: name, id: w.state(name).id, exit: containerruntime.Exit{Code: code, FinishedAt: time.Now()}})
}

func nextInit(w *worker, pod *corev1.Pod) string {
	c, done := w.nextInitContainer(pod)
	switch {
	case done:
		return "done"
	case c == nil:
		return "wait"
	default:
		return c.Name
	}
}

func condition(st corev1.PodStatus, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func waiting(s corev1.ContainerStatus) string {
	if s.State.Waiting == nil {
		return ""
	}
	return s.State.Waiting.Reason
}

func TestInitContainersInOrder(t *testing.T) {
	pod := initPod(corev1.RestartPolicyAlways)
	w := newTestWorker(pod)
	step := func(want string, phase corev1.PodPhase, initialized corev1.ConditionStatus) corev1.PodStatus {
		t.Helper()
		if got := nextInit(w, pod); got != want {
			t.Fatalf("next init container = %s, want %s", got, want)
		}
		st := w.status(pod)
		if st.Phase != phase {
			t.Errorf("phase = %s, want %s", st.Phase, phase)
		}
		if c := condition(st, corev1.PodInitialized); c.Status != initialized {
			t.Errorf("Initialized = %s (%s: %s), want %s", c.Status, c.Reason, c.Message, initialized)
		}
		return st
	}
	st := step("a", corev1.PodPending, corev1.ConditionFalse)
	for _, s := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
		if waiting(s) != "PodInitializing" {
			t.Errorf("%s before anything ran: %+v, want waiting PodInitializing", s.Name, s.State)
		}
	}
	if c := condition(st, corev1.PodInitialized); c.Reason != "ContainersNotInitialized" || c.Message != "containers with incomplete status: [a b]" {
		t.Errorf("Initialized = %+v", c)
	}

	run(w, "a")
	st = step("wait", corev1.PodPending, corev1.ConditionFalse)
	if st.InitContainerStatuses[0].State.Running == nil || st.InitContainerStatuses[0].Ready {
		t.Errorf("a running: %+v", st.InitContainerStatuses[0])
	}

	exit(w, "a", 0)
	st = step("b", corev1.PodPending, corev1.ConditionFalse)
	if a := st.InitContainerStatuses[0]; a.State.Terminated == nil || a.State.Terminated.Reason != "Completed" || !a.Ready {
		t.Errorf("a completed: %+v", a)
	}

	// b fails: restarted (restartPolicy Always means OnFailure for init
	// containers), the pod stays Pending, c waits.
	run(w, "b")
	exit(w, "b", 3)
	st = step("b", corev1.PodPending, corev1.ConditionFalse)
	b := st.InitContainerStatuses[1]
	if waiting(b) != "CrashLoopBackOff" || b.LastTerminationState.Terminated == nil || b.LastTerminationState.Terminated.ExitCode != 3 || b.LastTerminationState.Terminated.Reason != "Error" {
		t.Errorf("b failed: %+v", b)
	}
	if c := st.ContainerStatuses[0]; waiting(c) != "PodInitializing" || c.ContainerID != "" {
		t.Errorf("c while b fails: %+v", c)
	}

	run(w, "b")
	if b := w.status(pod).InitContainerStatuses[1]; b.RestartCount != 1 || b.State.Running == nil {
		t.Errorf("b restarted: %+v", b)
	}
	exit(w, "b", 0)
	// Both done: the pod is initialized, c is created next (still
	// PodInitializing until it runs, as upstream's kubectl shows).
	st = step("done", corev1.PodPending, corev1.ConditionTrue)
	if waiting(st.ContainerStatuses[0]) != "PodInitializing" {
		t.Errorf("c before it started: %+v", st.ContainerStatuses[0].State)
	}
	w.initDone = true
	run(w, "c")
	st = step("done", corev1.PodRunning, corev1.ConditionTrue)
	if condition(st, corev1.PodReady).Status != corev1.ConditionTrue {
		t.Errorf("Ready = %+v", condition(st, corev1.PodReady))
	}
}

func TestInitContainerFailsPodUnderNever(t *testing.T) {
	pod := initPod(corev1.RestartPolicyNever)
	w := newTestWorker(pod)
	run(w, "a")
	exit(w, "a", 1)
	if got := nextInit(w, pod); got != "wait" {
		t.Fatalf("next init container after a failed under Never = %s, want wait (no restart)", got)
	}
	st := w.status(pod)
	if st.Phase != corev1.PodFailed {
		t.Errorf("phase = %s, want Failed", st.Phase)
	}
	a := st.InitContainerStatuses[0]
	if a.State.Terminated == nil || a.State.Terminated.Reason != "Error" || a.State.Terminated.ExitCode != 1 {
		t.Errorf("a = %+v, want terminated Error 1 (kubectl: Init:Error)", a.State)
	}
	if waiting(st.InitContainerStatuses[1]) != "PodInitializing" || waiting(st.ContainerStatuses[0]) != "PodInitializing" {
		t.Errorf("b and c = %+v, %+v, want waiting PodInitializing", st.InitContainerStatuses[1].State, st.ContainerStatuses[0].State)
	}
	if c := condition(st, corev1.ContainersReady); c.Reason != "PodFailed" {
		t.Errorf("ContainersReady = %+v", c)
	}
}

func TestSidecars(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{
			RestartPolicy:  corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{{Name: "side", Image: "img", RestartPolicy: &always}, {Name: "a", Image: "img"}},
			Containers:     []corev1.Container{{Name: "c", Image: "img"}},
		},
	}
	w := newTestWorker(pod)
	if got := nextInit(w, pod); got != "side" {
		t.Fatalf("first = %s, want side", got)
	}
	run(w, "side")
	// Without a startup probe a running sidecar has started: a goes next.
	if got := nextInit(w, pod); got != "a" {
		t.Fatalf("after the sidecar started = %s, want a", got)
	}
	run(w, "a")
	exit(w, "a", 0)
	if got := nextInit(w, pod); got != "done" {
		t.Fatalf("after a = %s, want done", got)
	}
	w.initDone = true
	run(w, "c")
	st := w.status(pod)
	if st.Phase != corev1.PodRunning || condition(st, corev1.PodReady).Status != corev1.ConditionTrue {
		t.Errorf("phase %s, Ready %+v", st.Phase, condition(st, corev1.PodReady))
	}
	if s := st.InitContainerStatuses[0]; s.State.Running == nil || !s.Ready || s.Started == nil || !*s.Started {
		t.Errorf("sidecar = %+v", s)
	}
	// The regular container ends for good: the sidecar is to be stopped,
	// after which the pod succeeded.
	exit(w, "c", 0)
	if !w.regularContainersDone(pod) {
		t.Fatal("regular containers not done")
	}
	w.state("side").stopped = true
	exit(w, "side", 143)
	st = w.status(pod)
	if st.Phase != corev1.PodSucceeded {
		t.Errorf("phase = %s, want Succeeded (a stopped sidecar does not count)", st.Phase)
	}
	if s := st.InitContainerStatuses[0]; s.State.Terminated == nil || s.State.Terminated.ExitCode != 143 {
		t.Errorf("stopped sidecar = %+v", s.State)
	}
}

func TestOOMKilledStatus(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "c", Image: "img"}}}}
	w := newTestWorker(pod)
	run(w, "c")
	w.onExit(context.Background(), exitEvent{name: "c", id: w.state("c").id, exit: containerruntime.Exit{Code: 137, Reason: containerruntime.ReasonOOMKilled, FinishedAt: time.Now()}})
	run(w, "c")
	s := w.status(pod).ContainerStatuses[0]
	if lt := s.LastTerminationState.Terminated; lt == nil || lt.Reason != "OOMKilled" || lt.ExitCode != 137 {
		t.Errorf("lastState = %+v, want terminated OOMKilled 137", s.LastTerminationState)
	}
}
