package eviction

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/stats"
)

func TestParseThresholds(t *testing.T) {
	mi := func(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
	for _, tc := range []struct {
		name, hard, reclaim string
		want                []Threshold
		wantErr             string
	}{
		{name: "upstream defaults", hard: DefaultEvictionHard, want: []Threshold{
			{Signal: SignalImageFsAvailable, Value: Value{Percentage: 0.15}},
			{Signal: SignalMemoryAvailable, Value: Value{Quantity: mi("100Mi")}},
			{Signal: SignalNodeFsAvailable, Value: Value{Percentage: 0.10}},
			{Signal: SignalNodeFsInodesFree, Value: Value{Percentage: 0.05}},
		}},
		{name: "empty is none", hard: ""},
		{name: "with minimum reclaim", hard: "memory.available<1Gi, pid.available<1000", reclaim: "memory.available=500Mi", want: []Threshold{
			{Signal: SignalMemoryAvailable, Value: Value{Quantity: mi("1Gi")}, MinReclaim: &Value{Quantity: mi("500Mi")}},
			{Signal: SignalPIDAvailable, Value: Value{Quantity: mi("1000")}},
		}},
		{name: "zero turns a threshold off", hard: "memory.available<0,nodefs.available<0%,imagefs.inodesFree<5%", want: []Threshold{
			{Signal: SignalImageFsInodesFree, Value: Value{Percentage: 0.05}},
		}},
		{name: "unknown signal", hard: "memory.free<1Gi", wantErr: `unsupported eviction signal "memory.free"`},
		{name: "other operator", hard: "memory.available>1Gi", wantErr: `want signal<value`},
		{name: "bad quantity", hard: "memory.available<lots", wantErr: `invalid quantity "lots"`},
		{name: "negative", hard: "memory.available<-1Gi", wantErr: "must not be negative"},
		{name: "percentage over 100", hard: "nodefs.available<120%", wantErr: "within 0% and 100%"},
		{name: "twice", hard: "memory.available<1Gi,memory.available<2Gi", wantErr: "given twice"},
		{name: "reclaim without threshold", hard: "memory.available<1Gi", reclaim: "nodefs.available=1Gi", wantErr: "no eviction threshold for nodefs.available"},
		{name: "reclaim syntax", hard: "memory.available<1Gi", reclaim: "memory.available<1Gi", wantErr: "want signal=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseThresholds(tc.hard, tc.reclaim)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); d != "" {
				t.Errorf("thresholds (-want +got):\n%s", d)
			}
		})
	}
}

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

const mib = 1 << 20

func nodeSummary(memAvailable, memWorkingSet uint64) *stats.Summary {
	return &stats.Summary{Node: stats.NodeStats{
		Memory: &stats.MemoryStats{AvailableBytes: u64(memAvailable), WorkingSetBytes: u64(memWorkingSet)},
		Fs:     &stats.FsStats{AvailableBytes: u64(5 * 1000), CapacityBytes: u64(100 * 1000), InodesFree: u64(900), Inodes: u64(1000)},
		Runtime: &stats.RuntimeStats{ImageFs: &stats.FsStats{
			AvailableBytes: u64(40 * 1000), CapacityBytes: u64(200 * 1000), InodesFree: u64(10), Inodes: u64(1000),
		}},
		Rlimit: &stats.RlimitStats{MaxPID: i64(4000), NumOfRunningProcesses: i64(300)},
	}}
}

func TestObserveAndThresholdsMet(t *testing.T) {
	obs := observe(nodeSummary(80*mib, 920*mib))
	want := map[Signal]observation{
		SignalMemoryAvailable:   {available: 80 * mib, capacity: 1000 * mib},
		SignalNodeFsAvailable:   {available: 5000, capacity: 100000},
		SignalNodeFsInodesFree:  {available: 900, capacity: 1000},
		SignalImageFsAvailable:  {available: 40000, capacity: 200000},
		SignalImageFsInodesFree: {available: 10, capacity: 1000},
		SignalPIDAvailable:      {available: 3700, capacity: 4000},
	}
	if d := cmp.Diff(want, map[Signal]observation(obs), cmp.AllowUnexported(observation{})); d != "" {
		t.Errorf("observations (-want +got):\n%s", d)
	}
	ts, err := ParseThresholds("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%,pid.available<10%", "memory.available=50Mi")
	if err != nil {
		t.Fatal(err)
	}
	signals := func(ts []Threshold) []Signal {
		var out []Signal
		for _, t := range ts {
			out = append(out, t.Signal)
		}
		return out
	}
	// 80Mi < 100Mi; 5000 < 10% of 100000; 10 inodes < 5% of 1000;
	// imagefs 20% free is above 15%, nodefs inodes 90% free, pids 92%.
	if d := cmp.Diff([]Signal{SignalImageFsInodesFree, SignalMemoryAvailable, SignalNodeFsAvailable}, signals(thresholdsMet(ts, obs, false))); d != "" {
		t.Errorf("met (-want +got):\n%s", d)
	}
	// 120Mi free: above the threshold but not above it plus the minimum
	// reclaim: a threshold met before holds.
	obs = observe(nodeSummary(120*mib, 880*mib))
	var mem []Threshold
	for _, th := range ts {
		if th.Signal == SignalMemoryAvailable {
			mem = append(mem, th)
		}
	}
	if got := thresholdsMet(mem, obs, false); len(got) != 0 {
		t.Errorf("met without min reclaim = %v, want none", signals(got))
	}
	if got := thresholdsMet(mem, obs, true); len(got) != 1 {
		t.Errorf("met with min reclaim = %v, want memory.available", signals(got))
	}
}

func pod(name string, prio int32, memRequest string, static bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{Priority: &prio, Containers: []corev1.Container{{Name: "c"}}},
	}
	if memRequest != "" {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memRequest)}
	}
	if static {
		p.Annotations = map[string]string{configSourceAnnotation: "file"}
	}
	return p
}

func podStats(name string, workingSet uint64) stats.PodStats {
	return stats.PodStats{
		PodRef:     stats.PodReference{Name: name, Namespace: "default", UID: "uid-" + name},
		Containers: []stats.ContainerStats{{Name: "c", Memory: &stats.MemoryStats{WorkingSetBytes: u64(workingSet)}}},
	}
}

func TestRankMemory(t *testing.T) {
	pods := []*corev1.Pod{
		pod("guaranteed-big", 0, "500Mi", false),    // 400Mi of 500Mi: within
		pod("burstable-over", 0, "100Mi", false),    // 150Mi of 100Mi: +50Mi
		pod("besteffort-small", 0, "", false),       // 20Mi of 0: +20Mi
		pod("besteffort-high", 1000, "", false),     // 300Mi, but higher priority
		pod("no-stats", 0, "", false),               // no stats: first
		pod("within-low-prio", -10, "200Mi", false), // 10Mi of 200Mi, lowest priority
	}
	s := &stats.Summary{Pods: []stats.PodStats{
		podStats("guaranteed-big", 400*mib), podStats("burstable-over", 150*mib), podStats("besteffort-small", 20*mib),
		podStats("besteffort-high", 300*mib), podStats("within-low-prio", 10*mib),
	}}
	rankPods(pods, SignalMemoryAvailable, statsByUID(s))
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"no-stats", "burstable-over", "besteffort-small", "besteffort-high", "within-low-prio", "guaranteed-big"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rank (-want +got):\n%s", d)
	}
}

type fakeStats struct{ s *stats.Summary }

func (f fakeStats) Summary(context.Context, bool) (*stats.Summary, error) {
	s := *f.s
	return &s, nil
}

func (f fakeStats) FreshNode() (*stats.MemoryStats, *stats.FsStats, error) { return nil, nil, nil }

type fakeEvicter struct {
	mu      sync.Mutex
	evicted map[string]corev1.PodStatus
}

func (f *fakeEvicter) Evict(_ context.Context, p *corev1.Pod, st corev1.PodStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evicted[p.Name] = st
	return nil
}

type fakeRecorder struct{ events []string }

func (r *fakeRecorder) Eventf(obj runtime.Object, eventType, reason, _, format string, args ...any) {
	p := obj.(*corev1.Pod)
	r.events = append(r.events, fmt.Sprintf("%s %s %s %s", p.Name, eventType, reason, fmt.Sprintf(format, args...)))
}

func TestSynchronize(t *testing.T) {
	ts, err := ParseThresholds("memory.available<100Mi", "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	summary := nodeSummary(80*mib, 920*mib)
	summary.Pods = []stats.PodStats{podStats("static", 900*mib), podStats("hog", 50*mib), podStats("guaranteed", 10*mib)}
	running := corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "c", Ready: true, ContainerID: "containerd://abc", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
	}}}
	pods := []*corev1.Pod{pod("static", 0, "", true), pod("hog", 0, "", false), pod("guaranteed", 0, "64Mi", false), pod("done", 0, "", false)}
	for _, p := range pods {
		p.Status = *running.DeepCopy()
	}
	pods[3].Status.Phase = corev1.PodSucceeded
	ev := &fakeEvicter{evicted: map[string]corev1.PodStatus{}}
	rec := &fakeRecorder{}
	m := New(Config{
		Thresholds: ts, PressureTransitionPeriod: time.Minute, Stats: fakeStats{summary},
		Pods: func() []*corev1.Pod { return pods }, Evicter: ev, Recorder: rec, Logger: zaptest.NewLogger(t),
		Now: func() time.Time { return now },
	})
	if m.UnderPressure(corev1.NodeMemoryPressure) {
		t.Fatal("under memory pressure before any observation")
	}
	got, err := m.Synchronize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The static pod uses most but is critical; the hog is over its
	// request of 0; the guaranteed pod is within its request.
	if got == nil || got.Name != "hog" {
		t.Fatalf("evicted %v, want hog", got)
	}
	wantMsg := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container c was using 50Mi, request is 0, has larger consumption of memory."
	st := ev.evicted["hog"]
	if st.Phase != corev1.PodFailed || st.Reason != Reason || st.Message != wantMsg {
		t.Errorf("status = %s/%s/%q, want Failed/Evicted/%q", st.Phase, st.Reason, st.Message, wantMsg)
	}
	if cs := st.ContainerStatuses[0]; cs.State.Terminated == nil || cs.Ready {
		t.Errorf("container status = %+v, want terminated and not ready", cs)
	}
	var disruption bool
	for _, c := range st.Conditions {
		disruption = disruption || c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonTerminationByKubelet
	}
	if !disruption {
		t.Errorf("conditions = %+v, want DisruptionTarget True", st.Conditions)
	}
	if d := cmp.Diff([]string{"hog Warning Evicted " + wantMsg}, rec.events); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if !m.UnderPressure(corev1.NodeMemoryPressure) || m.UnderPressure(corev1.NodeDiskPressure) {
		t.Error("want MemoryPressure only")
	}

	// Memory back: no eviction, the condition holds for the transition
	// period.
	summary.Node.Memory = &stats.MemoryStats{AvailableBytes: u64(500 * mib), WorkingSetBytes: u64(500 * mib)}
	now = now.Add(30 * time.Second)
	if got, err := m.Synchronize(context.Background()); err != nil || got != nil {
		t.Fatalf("evicted %v (%v), want none", got, err)
	}
	if !m.UnderPressure(corev1.NodeMemoryPressure) {
		t.Error("memory pressure ended within the transition period")
	}
	now = now.Add(time.Minute)
	if m.UnderPressure(corev1.NodeMemoryPressure) {
		t.Error("memory pressure held past the transition period")
	}
}
