package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/pkg/client"
)

// watchPods lists the pods of ns, then watches them, calling on for each
// (listed pods as Added), and relists when the watch ends, until ctx is
// done.
func watchPods(ctx context.Context, c *client.Client, ns string, on func(watch.EventType, *corev1.Pod)) {
	pods := client.For[*corev1.Pod](c)
	for ctx.Err() == nil {
		items, lm, err := pods.List(ctx, ns, metav1.ListOptions{})
		if err != nil {
			waitOrDone(ctx, 200*time.Millisecond)
			continue
		}
		for _, p := range items {
			on(watch.Added, p)
		}
		w, err := pods.Watch(ctx, ns, metav1.ListOptions{ResourceVersion: lm.ResourceVersion})
		if err != nil {
			waitOrDone(ctx, 200*time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				on(ev.Type, p)
			}
		}
		w.Stop()
	}
}

func waitOrDone(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setReady writes pod's status as running with the Ready condition ready
// (a kubelet's work), re-reading it on a conflict.
func setReady(ctx context.Context, c *client.Client, p *corev1.Pod, ready bool, ip string) error {
	pods := client.For[*corev1.Pod](c)
	for attempt := 0; ; attempt++ {
		cp := p.DeepCopy()
		now := metav1.Now()
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		cp.Status.Phase = corev1.PodRunning
		if cp.Status.StartTime == nil {
			cp.Status.StartTime = &now
		}
		if ip != "" {
			cp.Status.PodIP = ip
			cp.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		}
		cp.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: st, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: st, LastTransitionTime: now},
		}
		_, err := pods.UpdateStatus(ctx, cp.Namespace, cp)
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return fmt.Errorf("status of pod %s: %w", p.Name, err)
		}
		if p, err = pods.Get(ctx, cp.Namespace, cp.Name); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	}
}

// fakeKubelet marks every pod of ns that is not ready yet as running and
// ready, from workers goroutines, until stopped.
type fakeKubelet struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func startFakeKubelet(ctx context.Context, clients []*client.Client, ns string, workers int) *fakeKubelet {
	ctx, cancel := context.WithCancel(ctx)
	k := &fakeKubelet{cancel: cancel}
	work := make(chan *corev1.Pod, 4096)
	var inflight sync.Map
	k.wg.Go(func() {
		defer close(work)
		watchPods(ctx, clients[0], ns, func(t watch.EventType, p *corev1.Pod) {
			if t == watch.Deleted || p.DeletionTimestamp != nil || podReady(p) {
				return
			}
			if _, busy := inflight.LoadOrStore(p.Name, true); busy {
				return
			}
			select {
			case work <- p:
			case <-ctx.Done():
			}
		})
	})
	for w := range workers {
		c := clients[w%len(clients)]
		k.wg.Go(func() {
			for p := range work {
				if err := setReady(ctx, c, p, true, ""); err != nil && ctx.Err() == nil {
					k.mu.Lock()
					k.err = errors.Join(k.err, err)
					k.mu.Unlock()
				}
				inflight.Delete(p.Name)
			}
		})
	}
	return k
}

// stop ends the fake kubelet and returns its errors.
func (k *fakeKubelet) stop() error {
	k.cancel()
	k.wg.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}
