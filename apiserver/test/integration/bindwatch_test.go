package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/informer"
)

// A node's informer (field selector spec.nodeName) sees every pod bound to
// the node while pods are created and bound concurrently, as a kubelet
// watches the scheduler's bindings.
func TestNodeInformerSeesEveryBinding(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](env.Client)
	lw := informer.NewListWatch(env.NewClient(t), pods.GVR(), "", func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "n1").String()
	})
	inf := informer.NewSharedInformer(lw, &corev1.Pod{}, 0, nil)
	var mu sync.Mutex
	seen := map[string]bool{}
	inf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			mu.Lock()
			seen[obj.(*corev1.Pod).Name] = true
			mu.Unlock()
		},
		UpdateFunc: func(_, obj any) {
			mu.Lock()
			seen[obj.(*corev1.Pod).Name] = true
			mu.Unlock()
		},
	})
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	go inf.Run(ictx)
	if !informer.WaitForCacheSync(ctx, inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	writer := env.NewClient(t)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("b%03d", i)
			if _, err := client.For[*corev1.Pod](writer).Create(ctx, "default", pod(name)); err != nil {
				errs <- err
				return
			}
			b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
			if _, err := writer.CreateSubresource(ctx, pods.GVR(), "default", name, "binding", b, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
}
