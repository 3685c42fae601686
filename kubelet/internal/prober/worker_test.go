package prober

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// scripted answers probes of each kind from a queue of results (an
// empty queue answers Success) and counts the probes.
type scripted struct {
	mu      sync.Mutex
	answers map[Kind][]Result
	errs    map[Kind]int // how many probes of kind error first
	calls   map[Kind]int
	probed  chan Kind
}

func newScripted() *scripted {
	return &scripted{answers: map[Kind][]Result{}, errs: map[Kind]int{}, calls: map[Kind]int{}, probed: make(chan Kind, 100)}
}

func (s *scripted) probe(_ context.Context, kind Kind, _ *corev1.Pod, _ *corev1.PodStatus, _ *corev1.Container, _ string) (Result, error) {
	s.mu.Lock()
	defer func() { s.mu.Unlock(); s.probed <- kind }()
	s.calls[kind]++
	if s.errs[kind] > 0 {
		s.errs[kind]--
		return Failure, errors.New("probe errored")
	}
	q := s.answers[kind]
	if len(q) == 0 {
		return Success, nil
	}
	s.answers[kind] = q[1:]
	return q[0], nil
}

func (s *scripted) count(kind Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind]
}

func runningStatus(id string, started time.Time) *corev1.PodStatus {
	return &corev1.PodStatus{PodIP: "10.0.0.5", ContainerStatuses: []corev1.ContainerStatus{{
		Name: "c", ContainerID: "containerd://" + id,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
	}}}
}

func execProbe(period, failure, success, delay int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
		PeriodSeconds: period, FailureThreshold: failure, SuccessThreshold: success, InitialDelaySeconds: delay,
	}
}

// newTestPod returns probes on a fake clock with scripted probe results,
// the manager started long ago (no start-up jitter), and a counter of
// notifications.
func newTestPod(t *testing.T) (*Pod, *scripted, *clocktesting.FakeClock, *atomic.Int32) {
	clk := clocktesting.NewFakeClock(t0)
	m := NewManager(Config{Clock: clk, Logger: zaptest.NewLogger(t)})
	m.start = t0.Add(-time.Hour)
	s := newScripted()
	m.probe = s.probe
	var notified atomic.Int32
	return m.NewPod(zaptest.NewLogger(t), func() { notified.Add(1) }), s, clk, &notified
}

// TestWorkerThresholds drives one worker probe by probe and checks the
// result the pod worker sees after each.
func TestWorkerThresholds(t *testing.T) {
	type step struct {
		answer Result
		want   Result // the result for the instance after the probe
		probed bool   // whether a probe ran
	}
	for _, tc := range []struct {
		name  string
		kind  Kind
		probe *corev1.Probe
		steps []step
	}{
		{name: "readiness starts failed, needs successThreshold successes", kind: Readiness, probe: execProbe(1, 3, 2, 0), steps: []step{
			{Success, Failure, true}, {Success, Success, true}, {Failure, Success, true}, {Failure, Success, true},
			{Failure, Failure, true}, {Success, Failure, true}, {Failure, Failure, true}, {Success, Failure, true}, {Success, Success, true},
		}},
		{name: "liveness starts healthy, failureThreshold failures in a row, then holds", kind: Liveness, probe: execProbe(1, 3, 1, 0), steps: []step{
			{Failure, Success, true}, {Success, Success, true}, {Failure, Success, true}, {Failure, Success, true},
			{Failure, Failure, true}, {Success, Failure, false}, {Success, Failure, false},
		}},
		{name: "liveness failure threshold 1", kind: Liveness, probe: execProbe(1, 1, 1, 0), steps: []step{
			{Failure, Failure, true}, {Success, Failure, false},
		}},
		{name: "startup unknown until it succeeds, then stops probing", kind: Startup, probe: execProbe(1, 5, 1, 0), steps: []step{
			{Failure, Unknown, true}, {Failure, Unknown, true}, {Success, Success, true}, {Failure, Success, false},
		}},
		{name: "startup fails past its threshold", kind: Startup, probe: execProbe(1, 2, 1, 0), steps: []step{
			{Failure, Unknown, true}, {Failure, Failure, true}, {Success, Failure, false},
		}},
		{name: "successThreshold is 1 for liveness", kind: Liveness, probe: execProbe(1, 1, 5, 0), steps: []step{
			{Failure, Failure, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s, _, _ := newTestPod(t)
			c := corev1.Container{Name: "c"}
			switch tc.kind {
			case Liveness:
				c.LivenessProbe = tc.probe
			case Readiness:
				c.ReadinessProbe = tc.probe
			case Startup:
				c.StartupProbe = tc.probe
			}
			p.pod, p.status = testPod(c), runningStatus("id1", t0)
			w := &worker{p: p, key: probeKey{"c", tc.kind}, trigger: make(chan struct{}, 1), logger: zaptest.NewLogger(t)}
			for i, st := range tc.steps {
				s.answers[tc.kind] = []Result{st.answer}
				before := s.count(tc.kind)
				if !w.doProbe(context.Background()) {
					t.Fatalf("step %d: worker stopped", i)
				}
				if probed := s.count(tc.kind) > before; probed != st.probed {
					t.Errorf("step %d: probed = %v, want %v", i, probed, st.probed)
				}
				if got := p.get("c", tc.kind, "id1"); got != st.want {
					t.Errorf("step %d (answer %s): result = %s, want %s", i, st.answer, got, st.want)
				}
			}
		})
	}
}

func TestWorkerErrorsAreIgnored(t *testing.T) {
	p, s, _, _ := newTestPod(t)
	c := corev1.Container{Name: "c", LivenessProbe: execProbe(1, 1, 1, 0)}
	p.pod, p.status = testPod(c), runningStatus("id1", t0)
	w := &worker{p: p, key: probeKey{"c", Liveness}, trigger: make(chan struct{}, 1), logger: zaptest.NewLogger(t)}
	s.errs[Liveness] = 3
	for range 3 {
		w.doProbe(context.Background())
	}
	if got := p.get("c", Liveness, "id1"); got != Success {
		t.Errorf("after errored probes result = %s, want Success (initial)", got)
	}
	if _, failed := p.Failed(&c, "id1"); failed {
		t.Error("Failed = true after errored probes only")
	}
}

func TestWorkerInitialDelayAndStartupGate(t *testing.T) {
	p, s, clk, _ := newTestPod(t)
	c := corev1.Container{Name: "c", StartupProbe: execProbe(1, 3, 1, 0), ReadinessProbe: execProbe(1, 3, 1, 5)}
	p.pod, p.status = testPod(c), runningStatus("id1", t0)
	ready := &worker{p: p, key: probeKey{"c", Readiness}, trigger: make(chan struct{}, 1), logger: zaptest.NewLogger(t)}
	startup := &worker{p: p, key: probeKey{"c", Startup}, trigger: make(chan struct{}, 1), logger: zaptest.NewLogger(t)}
	p.workers[ready.key], p.workers[startup.key] = ready, startup

	// Within the initial delay: no probe.
	clk.SetTime(t0.Add(4 * time.Second))
	ready.doProbe(context.Background())
	if n := s.count(Readiness); n != 0 {
		t.Fatalf("readiness probed %d times within initialDelaySeconds", n)
	}
	// Past it, but not started: still none.
	clk.SetTime(t0.Add(5 * time.Second))
	ready.doProbe(context.Background())
	if n := s.count(Readiness); n != 0 {
		t.Fatalf("readiness probed %d times before the startup probe succeeded", n)
	}
	if p.Started(&c, "id1") || p.Ready(&c, "id1") {
		t.Fatal("started or ready before the startup probe succeeded")
	}
	startup.doProbe(context.Background())
	if !p.Started(&c, "id1") {
		t.Fatal("not started after the startup probe succeeded")
	}
	select {
	case <-ready.trigger:
	default:
		t.Error("the readiness worker was not triggered when the startup probe succeeded")
	}
	ready.doProbe(context.Background())
	if n := s.count(Readiness); n != 1 || !p.Ready(&c, "id1") {
		t.Errorf("readiness probes = %d, ready = %v; want 1, true", n, p.Ready(&c, "id1"))
	}
}

func TestWorkerNewInstance(t *testing.T) {
	p, s, _, _ := newTestPod(t)
	c := corev1.Container{Name: "c", LivenessProbe: execProbe(1, 1, 1, 0), ReadinessProbe: execProbe(1, 1, 1, 0)}
	p.pod, p.status = testPod(c), runningStatus("id1", t0)
	live := &worker{p: p, key: probeKey{"c", Liveness}, trigger: make(chan struct{}, 1), logger: zaptest.NewLogger(t)}
	s.answers[Liveness] = []Result{Failure}
	live.doProbe(context.Background())
	if kind, failed := p.Failed(&c, "id1"); !failed || kind != Liveness {
		t.Fatalf("Failed = %s, %v; want Liveness, true", kind, failed)
	}
	// The container exited (killed): the worker holds.
	p.status = &corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "c", ContainerID: "containerd://id1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}
	if !live.doProbe(context.Background()) {
		t.Fatal("worker stopped for a container that restarts")
	}
	// The restarted instance starts healthy and is probed again.
	p.status = runningStatus("id2", t0)
	if _, failed := p.Failed(&c, "id2"); failed {
		t.Fatal("the new instance failed before any probe")
	}
	before := s.count(Liveness)
	live.doProbe(context.Background())
	if s.count(Liveness) != before+1 {
		t.Error("the new instance was not probed")
	}
	if _, failed := p.Failed(&c, "id2"); failed {
		t.Error("the new instance failed after a successful probe")
	}
	// Readiness of an instance the worker has not seen is not ready.
	if p.Ready(&c, "id3") {
		t.Error("an unseen instance is ready")
	}
}

func TestWorkerStopsWhenContainerIsDone(t *testing.T) {
	p, _, _, _ := newTestPod(t)
	c := corev1.Container{Name: "c", ReadinessProbe: execProbe(1, 1, 1, 0)}
	pod := testPod(c)
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.pod = pod
	p.status = &corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "c", ContainerID: "containerd://id1",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}}
	w := &worker{p: p, key: probeKey{"c", Readiness}, trigger: make(chan struct{}, 1), logger: zaptest.NewLogger(t)}
	if w.doProbe(context.Background()) {
		t.Error("worker keeps going for a terminated container that will not restart")
	}
	if p.Ready(&c, "id1") {
		t.Error("terminated container ready")
	}
}

// TestPodRunsWorkers checks the workers' schedule on the fake clock, the
// notifications, and that Stop ends every worker.
func TestPodRunsWorkers(t *testing.T) {
	p, s, clk, notified := newTestPod(t)
	c := corev1.Container{Name: "c", LivenessProbe: execProbe(10, 3, 1, 0), ReadinessProbe: execProbe(2, 3, 1, 0)}
	pod := testPod(c)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.Update(ctx, pod, runningStatus("id1", t0))
	p.Update(ctx, pod, runningStatus("id1", t0)) // no second set of workers

	waitProbes := func(kind Kind, n int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for s.count(kind) < n {
			select {
			case <-s.probed:
			case <-deadline:
				t.Fatalf("%s probes = %d, want %d", kind, s.count(kind), n)
			}
		}
	}
	// Both probe at once.
	waitProbes(Readiness, 1)
	waitProbes(Liveness, 1)
	// The result is stored just after the probe returns.
	eventually(t, "ready after a successful readiness probe", func() bool { return p.Ready(&c, "id1") })
	eventually(t, "the pod worker notified of the changed results", func() bool { return notified.Load() > 0 })
	// Then every period: readiness at 2 s, 4 s, 6 s; liveness at 10 s.
	for i := 1; i <= 5; i++ {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(2 * time.Second)
		waitProbes(Readiness, i+1)
	}
	waitProbes(Liveness, 2)
	if n := s.count(Readiness); n != 6 {
		t.Errorf("readiness probes = %d, want 6", n)
	}

	done := make(chan struct{})
	go func() { p.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	// Stop returned: every worker goroutine has ended (Stop waits for
	// them). Update starts none after Stop, and time passing probes nothing.
	p.Update(ctx, pod, runningStatus("id1", t0))
	before := s.count(Readiness) + s.count(Liveness)
	clk.Step(time.Minute)
	p.mu.Lock()
	n := len(p.workers)
	p.mu.Unlock()
	if n != 2 {
		t.Errorf("workers = %d, want the 2 stopped ones", n)
	}
	if after := s.count(Readiness) + s.count(Liveness); after != before {
		t.Errorf("probes after Stop: %d, want none", after-before)
	}
}

func TestNilPod(t *testing.T) {
	var p *Pod
	c := corev1.Container{Name: "c", ReadinessProbe: execProbe(1, 1, 1, 0), LivenessProbe: execProbe(1, 1, 1, 0)}
	p.Update(context.Background(), testPod(c), &corev1.PodStatus{})
	if !p.Started(&c, "x") || !p.Ready(&c, "x") {
		t.Error("nil Pod: not started or not ready")
	}
	if _, failed := p.Failed(&c, "x"); failed {
		t.Error("nil Pod: failed")
	}
	p.Stop()
}

// eventually polls cond until it holds, failing after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
