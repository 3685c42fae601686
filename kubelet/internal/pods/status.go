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

	"github.com/coxswain/coxswain/pkg/client"
)

// writeStatus computes the pod's status and writes it when it changed.
func (w *worker) writeStatus(ctx context.Context, pod *corev1.Pod) corev1.PodStatus {
	st := w.status(pod)
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
	var waiting, running, stopped, succeeded, failed, ready int
	for _, c := range pod.Spec.Containers {
		cs := w.state(c.Name)
		s := corev1.ContainerStatus{
			Name:         c.Name,
			Image:        c.Image,
			ImageID:      cs.imageID,
			RestartCount: cs.restartCount,
		}
		if cs.everRan {
			s.ContainerID = "containerd://" + cs.id
		}
		f := false
		s.Started = &f
		switch {
		case cs.running:
			running++
			started := w.probes.Started(&c, cs.id)
			s.Started = &started
			if w.probes.Ready(&c, cs.id) {
				ready++
				s.Ready = true
			}
			s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(cs.startedAt.Truncate(time.Second))}
			if cs.last != nil {
				s.LastTerminationState.Terminated = cs.last.DeepCopy()
			}
		case cs.everRan && !w.terminal && shouldRestart(pod.Spec.RestartPolicy, cs.last):
			stopped++
			if cs.last.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
			reason, msg := cs.waitReason, cs.waitMessage
			if reason == "" {
				reason = "CrashLoopBackOff"
				msg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", cs.backoff, c.Name, pod.Name, pod.Namespace, pod.UID)
			}
			s.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
			s.LastTerminationState.Terminated = cs.last.DeepCopy()
		case cs.everRan:
			stopped++
			if cs.last != nil && cs.last.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
			if cs.last != nil {
				s.State.Terminated = cs.last.DeepCopy()
			} else {
				s.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error", ContainerID: s.ContainerID}
			}
			if cs.prev != nil {
				s.LastTerminationState.Terminated = cs.prev.DeepCopy()
			}
		default:
			waiting++
			reason := cs.waitReason
			if reason == "" {
				reason = "ContainerCreating"
			}
			msg := cs.waitMessage
			if reason == "ContainerCreating" {
				msg = ""
			}
			s.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, s)
	}
	n := len(pod.Spec.Containers)
	switch {
	case w.terminal && old.Phase != "":
		st.Phase = old.Phase
	case waiting > 0:
		st.Phase = corev1.PodPending
	case running > 0:
		st.Phase = corev1.PodRunning
	case stopped == n && n > 0:
		switch pod.Spec.RestartPolicy {
		case corev1.RestartPolicyNever:
			if failed > 0 {
				st.Phase = corev1.PodFailed
			} else {
				st.Phase = corev1.PodSucceeded
			}
		case corev1.RestartPolicyOnFailure:
			if succeeded == n {
				st.Phase = corev1.PodSucceeded
			} else {
				st.Phase = corev1.PodRunning
			}
		default:
			st.Phase = corev1.PodRunning
		}
	default:
		st.Phase = corev1.PodPending
	}
	allReady := ready == n && n > 0
	sandboxUp := w.sandbox != nil
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, LastTransitionTime: now}
		if ok {
			c.Status = corev1.ConditionTrue
		} else {
			c.Reason = reason
			if reason == "ContainersNotReady" {
				var names []string
				for _, s := range st.ContainerStatuses {
					if !s.Ready {
						names = append(names, s.Name)
					}
				}
				c.Message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
			}
			if reason == "PodCompleted" {
				c.Reason = "PodCompleted"
			}
		}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	notReady := "ContainersNotReady"
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		notReady = "PodCompleted"
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sandboxUp, ""),
		cond(corev1.PodInitialized, true, ""),
		cond(corev1.ContainersReady, allReady, notReady),
		cond(corev1.PodReady, allReady, notReady),
		cond(corev1.PodScheduled, true, ""),
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

func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	any, guaranteed := false, true
	for _, c := range pod.Spec.Containers {
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
