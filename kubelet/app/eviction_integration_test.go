package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
	"github.com/coxswain/coxswain/pkg/client"
)

// TestKubeletEvictsUnderMemoryPressure runs a BestEffort pod holding
// 512Mi in a memory-backed emptyDir beside a pod within its
// request, then restarts the kubelet with a memory.available threshold
// set just above what the node has available: the threshold is crossed at
// once without taking any memory from the machine. The hog must end
// Failed/Evicted with upstream's message and an Evicted Event, torn
// down (which gives its 512Mi back, so the threshold is no longer met);
// the node must report MemoryPressure with its NoSchedule taint; the
// pod within its requests must run on untouched.
func TestKubeletEvictsUnderMemoryPressure(t *testing.T) {
	k := startTestKubelet(t, "eviction-it")
	// On failure the pods are left running: the kubelet stops first, then
	// their volumes (the hog's 512Mi tmpfs) are unmounted before
	// containerd's cleanup kills them.
	t.Cleanup(func() {
		_ = k.server.Stop()
		unmountUnder(t, filepath.Join(k.root, "pods"))
	})
	ctx := context.Background()

	hog := k.busyboxPod("hog", "dd if=/dev/zero of=/fill/blob bs=1M count=512 && touch /fill/done && exec sleep 3600", corev1.RestartPolicyAlways)
	limit := resource.MustParse("600Mi")
	hog.Spec.Volumes = []corev1.Volume{{Name: "fill", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit}}}}
	hog.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "fill", MountPath: "/fill"}}
	// Within its requests; Burstable rather than Guaranteed: on this
	// kubelet Guaranteed pods' containers fail to start on some machines
	// (runc "can't get final child's PID from pipe"), a matter of the pod
	// cgroups, not of eviction, whose ranking only looks at requests.
	guaranteed := k.busyboxPod("guaranteed", "exec sleep 3600", corev1.RestartPolicyAlways)
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	guaranteed.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: res}
	for _, p := range []*corev1.Pod{hog, guaranteed} {
		if _, err := k.pods.Create(ctx, "default", p); err != nil {
			t.Fatal(err)
		}
	}
	guaranteedID := k.runningID(t, "guaranteed", "c", 90*time.Second)
	k.runningID(t, "hog", "c", 90*time.Second)
	waitFor(t, "the hog's 512Mi in its working set", 60*time.Second, func() (bool, error) {
		code, b, _ := k.kubeletGet(t, "/stats/summary")
		if code != http.StatusOK {
			return false, fmt.Errorf("HTTP %d: %s", code, b)
		}
		var sum stats.Summary
		if err := json.Unmarshal(b, &sum); err != nil {
			return false, err
		}
		ps := podStatsOf(&sum, "hog")
		if ps == nil || len(ps.Containers) != 1 || ps.Containers[0].Memory == nil || ps.Containers[0].Memory.WorkingSetBytes == nil {
			return false, fmt.Errorf("no memory stats of the hog yet")
		}
		ws := *ps.Containers[0].Memory.WorkingSetBytes
		return ws >= 500<<20, fmt.Errorf("hog working set %d", ws)
	})

	// The threshold: 256Mi above what is available now. Evicting the hog
	// gives 512Mi back, 256Mi above the threshold.
	capacity, workingSet, err := stats.NodeMemory()
	if err != nil {
		t.Fatal(err)
	}
	threshold := (capacity - workingSet + 256<<20) >> 20
	t.Logf("memory: capacity %dMi, available %dMi, threshold %dMi", capacity>>20, (capacity-workingSet)>>20, threshold)
	if err := k.server.Stop(); err != nil {
		t.Fatal(err)
	}
	k.opts.EvictionHard = fmt.Sprintf("memory.available<%dMi", threshold)
	k.opts.EvictionPressureTransitionPeriod = 2 * time.Minute
	k.opts.NodeStatusUpdate = time.Second
	k.restart(t)

	k.waitPod(t, "hog", "Failed/Evicted", 60*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" {
			return fmt.Errorf("phase %s, reason %q, message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		for _, want := range []string{"The node was low on resource: memory. Threshold quantity: " + fmt.Sprintf("%dMi", threshold) + ", available: ", "Container c was using ", "request is 0, has larger consumption of memory."} {
			if !strings.Contains(p.Status.Message, want) {
				t.Errorf("message %q, want it to contain %q", p.Status.Message, want)
			}
		}
		return nil
	})
	waitFor(t, "an Evicted Event about the hog", 20*time.Second, func() (bool, error) {
		evs, _, err := client.For[*corev1.Event](k.env.Client).List(ctx, "default", metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var seen []string
		for _, ev := range evs {
			if ev.InvolvedObject.Name == "hog" && ev.Reason == "Evicted" && ev.Type == corev1.EventTypeWarning &&
				strings.HasPrefix(ev.Message, "The node was low on resource: memory.") && ev.Source.Component == "kubelet" {
				return true, nil
			}
			seen = append(seen, ev.InvolvedObject.Name+" "+ev.Reason+": "+ev.Message)
		}
		return false, fmt.Errorf("events: %q", seen)
	})
	hogPod, err := k.pods.Get(ctx, "default", "hog")
	if err != nil {
		t.Fatal(err)
	}
	k.wantPodGone(t, hogPod.UID)

	waitFor(t, "MemoryPressure=True and the memory-pressure taint on the node", 30*time.Second, func() (bool, error) {
		n, err := client.For[*corev1.Node](k.env.Client).Get(ctx, "", k.nodeName)
		if err != nil {
			return false, err
		}
		pressure, taint := false, false
		for _, c := range n.Status.Conditions {
			pressure = pressure || c.Type == corev1.NodeMemoryPressure && c.Status == corev1.ConditionTrue && c.Reason == "KubeletHasInsufficientMemory"
		}
		for _, tn := range n.Spec.Taints {
			taint = taint || tn.Key == corev1.TaintNodeMemoryPressure && tn.Effect == corev1.TaintEffectNoSchedule
		}
		return pressure && taint, fmt.Errorf("conditions %+v, taints %+v", n.Status.Conditions, n.Spec.Taints)
	})

	// The pod within its requests runs on through the next eviction cycles (one
	// every 10 s): its usage is within its request, and the threshold is
	// no longer met.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		p, err := k.pods.Get(ctx, "default", "guaranteed")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := statusNamed(p.Status.ContainerStatuses, "c")
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning || cs.State.Running == nil || containerID(cs) != guaranteedID || cs.RestartCount != 0 {
			t.Fatalf("the pod within its requests: phase %s, reason %q, message %q, container %+v; want it running untouched as %s",
				p.Status.Phase, p.Status.Reason, p.Status.Message, cs, guaranteedID)
		}
		time.Sleep(500 * time.Millisecond) // observing that nothing changes over the window
	}
	for _, name := range []string{"guaranteed", "hog"} {
		if _, err := k.pods.Delete(ctx, "default", name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the pods gone", 60*time.Second, func() (bool, error) {
		ps, _, err := k.pods.List(ctx, "default", metav1.ListOptions{})
		return err == nil && len(ps) == 0, fmt.Errorf("%d pods left, %v", len(ps), err)
	})
}

// TestEvictionFlags checks that bad eviction flags stop the kubelet at
// start with an error naming the flag.
func TestEvictionFlags(t *testing.T) {
	for _, tc := range []struct {
		name, hard, reclaim string
		period              time.Duration
		wantErr             string
	}{
		{name: "defaults", hard: "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%", period: 5 * time.Minute},
		{name: "unknown signal", hard: "memory.free<1Gi", period: time.Minute, wantErr: `--eviction-hard "memory.free<1Gi": unsupported eviction signal`},
		{name: "bad quantity", hard: "memory.available<1Gb", period: time.Minute, wantErr: `--eviction-hard "memory.available<1Gb": invalid quantity`},
		{name: "reclaim without threshold", hard: "memory.available<1Gi", reclaim: "nodefs.available=1Gi", period: time.Minute, wantErr: "--eviction-minimum-reclaim"},
		{name: "negative period", hard: "", period: -time.Second, wantErr: "--eviction-pressure-transition-period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			o.Kubeconfig = "/dev/null"
			o.EvictionHard, o.EvictionMinimumReclaim, o.EvictionPressureTransitionPeriod = tc.hard, tc.reclaim, tc.period
			err := o.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if o := NewOptions(); o.EvictionHard != "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%" || o.EvictionPressureTransitionPeriod != 5*time.Minute {
		t.Errorf("defaults: --eviction-hard %q, --eviction-pressure-transition-period %v; want upstream's", o.EvictionHard, o.EvictionPressureTransitionPeriod)
	}
}
