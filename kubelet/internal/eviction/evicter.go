package eviction

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/pkg/client"
)

// Containers is what the evicter needs of the runtime
// (containerruntime's *Runtime).
type Containers interface {
	List(ctx context.Context, uid string) ([]containerruntime.ContainerInfo, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
}

// PodEvicter evicts through the pod manager's public surface: it kills
// the pod's containers with no grace, hands the pod manager a deletion of
// the pod (Forget: the pod manager's informer handler OnDelete), which
// tears the pod down (sandbox, network, volumes, its folder) without
// deleting the API object, waits for that, then writes the Failed status.
// The pod manager's next event for the pod finds it Failed and keeps it
// so, as it does a finished pod.
type PodEvicter struct {
	Client     *client.Client
	Containers Containers
	Forget     func(pod *corev1.Pod)
	// RootDir is the kubelet's root: pods/<uid> goes once the pod is torn down.
	RootDir string
	// Timeout bounds the wait for the tear-down (30 s, upstream's
	// podCleanupTimeout).
	Timeout time.Duration
	Logger  *zap.Logger
}

// Evict implements Evicter.
func (e *PodEvicter) Evict(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	logger := e.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	uid := string(pod.UID)
	e.Forget(pod)
	cs, err := e.Containers.List(ctx, uid)
	if err != nil {
		return fmt.Errorf("list the pod's containers: %w", err)
	}
	for _, c := range cs {
		if err := e.Containers.Stop(ctx, c.ID, 0); err != nil {
			logger.Warn("kill an evicted pod's container", zap.String("container", c.ID), zap.Error(err))
		}
	}
	// The pod manager tears the pod down; the wait polls for its folder to
	// go (an informer event in between may hand the pod back to its
	// worker: forget it again).
	dir := filepath.Join(e.RootDir, "pods", uid)
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			logger.Warn("the evicted pod was not torn down in time", zap.String("pod", pod.Namespace+"/"+pod.Name), zap.Duration("timeout", timeout))
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond): // polling the folder; the deadline decides
		}
		e.Forget(pod)
	}
	return e.writeStatus(ctx, pod, status)
}

func (e *PodEvicter) writeStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus) error {
	pods := client.For[*corev1.Pod](e.Client)
	var err error
	for range 5 {
		var cur *corev1.Pod
		cur, err = pods.Get(ctx, pod.Namespace, pod.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get pod: %w", err)
		}
		if cur.UID != pod.UID {
			return nil
		}
		cur.Status = status
		if _, err = pods.UpdateStatus(ctx, cur.Namespace, cur); err == nil || !apierrors.IsConflict(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write the evicted pod's status: %w", err)
	}
	return nil
}
