package pods

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/logs"
	"github.com/coxswain/coxswain/kubelet/internal/network"
	"github.com/coxswain/coxswain/kubelet/internal/prober"
	"github.com/coxswain/coxswain/kubelet/internal/volume"
	"github.com/coxswain/coxswain/pkg/client"
)

// worker owns one pod: only its goroutine touches the runtime state.
type worker struct {
	m      *Manager
	uid    types.UID
	logger *zap.Logger
	notify chan struct{}
	exits  chan exitEvent
	probes *prober.Pod // nil without a prober

	mu  sync.Mutex
	pod *corev1.Pod // latest seen; nil once deleted

	sandbox    *sandboxState
	containers map[string]*containerState
	startTime  metav1.Time
	lastIPs    []string
	written    *corev1.PodStatus // last status written (or read)
	terminal   bool              // phase Succeeded/Failed reached

	vols         map[string]volume.Mounted // the pod's volumes set up on the node
	volumesReady bool                      // every volume was set up once
	volBackoff   time.Duration             // before retrying volumes that failed
	volRetry     time.Time                 // when they are retried
	volChanged   atomic.Bool               // a ConfigMap or Secret the volumes use changed

	initDone    bool // every init container completed (sidecars: started)
	adoptTried  bool // what an earlier kubelet left was looked for
	cgroup      string
	deleted     context.Context // done once the pod is being deleted
	markDeleted context.CancelFunc
}

type sandboxState struct {
	id    string
	netns string
	pid   uint32
	ips   []string
}

type containerState struct {
	name         string
	id           string // current containerd container
	restartCount int32
	running      bool
	startedAt    time.Time
	last         *corev1.ContainerStateTerminated // the latest exit
	prev         *corev1.ContainerStateTerminated // the exit before that
	everRan      bool
	waitReason   string
	waitMessage  string
	backoff      time.Duration
	nextStart    time.Time
	image        string
	imageID      string
	log          *logs.File
	dead         []deadContainer // earlier instances kept, oldest first
	backoffNoted time.Time       // the nextStart a BackOff Event was recorded for
	out, err     *logs.StreamWriter
	killed       string // the instance stopped for failing a probe
	stopped      bool   // a sidecar stopped for good: the regular containers are done
}

type exitEvent struct {
	name string
	id   string
	exit containerruntime.Exit
}

// newWorker returns the worker of pod uid; pod nil makes a worker that
// removes what the node still has of a pod no longer bound to it.
func newWorker(m *Manager, uid types.UID, pod *corev1.Pod) *worker {
	logger := m.logger.With(zap.String("uid", string(uid)))
	if pod != nil {
		logger = m.logger.With(zap.String("pod", pod.Namespace+"/"+pod.Name), zap.String("uid", string(uid)))
	}
	w := &worker{
		m:          m,
		uid:        uid,
		logger:     logger,
		notify:     make(chan struct{}, 1),
		exits:      make(chan exitEvent, 64),
		containers: map[string]*containerState{},
		pod:        pod,
	}
	w.deleted, w.markDeleted = context.WithCancel(context.Background())
	if pod == nil || pod.DeletionTimestamp != nil {
		w.markDeleted()
	}
	if m.cfg.Prober != nil && pod != nil {
		w.probes = m.cfg.Prober.NewPod(w.logger.Named("prober"), w.kick)
	}
	return w
}

func (w *worker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	if pod == nil || pod.DeletionTimestamp != nil {
		// Ends a postStart hook that runs.
		w.markDeleted()
	}
	w.kick()
}

// kick makes the worker sync soon; it never blocks.
func (w *worker) kick() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *worker) latest() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *worker) run(ctx context.Context) {
	// The probe workers end with the pod worker.
	defer w.probes.Stop()
	defer w.markDeleted()
	// When the kubelet stops, the containers run on: only their log
	// files are closed (their output waits in the FIFOs for the next
	// kubelet).
	defer func() {
		for _, cs := range w.containers {
			if cs.log != nil {
				_ = cs.log.Close()
			}
		}
	}()
	var last *corev1.Pod
	for {
		pod := w.latest()
		if pod != nil {
			last = pod
		}
		next, done := w.sync(ctx, pod, last)
		if done {
			return
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.notify:
		case ev := <-w.exits:
			w.onExit(ctx, ev)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// sync drives the pod one step towards its spec. It returns when to look
// again, or done once the pod is gone and cleaned up.
func (w *worker) sync(ctx context.Context, pod, last *corev1.Pod) (time.Duration, bool) {
	for {
		select {
		case ev := <-w.exits:
			w.onExit(ctx, ev)
			continue
		default:
		}
		break
	}
	if pod == nil || pod.DeletionTimestamp != nil {
		w.probes.Stop()
		grace := 30 * time.Second
		if pod != nil && pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		} else if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		}
		if err := w.killPod(ctx, last, grace); err != nil {
			w.logger.Warn("kill pod", zap.Error(err))
			return 2 * time.Second, false
		}
		// The pod's directory goes only once nothing is mounted in it.
		if err := w.tearDownVolumes(); err != nil {
			w.logger.Warn("tear down volumes", zap.Error(err))
			return 2 * time.Second, false
		}
		if err := os.RemoveAll(w.podDir()); err != nil {
			w.logger.Warn("remove pod dir", zap.Error(err))
		}
		// A static pod has no object in the API to delete.
		if pod != nil && !IsStatic(pod) {
			zero := int64(0)
			uid := pod.UID
			_, err := client.For[*corev1.Pod](w.m.c).Delete(ctx, pod.Namespace, pod.Name, metav1.DeleteOptions{
				GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				w.logger.Warn("delete pod", zap.Error(err))
				return 2 * time.Second, false
			}
			w.logger.Info("pod terminated and deleted")
		}
		return 0, true
	}
	if w.written == nil {
		st := pod.Status.DeepCopy()
		w.written = st
		if st.StartTime != nil {
			w.startTime = *st.StartTime
		}
		if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
			w.terminal = true
		}
	}
	if w.startTime.IsZero() {
		w.startTime = metav1.NewTime(time.Now().Truncate(time.Second))
	}
	next := 30 * time.Second
	if w.terminal {
		w.probes.Stop()
		if err := w.killPod(ctx, pod, 0); err != nil {
			w.logger.Warn("stop finished pod", zap.Error(err))
			next = 5 * time.Second
		} else if err := w.tearDownVolumes(); err != nil {
			// A finished pod's volumes go, as upstream's.
			w.logger.Warn("tear down volumes of finished pod", zap.Error(err))
			next = 5 * time.Second
		}
		if len(w.containers) > 0 {
			w.writeStatus(ctx, pod)
		}
		return next, false
	}
	// Volumes first, as upstream: no container starts before all its
	// pod's volumes are there. Later syncs bring the content of configMap,
	// secret, downwardAPI and projected volumes up to date.
	if d, ok := w.setUpVolumes(ctx, pod); !ok {
		w.writeStatus(ctx, pod)
		return d, false
	}
	if w.sandbox == nil && !w.adoptTried {
		w.adoptTried = true
		w.adopt(ctx, pod)
	}
	if w.sandbox == nil {
		if err := w.startSandbox(ctx, pod); err != nil {
			w.logger.Warn("start sandbox", zap.Error(err))
			for _, c := range allContainers(pod) {
				cs := w.state(c.Name)
				if !cs.everRan {
					cs.waitReason, cs.waitMessage = "ContainerCreating", err.Error()
				}
			}
			w.writeStatus(ctx, pod)
			return 3 * time.Second, false
		}
	}
	if w.syncInitContainers(ctx, pod, &next) {
		regularDone := w.regularContainersDone(pod)
		// Sidecars run beside the regular containers, restarted
		// whatever the pod's restart policy, until those are done.
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if !prober.IsSidecar(c) {
				continue
			}
			cs := w.state(c.Name)
			if cs.running {
				w.checkProbes(ctx, pod, c, cs)
				continue
			}
			if !regularDone && !cs.stopped {
				w.tryStart(ctx, pod, c, cs, &next)
			}
		}
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			cs := w.state(c.Name)
			if cs.running {
				w.checkProbes(ctx, pod, c, cs)
				continue
			}
			if cs.everRan && !shouldRestart(pod.Spec.RestartPolicy, cs.last) {
				continue
			}
			w.tryStart(ctx, pod, c, cs, &next)
		}
		if regularDone {
			w.stopSidecars(ctx, pod)
		}
	}
	st := w.writeStatus(ctx, pod)
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		w.terminal = true
		return 0, false
	}
	w.probes.Update(ctx, pod, &st)
	if next < 100*time.Millisecond {
		next = 100 * time.Millisecond
	}
	return next, false
}

// syncInitContainers runs the init containers in order, each after the
// previous one completed (a sidecar: started), restarting a failed one as
// the pod's restart policy says (never under Never: the pod fails). It
// returns true once they all are done, which stays so for the pod.
func (w *worker) syncInitContainers(ctx context.Context, pod *corev1.Pod, next *time.Duration) bool {
	if w.initDone {
		return true
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; prober.IsSidecar(c) {
			w.checkProbes(ctx, pod, c, w.state(c.Name))
		}
	}
	for {
		c, done := w.nextInitContainer(pod)
		if done {
			w.initDone = true
			return true
		}
		if c == nil {
			return false
		}
		cs := w.state(c.Name)
		if !w.tryStart(ctx, pod, c, cs, next) {
			return false
		}
		// A sidecar without a startup probe has started: the next init
		// container goes at once.
		if !prober.IsSidecar(c) || !cs.running || !w.probes.Started(c, cs.id) {
			return false
		}
	}
}

// nextInitContainer is the init container to start now, or nil to wait
// (one runs, a sidecar has not started yet, or one failed for good), or
// done once every init container completed (sidecars: started).
func (w *worker) nextInitContainer(pod *corev1.Pod) (*corev1.Container, bool) {
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := w.state(c.Name)
		if prober.IsSidecar(c) {
			switch {
			case !cs.running:
				return c, false
			case w.probes.Started(c, cs.id):
				continue
			default:
				return nil, false
			}
		}
		switch {
		case cs.running:
			return nil, false
		case cs.everRan && cs.last != nil && cs.last.ExitCode == 0:
			continue
		case cs.everRan && !shouldRestart(restartPolicyOf(pod, kindInit), cs.last):
			return nil, false
		}
		return c, false
	}
	return nil, true
}

// tryStart starts the container unless its back-off holds it; it returns
// whether it started. next becomes the time to look again when sooner.
func (w *worker) tryStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState, next *time.Duration) bool {
	if d := time.Until(cs.nextStart); d > 0 {
		w.backOff(pod, c, cs)
		*next = min(*next, d)
		return false
	}
	if err := w.startContainer(ctx, pod, c, cs); err != nil {
		w.logger.Info("start container", zap.String("container", c.Name), zap.Error(err))
		cs.nextStart = time.Now().Add(w.bumpBackoff(cs))
		*next = min(*next, time.Until(cs.nextStart))
		return false
	}
	return true
}

// checkProbes kills a running container whose liveness or startup probe
// failed.
func (w *worker) checkProbes(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState) {
	if !cs.running {
		return
	}
	if kind, failed := w.probes.Failed(c, cs.id); failed && cs.killed != cs.id {
		w.killUnhealthy(ctx, pod, c, cs, kind)
	}
}

// regularContainersDone reports whether every regular container ended
// for good (none will be restarted): the sidecars are stopped then.
func (w *worker) regularContainersDone(pod *corev1.Pod) bool {
	if len(pod.Spec.Containers) == 0 {
		return false
	}
	for _, c := range pod.Spec.Containers {
		cs := w.state(c.Name)
		if cs.running || !cs.everRan || shouldRestart(pod.Spec.RestartPolicy, cs.last) {
			return false
		}
	}
	return true
}

// stopSidecars stops the running sidecars for good, last first, once the
// regular containers are done.
func (w *worker) stopSidecars(ctx context.Context, pod *corev1.Pod) {
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		cs := w.state(c.Name)
		if !prober.IsSidecar(c) || cs.stopped {
			continue
		}
		cs.stopped = true
		if !cs.running {
			continue
		}
		w.logger.Info("stopping sidecar: the regular containers are done", zap.String("container", c.Name))
		w.event(pod, c.Name, corev1.EventTypeNormal, reasonKilling, "Stopping container "+c.Name)
		if err := w.stopContainer(ctx, pod, c, cs.id, w.podGrace(pod)); err != nil {
			w.logger.Warn("stop sidecar", zap.String("container", c.Name), zap.Error(err))
		}
	}
}

// killUnhealthy stops a container that failed its liveness or startup
// probe; its exit then goes through the restart policy like any other.
func (w *worker) killUnhealthy(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState, kind prober.Kind) {
	grace, msg := unhealthyKill(pod, c, kind)
	w.logger.Info("killing container that failed its probe", zap.String("container", c.Name), zap.Stringer("probe", kind), zap.Duration("grace", grace))
	if w.m.cfg.Recorder != nil {
		w.m.cfg.Recorder.Eventf(prober.ContainerRef(pod, c.Name), corev1.EventTypeNormal, "Killing", "", "%s", msg)
	}
	if err := w.stopContainer(ctx, pod, c, cs.id, grace); err != nil {
		// Tried again at the next sync.
		w.logger.Warn("kill container that failed its probe", zap.String("container", c.Name), zap.Error(err))
		return
	}
	cs.killed = cs.id
}

// unhealthyKill is the grace period of a kill for a failed probe (the
// probe's terminationGracePeriodSeconds, else the pod's) and the message
// of its Killing Event, as upstream's.
func unhealthyKill(pod *corev1.Pod, c *corev1.Container, kind prober.Kind) (time.Duration, string) {
	probe := c.LivenessProbe
	if kind == prober.Startup {
		probe = c.StartupProbe
	}
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	switch {
	case probe != nil && probe.TerminationGracePeriodSeconds != nil:
		grace = time.Duration(*probe.TerminationGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	msg := fmt.Sprintf("Container %s failed %s probe", c.Name, strings.ToLower(kind.String()))
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		msg += ", will be restarted"
	}
	return grace, msg
}

// setUpVolumes sets up (or refreshes) the pod's volumes. Until every one
// of them was set up once, a failure keeps the pod's containers waiting
// with reason CreateContainerConfigError and the message, and it returns
// when to try again and false. Once the pod runs, a volume failing to
// refresh keeps its last content (and gets a FailedMount Event). Failures
// are retried after a back-off (2 s doubling to about a minute), or at once
// when a ConfigMap or Secret the volumes hold changes.
func (w *worker) setUpVolumes(ctx context.Context, pod *corev1.Pod) (time.Duration, bool) {
	if w.m.vol == nil || len(pod.Spec.Volumes) == 0 {
		w.volumesReady = true
		return 0, true
	}
	w.m.vol.RegisterPod(ctx, pod)
	// After a failure, only the back-off or a change of what the volumes
	// hold makes the next attempt, not every sync.
	if changed := w.volChanged.Swap(false); !changed && time.Now().Before(w.volRetry) {
		if w.volumesReady {
			return 0, true
		}
		return time.Until(w.volRetry), false
	}
	vols, errs := w.m.vol.SetUp(ctx, pod)
	w.vols = vols
	if len(errs) == 0 {
		w.volBackoff, w.volRetry = 0, time.Time{}
		w.volumesReady = true
		return 0, true
	}
	switch {
	case w.volBackoff == 0:
		w.volBackoff = 2 * time.Second
	case w.volBackoff < time.Minute:
		w.volBackoff *= 2
	}
	w.volRetry = time.Now().Add(w.volBackoff)
	if w.volumesReady {
		return 0, true
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	msg := strings.Join(msgs, "; ")
	for _, c := range allContainers(pod) {
		if cs := w.state(c.Name); !cs.everRan {
			cs.waitReason, cs.waitMessage = "CreateContainerConfigError", msg
		}
	}
	return w.volBackoff, false
}

// volumesChanged is called when a ConfigMap or Secret the pod's volumes
// hold changed: the worker sets them up at once.
func (w *worker) volumesChanged() {
	w.volChanged.Store(true)
	w.kick()
}

// tearDownVolumes unmounts and removes the pod's volumes.
func (w *worker) tearDownVolumes() error {
	if w.m.vol == nil {
		return nil
	}
	w.vols, w.volumesReady = nil, false
	return w.m.vol.TearDown(w.uid)
}

// configError makes the container wait with CreateContainerConfigError and
// records upstream's Failed Event for it.
func (w *worker) configError(pod *corev1.Pod, c *corev1.Container, cs *containerState, err error) {
	cs.waitReason, cs.waitMessage = "CreateContainerConfigError", err.Error()
	if w.m.cfg.Recorder != nil {
		w.m.cfg.Recorder.Eventf(prober.ContainerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", "", "Error: %s", err.Error())
	}
}

// containerKind tells regular containers, init containers and sidecars
// (restartable init containers) apart.
type containerKind int

const (
	kindRegular containerKind = iota
	kindInit
	kindSidecar
)

// containerKindOf is the kind of the pod's container named name.
func containerKindOf(pod *corev1.Pod, name string) containerKind {
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.Name == name {
			if prober.IsSidecar(c) {
				return kindSidecar
			}
			return kindInit
		}
	}
	return kindRegular
}

// containerSpecOf is the pod's container (init or regular) named name.
func containerSpecOf(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// allContainers are the pod's init containers then its regular ones.
func allContainers(pod *corev1.Pod) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// restartPolicyOf is the restart policy of a container of the kind, as
// upstream's: sidecars always restart, init containers only after a
// failure (never under Never), regular containers per the pod's policy.
func restartPolicyOf(pod *corev1.Pod, kind containerKind) corev1.RestartPolicy {
	switch kind {
	case kindSidecar:
		return corev1.RestartPolicyAlways
	case kindInit:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.RestartPolicyNever
		}
		return corev1.RestartPolicyOnFailure
	default:
		return pod.Spec.RestartPolicy
	}
}

func shouldRestart(policy corev1.RestartPolicy, last *corev1.ContainerStateTerminated) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return last == nil || last.ExitCode != 0
	default:
		return true
	}
}

func (w *worker) state(name string) *containerState {
	cs, ok := w.containers[name]
	if !ok {
		cs = &containerState{name: name, waitReason: "ContainerCreating"}
		w.containers[name] = cs
	}
	return cs
}

// bumpBackoff returns the delay before the next attempt and doubles it.
func (w *worker) bumpBackoff(cs *containerState) time.Duration {
	if cs.backoff == 0 {
		cs.backoff = w.m.cfg.BackoffBase
		return cs.backoff
	}
	cs.backoff *= 2
	if cs.backoff > w.m.cfg.BackoffMax {
		cs.backoff = w.m.cfg.BackoffMax
	}
	return cs.backoff
}

func (w *worker) onExit(ctx context.Context, ev exitEvent) {
	cs, ok := w.containers[ev.name]
	if !ok || cs.id != ev.id {
		return
	}
	cs.running = false
	if cs.out != nil {
		_ = cs.out.Close()
		_ = cs.err.Close()
		_ = cs.log.Close()
		cs.out, cs.err, cs.log = nil, nil, nil
	}
	cs.prev = cs.last
	cs.last = terminated(cs.id, cs.startedAt, ev.exit)
	if pod := w.latest(); pod != nil {
		if c := containerSpecOf(pod, ev.name); c != nil {
			cs.last.Message = w.terminationMessage(pod, c, cs.restartCount, ev.exit.Code)
		}
		// The instance that exited is dead too: with it, at most the
		// limit of dead instances stay.
		if n := w.m.cfg.MaxDeadPerContainer; n > 0 {
			w.collectDead(ctx, pod, ev.name, cs, n-1)
		}
	}
	// Upstream's back-off: the first restart is immediate, then 10 s
	// doubling to 5 min; reset after 10 min of running.
	if ev.exit.FinishedAt.Sub(cs.startedAt) > 10*time.Minute {
		cs.backoff = 0
	}
	if cs.restartCount == 0 && cs.backoff == 0 {
		cs.nextStart = time.Now()
	} else {
		cs.nextStart = time.Now().Add(w.bumpBackoff(cs))
	}
	w.logger.Info("container exited", zap.String("container", ev.name), zap.Int32("exitCode", ev.exit.Code))
}

func (w *worker) podDir() string {
	return filepath.Join(w.m.cfg.RootDir, "pods", string(w.uid))
}

func (w *worker) netnsPath() string {
	return filepath.Join(w.m.cfg.RootDir, "netns", string(w.uid))
}

func (w *worker) cniPod(pod *corev1.Pod, netns string) network.Pod {
	p := network.Pod{ID: string(w.uid), UID: string(w.uid), NetNS: netns}
	if pod != nil {
		p.Namespace, p.Name = pod.Namespace, pod.Name
	}
	return p
}

func (w *worker) labels(pod *corev1.Pod) map[string]string {
	return map[string]string{
		containerruntime.LabelPodUID:       string(pod.UID),
		containerruntime.LabelPodName:      pod.Name,
		containerruntime.LabelPodNamespace: pod.Namespace,
	}
}

// startSandbox makes the network namespace, runs CNI in it and starts the
// pause container holding it. Leftovers of an earlier attempt (or an
// earlier kubelet) are removed first.
func (w *worker) startSandbox(ctx context.Context, pod *corev1.Pod) error {
	start := time.Now()
	if err := w.removeAll(ctx, pod); err != nil {
		return err
	}
	img, err := w.m.rt.EnsureImage(ctx, w.m.cfg.PodInfraImage, corev1.PullIfNotPresent, nil)
	if err != nil {
		return fmt.Errorf("pod infra image: %w", err)
	}
	// The node's pod CIDR matters only until the CNI config is loaded.
	var cidr string
	if w.m.cfg.PodCIDR != nil && !w.m.net.Configured() {
		cidr = w.m.cfg.PodCIDR(ctx)
	}
	if err := w.m.net.EnsureConfig(cidr); err != nil {
		return fmt.Errorf("CNI config: %w", err)
	}
	ns := w.netnsPath()
	if err := network.NewNetNS(ns); err != nil {
		return err
	}
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if len(hostname) > 63 {
		hostname = hostname[:63]
	}
	// The network is set up while the pause container starts: both only
	// need the namespace, and the pod start waits for the slower.
	var ips []net.IP
	var netErr error
	netDone := make(chan struct{})
	var netTook time.Duration
	go func() {
		defer close(netDone)
		netStart := time.Now()
		ips, netErr = w.m.net.Add(ctx, w.cniPod(pod, ns))
		netTook = time.Since(netStart)
	}()
	pauseStart := time.Now()
	pid, err := w.m.rt.StartSandbox(ctx, containerruntime.Sandbox{
		ID: string(w.uid), Image: img, Hostname: hostname, NetNSPath: ns, Labels: w.labels(pod),
		CgroupParent: w.cgroupParent(pod),
	})
	pauseTook := time.Since(pauseStart)
	<-netDone
	if err != nil || netErr != nil {
		if err == nil {
			_ = w.m.rt.Remove(ctx, string(w.uid))
		}
		_ = w.m.net.Del(ctx, w.cniPod(pod, ns))
		_ = network.RemoveNetNS(ns)
		return errors.Join(netErr, err)
	}
	sb := &sandboxState{id: string(w.uid), netns: ns, pid: pid}
	for _, ip := range ips {
		sb.ips = append(sb.ips, ip.String())
	}
	w.sandbox = sb
	w.lastIPs = sb.ips
	if err := w.writeEtcFiles(pod, hostname); err != nil {
		return err
	}
	w.logger.Info("sandbox started", zap.Strings("ips", sb.ips), zap.Duration("took", time.Since(start)),
		zap.Duration("network", netTook), zap.Duration("pause", pauseTook))
	return nil
}

func (w *worker) writeEtcFiles(pod *corev1.Pod, hostname string) error {
	dir := w.podDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hosts := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
	for _, ip := range w.sandbox.ips {
		hosts += ip + "\t" + hostname + "\n"
	}
	for _, ha := range pod.Spec.HostAliases {
		for _, h := range ha.Hostnames {
			hosts += ha.IP + "\t" + h + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc-hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolvConf(pod, w.m.cfg.ClusterDNS, w.m.cfg.ClusterDomain)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644)
}

func (w *worker) mounts() []specs.Mount {
	dir := w.podDir()
	bind := func(dst, src string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "rw"}}
	}
	return []specs.Mount{
		bind("/etc/hosts", filepath.Join(dir, "etc-hosts")),
		bind("/etc/resolv.conf", filepath.Join(dir, "resolv.conf")),
		bind("/etc/hostname", filepath.Join(dir, "hostname")),
	}
}

func (w *worker) startContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState) error {
	start := time.Now()
	creds, err := w.pullCredentials(ctx, pod, c.Image)
	if err != nil {
		cs.waitReason, cs.waitMessage = "ErrImagePull", err.Error()
		return err
	}
	img, pulled, err := w.m.rt.EnsureImageObserved(ctx, c.Image, c.ImagePullPolicy, creds, func() {
		w.event(pod, c.Name, corev1.EventTypeNormal, reasonPulling, fmt.Sprintf("Pulling image %q", c.Image))
	})
	if err != nil {
		cs.waitReason, cs.waitMessage = imageReason(err), err.Error()
		w.imageFailed(pod, c, cs.waitReason, err)
		return err
	}
	w.imagePulled(pod, c, pulled)
	cs.image = c.Image
	cs.imageID = containerruntime.ImageID(ctx, img)
	sec, err := runtimeSecurity(pod, c, w.m.cfg.RootDir)
	if err != nil {
		w.configError(pod, c, cs, err)
		return err
	}
	if eff := effectiveSecurityContext(pod, c); eff.RunAsNonRoot != nil && *eff.RunAsNonRoot {
		uid, username, err := containerruntime.ImageUser(ctx, img)
		if err == nil {
			err = verifyRunAsNonRoot(pod, c, uid, username)
		}
		if err != nil {
			w.configError(pod, c, cs, err)
			return err
		}
	}
	env, err := w.env(ctx, pod, c)
	if err != nil {
		w.configError(pod, c, cs, err)
		return err
	}
	var volumeMounts []containerruntime.Mount
	if len(c.VolumeMounts) > 0 {
		if w.m.vol == nil {
			err := fmt.Errorf("container %q mounts volumes, but this kubelet has no volume manager", c.Name)
			w.configError(pod, c, cs, err)
			return err
		}
		if volumeMounts, err = w.m.vol.Mounts(pod, c, w.vols, envMap(env)); err != nil {
			w.configError(pod, c, cs, err)
			return err
		}
	}
	restart := cs.restartCount
	if cs.everRan {
		restart++
	}
	id := fmt.Sprintf("%s-%s-%d", w.uid, c.Name, restart)
	_ = w.m.rt.Remove(ctx, id)
	lf, err := logs.Create(logs.ContainerPath(w.m.cfg.LogDir, pod.Namespace, pod.Name, string(pod.UID), c.Name, int(restart)), w.m.cfg.LogRotation)
	if err != nil {
		w.createFailed(pod, c, cs, err)
		return err
	}
	termMount, err := w.terminationMessageFile(c, restart)
	if err != nil {
		_ = lf.Close()
		w.createFailed(pod, c, cs, err)
		return err
	}
	out, errw := lf.Stream("stdout"), lf.Stream("stderr")
	labels := w.labels(pod)
	labels[containerruntime.LabelContainer] = c.Name
	run, err := w.m.rt.StartContainer(ctx, ctx, containerruntime.Container{
		ID: id, Image: img, Command: c.Command, Args: c.Args, Env: env, WorkingDir: c.WorkingDir,
		Mounts: append(w.mounts(), termMount...), VolumeMounts: volumeMounts, NetNSPath: w.sandbox.netns, SandboxPID: w.sandbox.pid,
		Labels: labels, Stdout: out, Stderr: errw, RestartCount: restart,
		CgroupParent: w.cgroupParent(pod), Resources: containerResources(pod, c, w.m.memoryCapacity), Security: sec,
	})
	if err != nil {
		_ = lf.Close()
		_ = w.m.rt.Remove(ctx, id)
		w.createFailed(pod, c, cs, err)
		return err
	}
	w.event(pod, c.Name, corev1.EventTypeNormal, reasonCreated, "Created container "+c.Name)
	w.event(pod, c.Name, corev1.EventTypeNormal, reasonStarted, "Started container "+c.Name)
	// The previous runs' containers are kept, dead, up to the limit of
	// dead containers per container (upstream's
	// --maximum-dead-containers-per-container); older ones go with their logs.
	if cs.id != "" && cs.id != id {
		cs.dead = append(cs.dead, deadContainer{id: cs.id, restart: cs.restartCount})
	}
	w.collectDead(ctx, pod, c.Name, cs, w.m.cfg.MaxDeadPerContainer)
	cs.id, cs.log, cs.out, cs.err = id, lf, out, errw
	cs.restartCount = restart
	cs.running, cs.everRan = true, true
	cs.startedAt = time.Now()
	cs.waitReason, cs.waitMessage = "", ""
	w.watchExit(ctx, c.Name, id, run)
	w.logger.Info("container started", zap.String("container", c.Name), zap.String("id", id), zap.Duration("took", time.Since(start)))
	w.postStart(ctx, pod, c, cs)
	return nil
}

// watchExit hands the container instance's exit to the worker.
func (w *worker) watchExit(ctx context.Context, name, id string, run *containerruntime.Running) {
	go func() {
		ex := <-run.Exit
		select {
		case w.exits <- exitEvent{name: name, id: id, exit: ex}:
		case <-ctx.Done():
		}
	}()
}

// cgroupParent is the pod's cgroup, fixed at its first use (the QoS class
// of a pod does not change).
func (w *worker) cgroupParent(pod *corev1.Pod) string {
	if w.cgroup == "" {
		w.cgroup = podCgroupParent(w.m.cfg.CgroupRoot, pod)
	}
	return w.cgroup
}

// imageReason is the waiting reason of a container whose image could not
// be had; while the pull backs off it waits as ImagePullBackOff.
func imageReason(err error) string {
	switch {
	case errors.Is(err, containerruntime.ErrImageNeverPull):
		return "ErrImageNeverPull"
	case errors.Is(err, containerruntime.ErrInvalidImage):
		return "InvalidImageName"
	default:
		return "ErrImagePull"
	}
}

// killPod stops the containers (preStop hooks, SIGTERM, then SIGKILL
// after grace), as upstream's: the regular containers (and an init
// container that runs) together, then the sidecars, last first, in what is
// left of grace. It tears the network down and removes everything the pod
// had in containerd. pod nil (an orphan): no hooks, everything together.
func (w *worker) killPod(ctx context.Context, pod *corev1.Pod, grace time.Duration) error {
	deadline := time.Now().Add(grace)
	var first []*containerState
	var sidecars []*containerState
	for _, cs := range w.containers {
		if !cs.running {
			continue
		}
		if pod != nil && containerKindOf(pod, cs.name) == kindSidecar {
			sidecars = append(sidecars, cs)
		} else {
			first = append(first, cs)
		}
	}
	stop := func(cs *containerState, grace time.Duration) error {
		var c *corev1.Container
		if pod != nil {
			c = containerSpecOf(pod, cs.name)
			w.event(pod, cs.name, corev1.EventTypeNormal, reasonKilling, "Stopping container "+cs.name)
		}
		return w.stopContainer(ctx, pod, c, cs.id, grace)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(first))
	for i, cs := range first {
		wg.Go(func() { errs[i] = stop(cs, grace) })
	}
	wg.Wait()
	if pod != nil {
		index := map[string]int{}
		for i, c := range pod.Spec.InitContainers {
			index[c.Name] = i
		}
		sort.Slice(sidecars, func(i, j int) bool { return index[sidecars[i].name] > index[sidecars[j].name] })
	}
	for _, cs := range sidecars {
		left := max(time.Until(deadline), 0)
		if grace > 0 {
			left = max(left, minKillGrace)
		}
		errs = append(errs, stop(cs, left))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, cs := range w.containers {
		cs.running = false
	}
	if pod == nil {
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: w.uid}}
	}
	return w.removeAll(ctx, pod)
}

// removeAll removes the pod's sandbox network and every container of it.
func (w *worker) removeAll(ctx context.Context, pod *corev1.Pod) error {
	ns := w.netnsPath()
	_, err := os.Stat(ns)
	hadNetNS := err == nil
	if hadNetNS || w.sandbox != nil {
		if err := w.m.net.EnsureConfig(""); err == nil {
			if err := w.m.net.Del(ctx, w.cniPod(pod, ns)); err != nil {
				w.logger.Warn("CNI del", zap.Error(err))
			}
		}
	}
	cs, err := w.m.rt.List(ctx, string(w.uid))
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := w.m.rt.Remove(ctx, c.ID); err != nil {
			return err
		}
	}
	if err := network.RemoveNetNS(ns); err != nil {
		return err
	}
	hadSandbox := w.sandbox != nil
	w.sandbox = nil
	if len(cs) == 0 && !hadNetNS && !hadSandbox {
		// Nothing ran: no cgroup was made.
		return nil
	}
	// The pod's cgroup goes with its containers. The QoS class of an
	// orphan is not known: each place it could be is tried.
	parents := []string{w.cgroup}
	if w.cgroup == "" {
		parents = podCgroupCandidates(w.m.cfg.CgroupRoot, w.uid)
	}
	for _, p := range parents {
		if err := containerruntime.RemoveCgroup(p); err != nil {
			w.logger.Warn("remove pod cgroup", zap.String("cgroup", p), zap.Error(err))
		}
	}
	return nil
}
