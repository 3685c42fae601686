package scheduler

import (
	"context"
	"math/rand/v2"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/scheduler/internal/bench"
	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins"
)

// benchmarkCycles runs what scheduleOne does per pod, as scheduler-bench
// loads it: snapshot update, filters and scores, assume; each assumed pod
// is confirmed (as the informer's bound pod) a few cycles later.
func benchmarkCycles(b *testing.B, numNodes int, affinity bool) {
	nodes := make([]*corev1.Node, numNodes)
	for i := range nodes {
		nodes[i] = bench.Node(i)
	}
	c := cache.New(nil)
	for _, n := range nodes {
		c.AddNode(n)
	}
	h := &handle{snapshot: cache.NewSnapshot(), parallel: framework.NewParallelizer(16)}
	fwk, err := NewFramework(config.Default().Profiles[0], plugins.NewInTreeRegistry(), 16, h)
	if err != nil {
		b.Fatal(err)
	}
	s := &Scheduler{fwk: fwk, cache: c, snapshot: h.snapshot, handle: h, rand: rand.New(rand.NewPCG(1, 2))}
	newPod := func(i int) *corev1.Pod {
		p := bench.Pod(i, affinity)
		p.UID = types.UID(p.Name) // the apiserver's part, which the cache keys by
		return p
	}
	const confirmLag = 64
	var pending []*corev1.Pod
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		pod := newPod(i)
		i++
		s.cache.UpdateSnapshot(s.snapshot)
		host, err := s.schedulePod(ctx, framework.NewCycleState(), pod)
		if err != nil {
			b.Fatal(err)
		}
		assumed := pod.DeepCopy()
		assumed.Spec.NodeName = host
		if err := s.cache.AssumePod(assumed); err != nil {
			b.Fatal(err)
		}
		pending = append(pending, assumed)
		if len(pending) > confirmLag {
			s.cache.AddPod(pending[0])
			pending = pending[1:]
		}
	}
}

func BenchmarkCycleBasic(b *testing.B)    { benchmarkCycles(b, 5000, false) }
func BenchmarkCycleAffinity(b *testing.B) { benchmarkCycles(b, 5000, true) }
func BenchmarkCycleSmall(b *testing.B)    { benchmarkCycles(b, 500, false) }
