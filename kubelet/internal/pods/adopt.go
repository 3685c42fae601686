package pods

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/logs"
	"github.com/coxswain/coxswain/kubelet/internal/prober"
)

// adopt takes over what an earlier kubelet (killed, or restarted) left of
// the pod: when its sandbox still runs, the worker keeps it and its
// network, and takes over the latest instance of each container: one
// that runs is attached to (its output logged again, its exit watched,
// never restarted), one that exited meanwhile is reported with its exit,
// as recorded by containerd. The restart counts and the last terminations
// go on from the containers' labels and the pod's status. Without a
// running sandbox nothing is adopted: the pod starts afresh.
func (w *worker) adopt(ctx context.Context, pod *corev1.Pod) {
	ns := w.netnsPath()
	if _, err := os.Stat(ns); err != nil {
		// No sandbox was set up: nothing to adopt.
		return
	}
	states, err := w.m.rt.PodContainers(ctx, string(w.uid))
	if err != nil {
		w.logger.Warn("list the pod's containers to adopt them", zap.Error(err))
		return
	}
	var sandbox *containerruntime.ContainerState
	for i := range states {
		st := &states[i]
		if st.ID == string(w.uid) && st.Labels[containerruntime.LabelKind] == "sandbox" && st.Running {
			sandbox = st
		}
	}
	if sandbox == nil {
		return
	}
	ips := w.adoptedIPs(ctx, pod, ns)
	if len(ips) == 0 {
		w.logger.Info("not adopting the sandbox: its IPs are unknown")
		return
	}
	w.sandbox = &sandboxState{id: sandbox.ID, netns: ns, pid: sandbox.Pid, ips: ips}
	w.lastIPs = ips
	w.cgroupParent(pod)

	// The latest instance of each container; older ones go.
	latest := map[string]*containerruntime.ContainerState{}
	counts := map[string]int32{}
	for i := range states {
		st := &states[i]
		if st.Labels[containerruntime.LabelKind] != "container" {
			continue
		}
		name := st.Labels[containerruntime.LabelContainer]
		n := restartCountOf(st)
		if cur, ok := latest[name]; ok {
			if counts[name] >= n {
				w.removeStale(ctx, st.ID)
				continue
			}
			w.removeStale(ctx, cur.ID)
		}
		latest[name], counts[name] = st, n
	}
	adopted := 0
	for name, st := range latest {
		c := containerSpecOf(pod, name)
		if c == nil {
			w.removeStale(ctx, st.ID)
			continue
		}
		if w.adoptContainer(ctx, pod, c, st, counts[name]) {
			adopted++
		}
	}
	// Init containers do not run again once they completed, nor once a
	// regular container ran.
	done := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := w.state(c.Name)
		if prober.IsSidecar(c) {
			done = done && cs.everRan
			continue
		}
		done = done && cs.everRan && !cs.running && cs.last != nil && cs.last.ExitCode == 0
	}
	for _, c := range pod.Spec.Containers {
		if w.state(c.Name).everRan {
			done = true
		}
	}
	w.initDone = done
	w.logger.Info("adopted the pod's sandbox and containers", zap.Strings("ips", ips), zap.Int("containers", adopted), zap.Bool("initialized", done))
}

// adoptedIPs are the sandbox's IPs: from the CNI result cache, else the
// pod's status.
func (w *worker) adoptedIPs(ctx context.Context, pod *corev1.Pod, ns string) []string {
	var cidr string
	if w.m.cfg.PodCIDR != nil {
		cidr = w.m.cfg.PodCIDR(ctx)
	}
	var ips []string
	if err := w.m.net.EnsureConfig(cidr); err == nil {
		cached, err := w.m.net.CachedIPs(w.cniPod(pod, ns))
		if err != nil {
			w.logger.Info("CNI cached result", zap.Error(err))
		}
		for _, ip := range cached {
			ips = append(ips, ip.String())
		}
	}
	if len(ips) == 0 {
		for _, ip := range pod.Status.PodIPs {
			if net.ParseIP(ip.IP) != nil {
				ips = append(ips, ip.IP)
			}
		}
	}
	return ips
}

// adoptContainer takes over one container instance; it returns whether
// the instance was kept.
func (w *worker) adoptContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *containerruntime.ContainerState, count int32) bool {
	cs := w.state(c.Name)
	cs.restartCount = count
	cs.image = c.Image
	cs.startedAt = st.CreatedAt
	// What the earlier kubelet reported of this instance.
	if old := findStatus(pod, c.Name); old != nil && old.ContainerID == "containerd://"+st.ID {
		cs.imageID = old.ImageID
		if r := old.State.Running; r != nil {
			cs.startedAt = r.StartedAt.Time
			cs.last = old.LastTerminationState.Terminated.DeepCopy()
		} else if t := old.State.Terminated; t != nil {
			cs.last = t.DeepCopy()
			cs.prev = old.LastTerminationState.Terminated.DeepCopy()
		} else {
			cs.last = old.LastTerminationState.Terminated.DeepCopy()
		}
	}
	switch {
	case st.HasTask:
		lf, err := logs.Create(logs.ContainerPath(w.m.cfg.LogDir, pod.Namespace, pod.Name, string(pod.UID), c.Name, int(count)), w.m.cfg.LogRotation)
		if err != nil {
			w.logger.Warn("open the log of an adopted container", zap.String("container", c.Name), zap.Error(err))
			break
		}
		out, errw := lf.Stream("stdout"), lf.Stream("stderr")
		run, err := w.m.rt.Attach(ctx, ctx, st.ID, out, errw)
		if err != nil {
			_ = lf.Close()
			w.logger.Warn("attach to a container", zap.String("container", c.Name), zap.Error(err))
			break
		}
		cs.id, cs.log, cs.out, cs.err = st.ID, lf, out, errw
		cs.running, cs.everRan = true, true
		w.watchExit(ctx, c.Name, st.ID, run)
		return true
	case st.Exit != nil:
		cs.id, cs.everRan = st.ID, true
		if cs.last == nil || cs.last.ContainerID != "containerd://"+st.ID {
			cs.prev = cs.last
			cs.last = terminated(st.ID, cs.startedAt, *st.Exit)
			cs.last.Message = w.terminationMessage(pod, c, count, st.Exit.Code)
		}
		return true
	}
	// Created but never started, or its end unknown: it goes, and its
	// next instance takes its place.
	w.removeStale(ctx, st.ID)
	cs.id, cs.everRan, cs.running = "", false, false
	return false
}

// terminated is the terminated state of a container instance's exit.
func terminated(id string, startedAt time.Time, ex containerruntime.Exit) *corev1.ContainerStateTerminated {
	reason := "Completed"
	switch {
	case ex.Reason != "":
		reason = ex.Reason
	case ex.Code != 0:
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    ex.Code,
		Reason:      reason,
		StartedAt:   metav1.NewTime(startedAt.Truncate(time.Second)),
		FinishedAt:  metav1.NewTime(ex.FinishedAt.Truncate(time.Second)),
		ContainerID: "containerd://" + id,
	}
}

// restartCountOf is the instance's restart count: its label, else the
// end of its ID (<uid>-<name>-<count>).
func restartCountOf(st *containerruntime.ContainerState) int32 {
	s := st.Labels[containerruntime.LabelRestartCount]
	if s == "" {
		s = st.ID[strings.LastIndexByte(st.ID, '-')+1:]
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

func (w *worker) removeStale(ctx context.Context, id string) {
	if err := w.m.rt.Remove(ctx, id); err != nil {
		w.logger.Warn("remove a stale container", zap.String("id", id), zap.Error(err))
	}
}

// findStatus is the pod's status of the container (init or regular).
func findStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, sts := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		if s, ok := statusOf(sts, name); ok {
			return s
		}
	}
	return nil
}
