// Package pods runs the node's pods: one worker per pod drives its sandbox
// and containers through containerd and CNI and writes the pod's status.
package pods

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/logs"
	"github.com/coxswain/coxswain/kubelet/internal/network"
	"github.com/coxswain/coxswain/kubelet/internal/prober"
	"github.com/coxswain/coxswain/kubelet/internal/volume"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
)

// Config configures the pod manager.
type Config struct {
	NodeName string
	NodeIP   string
	RootDir  string // pods' files and network namespaces
	LogDir   string // /var/log/pods
	// LogRotation bounds each container's log file.
	LogRotation   logs.Rotation
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
	// ListPods returns the pods bound to the node (the informer's cache)
	// and PodsSynced says whether that cache is complete: the pods on the
	// node that are not among them are orphans, torn down and removed.
	// Nil: no orphan cleanup.
	ListPods   func() []*corev1.Pod
	PodsSynced func() bool
	// HousekeepingInterval is how often orphans are looked for (10 s).
	HousekeepingInterval time.Duration
	// CgroupRoot is the cgroup (cgroupfs path) under which the pods'
	// cgroups are made, upstream's --cgroup-root: <root>/kubepods/...
	// ("/" when empty).
	CgroupRoot string
	// StaticPodStatus receives the status of static pods (IsStatic), which
	// have no object in the apiserver to write it to: the mirror pods'
	// status comes from it. It must not block. Nil: dropped.
	StaticPodStatus func(pod *corev1.Pod, status corev1.PodStatus)
	// MemoryCapacity is the node's memory, for the containers'
	// oom_score_adj; 0: the machine's.
	MemoryCapacity int64
	// MaxDeadPerContainer is how many dead instances of each container
	// are kept (with their logs), upstream's
	// --maximum-dead-containers-per-container: 0 means the default, 1;
	// negative, no limit.
	MaxDeadPerContainer int
	Logger              *zap.Logger
}

// Manager dispatches pod events to per-pod workers.
type Manager struct {
	cfg    Config
	c      *client.Client
	rt     *containerruntime.Runtime
	net    *network.Manager
	vol    *volume.Manager
	logger *zap.Logger
	// hookClient sends the lifecycle hooks' HTTP requests.
	hookClient     *http.Client
	memoryCapacity int64
	events         chan *podEvent
	mu             sync.Mutex
	workers        map[types.UID]*worker
	wg             sync.WaitGroup
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
	if cfg.HousekeepingInterval == 0 {
		cfg.HousekeepingInterval = 10 * time.Second
	}
	if cfg.MaxDeadPerContainer == 0 {
		cfg.MaxDeadPerContainer = 1
	}
	if cfg.MemoryCapacity == 0 {
		cfg.MemoryCapacity = machineMemory()
	}
	m := &Manager{
		cfg: cfg, c: c, rt: rt, net: nm, logger: cfg.Logger, hookClient: newHookClient(), memoryCapacity: cfg.MemoryCapacity,
		events: make(chan *podEvent, 4096), workers: map[types.UID]*worker{},
	}
	var rec volume.Recorder
	if cfg.Recorder != nil {
		rec = cfg.Recorder
	}
	m.vol = volume.New(volume.Config{
		RootDir: cfg.RootDir, Client: c, OnChange: m.volumesChanged, Recorder: rec, Logger: cfg.Logger.Named("volumes"),
	})
	return m
}

// volumesChanged tells the pod's worker that a ConfigMap or Secret its
// volumes hold changed.
func (m *Manager) volumesChanged(uid types.UID) {
	m.mu.Lock()
	w, ok := m.workers[uid]
	m.mu.Unlock()
	if ok {
		w.volumesChanged()
	}
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
	defer func() {
		m.wg.Wait()
		if m.vol != nil {
			m.vol.Wait()
		}
	}()
	housekeeping := time.NewTicker(min(time.Second, m.cfg.HousekeepingInterval))
	defer housekeeping.Stop()
	cleanedOnce := false
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
				w = m.startWorker(ctx, ev.uid, ev.pod)
			}
			m.mu.Unlock()
			w.update(ev.pod)
		case <-housekeeping.C:
			if m.cfg.ListPods == nil || m.cfg.PodsSynced == nil || !m.cfg.PodsSynced() {
				continue
			}
			// The first pass, once the cache is complete, also asks
			// containerd: a kubelet that was down missed the deletions.
			m.cleanupOrphans(ctx, !cleanedOnce)
			if !cleanedOnce {
				cleanedOnce = true
				housekeeping.Reset(m.cfg.HousekeepingInterval)
			}
		}
	}
}

// startWorker runs a worker for uid (pod nil: an orphan to remove); m.mu
// is held.
func (m *Manager) startWorker(ctx context.Context, uid types.UID, pod *corev1.Pod) *worker {
	w := newWorker(m, uid, pod)
	w.logger.Debug("pod worker started")
	m.workers[uid] = w
	m.wg.Go(func() {
		w.run(ctx)
		m.mu.Lock()
		delete(m.workers, w.uid)
		m.mu.Unlock()
	})
	return w
}

// cleanupOrphans starts a worker tearing down each pod the node still has
// (a directory under the root, and with fromRuntime containers) that is
// not bound to it any more and has no worker: deleted while the kubelet
// was down, or left by a kubelet that stopped half way.
func (m *Manager) cleanupOrphans(ctx context.Context, fromRuntime bool) {
	known := map[types.UID]bool{}
	for _, p := range m.cfg.ListPods() {
		known[p.UID] = true
	}
	candidates, err := m.vol.PodDirs()
	if err != nil {
		m.logger.Warn("list pod directories", zap.Error(err))
	}
	if fromRuntime {
		cs, err := m.rt.List(ctx, "")
		if err != nil {
			m.logger.Warn("list containers", zap.Error(err))
		}
		for _, c := range cs {
			if uid := c.Labels[containerruntime.LabelPodUID]; uid != "" {
				candidates = append(candidates, types.UID(uid))
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, uid := range candidates {
		if known[uid] || m.workers[uid] != nil {
			continue
		}
		m.logger.Info("cleaning up orphaned pod", zap.String("uid", string(uid)))
		m.startWorker(ctx, uid, nil).kick()
	}
}

// Len is the number of pods with a worker.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}
