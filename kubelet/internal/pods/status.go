package pods

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/prober"
	"github.com/coxswain/coxswain/pkg/client"
)

// writeStatus computes the pod's status and writes it when it changed.
func (w *worker) writeStatus(ctx context.Context, pod *corev1.Pod) corev1.PodStatus {
	st := w.status(pod)
	if IsStatic(pod) {
		return w.writeStaticStatus(pod, st)
	}
	if w.written != nil && equality.Semantic.DeepEqual(*w.written, st) {
		return st
	}
	p := pod.DeepCopy()
	p.Status = st
	pods := client.For[*corev1.Pod](w.m.c)
	out, err := pods.UpdateStatus(ctx, p.Namespace, p)
	if apierrors.IsConflict(err) {
		// The cache is behind our own last write: retry on the latest.
		if cur, gerr := pods.Get(ctx, p.Namespace, p.Name); gerr == nil && cur.UID == p.UID {
			cur.Status = st
			out, err = pods.UpdateStatus(ctx, cur.Namespace, cur)
		}
	}
	if err != nil {
		w.logger.Warn("update pod status", zap.Error(err))
		// Retried at the next sync: written stays as it was.
		return st
	}
	w.written = out.Status.DeepCopy()
	w.logger.Debug("pod status written", zap.String("phase", string(st.Phase)))
	return st
}

// status is the pod's status from the worker's state.
func (w *worker) status(pod *corev1.Pod) corev1.PodStatus {
	old := pod.Status
	if w.written != nil {
		old = *w.written
	}
	st := corev1.PodStatus{
		HostIP:    w.m.cfg.NodeIP,
		HostIPs:   []corev1.HostIP{{IP: w.m.cfg.NodeIP}},
		StartTime: &w.startTime,
		QOSClass:  qosClass(pod),
	}
	if w.m.cfg.NodeIP == "" {
		st.HostIPs = nil
	}
	ips := w.lastIPs
	if len(ips) == 0 && old.PodIP != "" {
		ips = []string{old.PodIP}
	}
	if len(ips) > 0 {
		st.PodIP = ips[0]
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	// Containers not created yet wait as PodInitializing in a pod with
	// init containers, as upstream's.
	defaultWaiting := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		defaultWaiting = "PodInitializing"
	}
	for i := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, w.containerStatus(pod, &pod.Spec.InitContainers[i], defaultWaiting))
	}
	for i := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, w.containerStatus(pod, &pod.Spec.Containers[i], defaultWaiting))
	}
	if w.terminal && old.Phase != "" {
		st.Phase = old.Phase
	} else {
		st.Phase = podPhase(pod, st.InitContainerStatuses, st.ContainerStatuses, w.terminal)
	}
	containersReady := containersReadyCondition(pod, &st)
	ready := podReadyCondition(pod, old.Conditions, containersReady)
	readyToStart := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse}
	if w.sandbox != nil {
		readyToStart.Status = corev1.ConditionTrue
	}
	st.Conditions = []corev1.PodCondition{
		readyToStart,
		initializedCondition(pod, &st),
		containersReady,
		ready,
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.LastTransitionTime = now
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	// Keep conditions other components own (readiness gates, disruption).
	for _, o := range old.Conditions {
		switch o.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled:
		default:
			st.Conditions = append(st.Conditions, o)
		}
	}
	return st
}

// containerStatus is the status of one of the pod's containers, init or
// regular, from the worker's state.
func (w *worker) containerStatus(pod *corev1.Pod, c *corev1.Container, defaultWaiting string) corev1.ContainerStatus {
	cs := w.state(c.Name)
	kind := containerKindOf(pod, c.Name)
	s := corev1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		ImageID:      cs.imageID,
		RestartCount: cs.restartCount,
	}
	if cs.everRan {
		s.ContainerID = "containerd://" + cs.id
	}
	started := false
	s.Started = &started
	switch {
	case cs.running:
		started = w.probes.Started(c, cs.id)
		switch kind {
		case kindInit:
			// A regular init container is ready once it completed.
		default:
			s.Ready = w.probes.Ready(c, cs.id)
		}
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(cs.startedAt.Truncate(time.Second))}
		if cs.last != nil {
			s.LastTerminationState.Terminated = cs.last.DeepCopy()
		}
	case cs.everRan && !w.terminal && !cs.stopped && shouldRestart(restartPolicyOf(pod, kind), cs.last):
		reason, msg := cs.waitReason, cs.waitMessage
		if reason == "" {
			reason = "CrashLoopBackOff"
			msg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", cs.backoff, c.Name, pod.Name, pod.Namespace, pod.UID)
		}
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		s.LastTerminationState.Terminated = cs.last.DeepCopy()
	case cs.everRan:
		if cs.last != nil {
			s.State.Terminated = cs.last.DeepCopy()
		} else {
			s.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown", Message: "The container could not be located when the pod was terminated", ContainerID: s.ContainerID}
		}
		if cs.prev != nil {
			s.LastTerminationState.Terminated = cs.prev.DeepCopy()
		}
		if kind == kindInit && s.State.Terminated.ExitCode == 0 {
			s.Ready = true
		}
	default:
		reason, msg := cs.waitReason, cs.waitMessage
		if reason == "" || reason == "ContainerCreating" {
			reason, msg = defaultWaiting, ""
		}
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	}
	return s
}

// podPhase is the pod's phase from its containers' statuses, as
// upstream's kubelet getPhase: Pending until the init containers are done
// (Failed at once when one failed under restartPolicy Never) and every
// container started; Running while one runs or will run again; Succeeded
// or Failed once they all ended for good. Sidecars count only while the
// pod initializes. terminal: the pod is stopping for good.
func podPhase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus, terminal bool) corev1.PodPhase {
	spec := &pod.Spec
	pendingInitialization, failedInitialization := 0, 0
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		cs, ok := statusOf(initStatuses, c.Name)
		if prober.IsSidecar(c) {
			switch {
			case !ok:
				unknown++
			case cs.State.Running != nil:
				if cs.Started == nil || !*cs.Started {
					pendingInitialization++
				}
				running++
			case cs.State.Terminated != nil:
			case cs.State.Waiting != nil:
				if cs.LastTerminationState.Terminated == nil {
					pendingInitialization++
					waiting++
				}
			default:
				pendingInitialization++
				unknown++
			}
			continue
		}
		switch {
		case !ok:
			pendingInitialization++
		case cs.State.Running != nil:
			pendingInitialization++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInitialization++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				if cs.LastTerminationState.Terminated.ExitCode != 0 {
					failedInitialization++
				}
			} else {
				pendingInitialization++
			}
		default:
			pendingInitialization++
		}
	}
	for _, c := range spec.Containers {
		cs, ok := statusOf(statuses, c.Name)
		switch {
		case !ok:
			unknown++
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	if failedInitialization > 0 && spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInitialization > 0 && !anyRegularStarted(spec, statuses), waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		if spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	default:
		return corev1.PodPending
	}
}

func statusOf(statuses []corev1.ContainerStatus, name string) (*corev1.ContainerStatus, bool) {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i], true
		}
	}
	return nil, false
}

// anyRegularStarted reports whether a regular container ever started,
// as upstream's HasAnyRegularContainerStarted.
func anyRegularStarted(spec *corev1.PodSpec, statuses []corev1.ContainerStatus) bool {
	for _, c := range spec.Containers {
		cs, ok := statusOf(statuses, c.Name)
		if !ok {
			continue
		}
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

// initializedCondition is upstream's GeneratePodInitializedCondition:
// true once every init container completed (sidecars: started), or once a
// regular container started.
func initializedCondition(pod *corev1.Pod, st *corev1.PodStatus) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	if len(pod.Spec.InitContainers) == 0 {
		return cond
	}
	var unknown, incomplete []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs, ok := statusOf(st.InitContainerStatuses, c.Name)
		switch {
		case !ok:
			unknown = append(unknown, c.Name)
		case prober.IsSidecar(c):
			if cs.Started == nil || !*cs.Started {
				incomplete = append(incomplete, c.Name)
			}
		case cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0:
			incomplete = append(incomplete, c.Name)
		}
	}
	if st.Phase == corev1.PodSucceeded && len(unknown) == 0 {
		cond.Reason = "PodCompleted"
		return cond
	}
	if anyRegularStarted(&pod.Spec, st.ContainerStatuses) {
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(msgs) > 0 {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, "ContainersNotInitialized", strings.Join(msgs, ", ")
	}
	return cond
}

// containersReadyCondition is upstream's GenerateContainersReadyCondition:
// every regular container and sidecar ready.
func containersReadyCondition(pod *corev1.Pod, st *corev1.PodStatus) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}
	var unknown, unready []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if !prober.IsSidecar(c) {
			continue
		}
		if cs, ok := statusOf(st.InitContainerStatuses, c.Name); !ok {
			unknown = append(unknown, c.Name)
		} else if !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		if cs, ok := statusOf(st.ContainerStatuses, c.Name); !ok {
			unknown = append(unknown, c.Name)
		} else if !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	switch {
	case st.Phase == corev1.PodSucceeded && len(unknown) == 0:
		cond.Reason = "PodCompleted"
		return cond
	case st.Phase == corev1.PodFailed:
		cond.Reason = "PodFailed"
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		cond.Reason, cond.Message = "ContainersNotReady", strings.Join(msgs, ", ")
		return cond
	}
	cond.Status = corev1.ConditionTrue
	return cond
}

// podReadyCondition is upstream's GeneratePodReadyCondition: the
// containers ready, and every readiness gate's condition True.
func podReadyCondition(pod *corev1.Pod, conditions []corev1.PodCondition, containersReady corev1.PodCondition) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.PodReady, Status: containersReady.Status, Reason: containersReady.Reason, Message: containersReady.Message}
	if cond.Status != corev1.ConditionTrue {
		return cond
	}
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		var found *corev1.PodCondition
		for i := range conditions {
			if conditions[i].Type == g.ConditionType {
				found = &conditions[i]
			}
		}
		switch {
		case found == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(g.ConditionType)))
		case found.Status != corev1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(g.ConditionType), found.Status))
		}
	}
	if len(msgs) > 0 {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, "ReadinessGatesNotReady", strings.Join(msgs, ", ")
	}
	return cond
}

// qosClass is the pod's QoS class as upstream computes it: BestEffort
// without any CPU or memory request or limit, Guaranteed when every
// container (init containers too) limits both and requests what it limits,
// else Burstable.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	any, guaranteed := false, true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if hasReq || hasLim {
				any = true
			}
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}

// resolvConf is the pod's /etc/resolv.conf: the cluster DNS for
// ClusterFirst when one is configured, else the host's.
func resolvConf(pod *corev1.Pod, clusterDNS []string, domain string) string {
	host, _ := os.ReadFile("/etc/resolv.conf")
	if pod.Spec.DNSPolicy == corev1.DNSNone && pod.Spec.DNSConfig != nil {
		return dnsConfig(pod.Spec.DNSConfig.Nameservers, pod.Spec.DNSConfig.Searches, pod.Spec.DNSConfig.Options)
	}
	if len(clusterDNS) == 0 || pod.Spec.DNSPolicy == corev1.DNSDefault {
		return string(host)
	}
	search := []string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}
	return dnsConfig(clusterDNS, search, []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr("5")}})
}

func ptr[T any](v T) *T { return &v }

func dnsConfig(servers, search []string, opts []corev1.PodDNSConfigOption) string {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	var os []string
	for _, o := range opts {
		if o.Value != nil {
			os = append(os, o.Name+":"+*o.Value)
		} else {
			os = append(os, o.Name)
		}
	}
	if len(os) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(os, " "))
	}
	return b.String()
}
