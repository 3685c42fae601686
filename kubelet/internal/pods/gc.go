package pods

import (
	"context"
	"errors"
	"os"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/logs"
)

// deadContainer is an earlier instance of a container, kept dead.
type deadContainer struct {
	id      string
	restart int32
}

// collectDead removes the oldest dead instances of the container beyond
// keep (negative: no limit), with their log and termination message
// files, as upstream's container garbage collector with
// --maximum-dead-containers-per-container. An instance that cannot be
// removed stays listed, to be tried again.
func (w *worker) collectDead(ctx context.Context, pod *corev1.Pod, name string, cs *containerState, keep int) {
	if keep < 0 || len(cs.dead) <= keep || w.m.rt == nil {
		return
	}
	evict := cs.dead[:len(cs.dead)-keep]
	var kept []deadContainer
	for _, d := range evict {
		if err := w.m.rt.Remove(ctx, d.id); err != nil {
			w.logger.Warn("remove dead container", zap.String("container", name), zap.String("id", d.id), zap.Error(err))
			kept = append(kept, d)
			continue
		}
		for _, p := range []string{
			logs.ContainerPath(w.m.cfg.LogDir, pod.Namespace, pod.Name, string(pod.UID), name, int(d.restart)),
			w.terminationFile(name, d.restart),
		} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				w.logger.Warn("remove dead container's file", zap.String("path", p), zap.Error(err))
			}
		}
		w.logger.Debug("removed dead container", zap.String("container", name), zap.String("id", d.id))
	}
	cs.dead = append(kept, cs.dead[len(cs.dead)-keep:]...)
}
