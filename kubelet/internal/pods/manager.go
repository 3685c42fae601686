// Package pods runs the node's pods: one worker per pod drives its sandbox
// and containers through containerd and CNI and writes the pod's status.
package pods

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/network"
	"github.com/coxswain/coxswain/kubelet/internal/prober"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
)

// Config configures the pod manager.
type Config struct {
	NodeName      string
	NodeIP        string
	RootDir       string // pods' files and network namespaces
	LogDir        string // /var/log/pods
	PodInfraImage string
	ClusterDNS    []string
	ClusterDomain string
	// PodCIDR returns the node's pod range for the default CNI config.
	PodCIDR func(ctx context.Context) string
	// BackoffBase and BackoffMax bound the restart back-off (10 s, 5 min).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Prober runs the containers' probes; nil: probes are ignored and
	// running containers are ready.
	Prober *prober.Manager
	// Recorder records the pods' Events; nil: none.
	Recorder prober.Recorder
	Logger   *zap.Logger
}

// Manager dispatches pod events to per-pod workers.
type Manager struct {
	cfg     Config
	c       *client.Client
	rt      *containerruntime.Runtime
	net     *network.Manager
	logger  *zap.Logger
	events  chan *podEvent
	mu      sync.Mutex
	workers map[types.UID]*worker
	wg      sync.WaitGroup
}

type podEvent struct {
	uid types.UID
	pod *corev1.Pod // nil: deleted
}

// New returns a pod manager.
func New(c *client.Client, rt *containerruntime.Runtime, nm *network.Manager, cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = 10 * time.Second
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	return &Manager{cfg: cfg, c: c, rt: rt, net: nm, logger: cfg.Logger, events: make(chan *podEvent, 4096), workers: map[types.UID]*worker{}}
}

// Handler is the informer handler feeding the manager.
func (m *Manager) Handler() informer.ResourceEventHandler {
	return informer.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.observe(obj, false) },
		UpdateFunc: func(_, obj any) { m.observe(obj, false) },
		DeleteFunc: func(obj any) { m.observe(obj, true) },
	}
}

func (m *Manager) observe(obj any, deleted bool) {
	if t, ok := obj.(informer.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ev := &podEvent{uid: pod.UID, pod: pod}
	if deleted {
		ev.pod = nil
	}
	m.events <- ev
}

// Run dispatches events until ctx ends, then waits for the workers. Running
// containers are left as they are.
func (m *Manager) Run(ctx context.Context) {
	defer m.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-m.events:
			m.mu.Lock()
			w, ok := m.workers[ev.uid]
			if !ok {
				if ev.pod == nil {
					m.mu.Unlock()
					continue
				}
				w = newWorker(m, ev.pod)
				m.workers[ev.uid] = w
				m.wg.Go(func() {
					w.run(ctx)
					m.mu.Lock()
					delete(m.workers, w.uid)
					m.mu.Unlock()
				})
			}
			m.mu.Unlock()
			w.update(ev.pod)
		}
	}
}

// Len is the number of pods with a worker.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}
