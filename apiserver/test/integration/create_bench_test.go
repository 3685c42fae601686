package integration

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

func benchPod(name string) *corev1.Pod {
	p := pod(name)
	p.Labels = map[string]string{"app": "bench", "tier": "backend", "release": "stable"}
	p.Annotations = map[string]string{"example.com/owner": "team-a", "example.com/purpose": "create benchmark"}
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "two"}}
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
	return p
}

// BenchmarkCreatePod measures creates of a typical pod through the gRPC API
// with an in-process apiserver and etcd (for profiling; make bench has the
// side-by-side figures).
func BenchmarkCreatePod(b *testing.B) {
	env := harness.Start(b)
	clients := make([]*client.Typed[*corev1.Pod], 4)
	for i := range clients {
		clients[i] = client.For[*corev1.Pod](env.NewClient(b))
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := n.Add(1)
		c := clients[int(i)%len(clients)]
		for pb.Next() {
			name := fmt.Sprintf("p-%d", n.Add(1))
			if _, err := c.Create(context.Background(), "default", benchPod(name)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	_ = metav1.Now
}
