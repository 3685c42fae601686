package app

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/node"
	"github.com/coxswain/coxswain/kubelet/internal/pods"
	"github.com/coxswain/coxswain/kubelet/internal/staticpods"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
)

// staticPods wires --pod-manifest-path: the manifests' source feeding the
// pod manager, and the mirror pods' reconciler (which also deletes the
// node's orphaned mirror pods when there is no manifest path).
type staticPods struct {
	source  *staticpods.Source
	mirrors *staticpods.Mirrors
}

// newStaticPods returns the mirror pods' reconciler; attach adds the
// source once the pod manager exists.
func newStaticPods(c *client.Client, nodeName string, nodePods func() []*corev1.Pod, podsSynced func() bool, logger *zap.Logger) *staticPods {
	sp := &staticPods{}
	sp.mirrors = staticpods.NewMirrors(staticpods.MirrorConfig{
		Client: c, NodeName: nodeName,
		Static:       sp.pods,
		StaticSynced: func() bool { return sp.source != nil && sp.source.Synced() },
		Pods:         nodePods, PodsSynced: podsSynced,
		Logger: logger.Named("mirrors"),
	})
	return sp
}

// pods returns the static pods.
func (sp *staticPods) pods() []*corev1.Pod {
	if sp.source == nil {
		return nil
	}
	return sp.source.Pods()
}

// attach reads the manifests once, handing their pods to pm, and makes
// the pod informer's mirror pod events reach the reconciler.
func (sp *staticPods) attach(o *Options, nodeName string, pm *pods.Manager, podInf informer.SharedInformer, logger *zap.Logger) error {
	sp.source = staticpods.NewSource(staticpods.Config{
		Path: o.PodManifestPath, NodeName: nodeName, Interval: o.FileCheckFrequency,
		Sink: pm, OnChange: sp.mirrors.Kick, Logger: logger.Named("static"),
	})
	sp.source.Sync()
	_, err := podInf.AddEventHandler(sp.mirrors.Handler())
	return err
}

// run runs the source and the reconciler under wg until ctx ends.
func (sp *staticPods) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { sp.source.Run(ctx) })
	wg.Go(func() { sp.mirrors.Run(ctx) })
}

// registerNode retries the node's registration with a capped back-off
// until it succeeds (true) or ctx ends (false): the apiserver may not
// answer yet, and the static pods run meanwhile.
func registerNode(ctx context.Context, nodes *node.Manager, name string, logger *zap.Logger) bool {
	backoff := time.Second
	for {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		if _, err := nodes.Register(ctx); err != nil {
			if ctx.Err() != nil {
				return false
			}
			logger.Warn("node registration failed; retrying", zap.String("node", name), zap.Duration("retryIn", backoff), zap.Error(err))
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		logger.Info("node registered", zap.String("node", name))
		return true
	}
}
