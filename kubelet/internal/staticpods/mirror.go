package staticpods

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
)

// MirrorConfig configures the mirror pods' reconciler.
type MirrorConfig struct {
	Client   *client.Client
	NodeName string
	// Static returns the static pods and StaticSynced whether their
	// manifests were read once (before that no mirror is an orphan).
	Static       func() []*corev1.Pod
	StaticSynced func() bool
	// Pods returns the pods bound to the node (the kubelet's informer
	// cache) and PodsSynced whether that cache is complete.
	Pods       func() []*corev1.Pod
	PodsSynced func() bool
	// Interval is how often everything is looked at again (10 s).
	Interval time.Duration
	Logger   *zap.Logger
}

// Mirrors keeps a mirror pod in the apiserver for each static pod, as
// upstream's kubelet: created (owned by the Node) once the apiserver
// answers and the node is registered, re-created when deleted through the
// API or when its hash is stale, deleted once its static pod is gone,
// with the static pod's status. The static pod itself never depends on
// its mirror.
type Mirrors struct {
	cfg    MirrorConfig
	logger *zap.Logger
	kickCh chan struct{}

	mu sync.Mutex
	// status is the latest status of each static pod (by its UID).
	status map[types.UID]corev1.PodStatus
	// written is the status last written to a mirror (by the mirror's
	// UID), so that a status the apiserver normalises is not written on
	// every pass.
	written map[types.UID]corev1.PodStatus
}

// NewMirrors returns the reconciler; Run runs it.
func NewMirrors(cfg MirrorConfig) *Mirrors {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	return &Mirrors{
		cfg: cfg, logger: cfg.Logger, kickCh: make(chan struct{}, 1),
		status: map[types.UID]corev1.PodStatus{}, written: map[types.UID]corev1.PodStatus{},
	}
}

// Kick makes the reconciler look again soon; it never blocks.
func (m *Mirrors) Kick() {
	select {
	case m.kickCh <- struct{}{}:
	default:
	}
}

// SetStatus records a static pod's status for its mirror (the pod
// manager's StaticPodStatus); it never blocks.
func (m *Mirrors) SetStatus(pod *corev1.Pod, st corev1.PodStatus) {
	m.mu.Lock()
	m.status[pod.UID] = st
	m.mu.Unlock()
	m.Kick()
}

// Handler kicks the reconciler on every event of a mirror pod (one
// deleted through the API is re-created at once).
func (m *Mirrors) Handler() informer.ResourceEventHandler {
	kick := func(obj any) {
		if t, ok := obj.(informer.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok && IsMirror(p) {
			m.Kick()
		}
	}
	return informer.ResourceEventHandlerFuncs{
		AddFunc:    kick,
		UpdateFunc: func(_, obj any) { kick(obj) },
		DeleteFunc: kick,
	}
}

// Run reconciles until ctx ends: on kicks, every Interval, and with a
// back-off after failures (the apiserver may not answer yet).
func (m *Mirrors) Run(ctx context.Context) {
	const minBackoff, maxBackoff = 500 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kickCh:
		case <-timer.C:
		}
		next := m.cfg.Interval
		if err := m.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.logger.Debug("mirror pods not in sync yet", zap.Error(err))
			next = backoff
			backoff = min(2*backoff, maxBackoff)
		} else {
			backoff = minBackoff
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// Sync makes one pass: every static pod's mirror created, replaced or
// given the static pod's status, and the mirrors of gone static pods
// deleted.
func (m *Mirrors) Sync(ctx context.Context) error {
	if !m.cfg.StaticSynced() {
		return errors.New("the manifests were not read yet")
	}
	if !m.cfg.PodsSynced() {
		return errors.New("the node's pods are not listed yet")
	}
	static := m.cfg.Static()
	mirrors := map[string]*corev1.Pod{}
	others := map[string]bool{}
	for _, p := range m.cfg.Pods() {
		if IsMirror(p) {
			mirrors[p.Namespace+"/"+p.Name] = p
		} else {
			others[p.Namespace+"/"+p.Name] = true
		}
	}
	m.mu.Lock()
	live := map[types.UID]bool{}
	for _, p := range static {
		live[p.UID] = true
	}
	for uid := range m.status {
		if !live[uid] {
			delete(m.status, uid)
		}
	}
	m.mu.Unlock()

	var errs []error
	var node *corev1.Node
	current := map[types.UID]bool{} // the mirrors of this pass
	for _, sp := range static {
		key := sp.Namespace + "/" + sp.Name
		mirror := mirrors[key]
		delete(mirrors, key)
		if mirror == nil && others[key] {
			// An API pod of that name is bound to the node: upstream
			// leaves it, and the mirror waits for the name.
			errs = append(errs, fmt.Errorf("mirror pod %s: a pod that is not a mirror has the name", key))
			continue
		}
		if mirror != nil && (mirror.DeletionTimestamp != nil || mirror.Annotations[ConfigMirrorAnnotation] != sp.Annotations[ConfigHashAnnotation]) {
			// Deleted through the API, or the mirror of an older version
			// of the static pod: it goes now, a new one comes.
			if err := m.deleteMirror(ctx, mirror); err != nil {
				errs = append(errs, err)
				continue
			}
			mirror = nil
		}
		if mirror == nil {
			if node == nil {
				n, err := client.For[*corev1.Node](m.cfg.Client).Get(ctx, "", m.cfg.NodeName)
				if err != nil {
					return errors.Join(append(errs, fmt.Errorf("get node %s for the mirror pods' owner: %w", m.cfg.NodeName, err))...)
				}
				node = n
			}
			created, err := m.createMirror(ctx, sp, node)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			mirror = created
		}
		current[mirror.UID] = true
		if err := m.updateStatus(ctx, sp, mirror); err != nil {
			errs = append(errs, err)
		}
	}
	m.mu.Lock()
	for uid := range m.written {
		if !current[uid] {
			delete(m.written, uid)
		}
	}
	m.mu.Unlock()
	// Mirrors without a static pod: their manifest went while the
	// kubelet was down, or the kubelet lost the deletion.
	for _, orphan := range mirrors {
		if err := m.deleteMirror(ctx, orphan); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Mirrors) createMirror(ctx context.Context, static *corev1.Pod, node *corev1.Node) (*corev1.Pod, error) {
	pods := client.For[*corev1.Pod](m.cfg.Client)
	created, err := pods.Create(ctx, static.Namespace, MirrorOf(static, node))
	if apierrors.IsAlreadyExists(err) {
		// Made by an earlier pass the cache has not seen yet.
		cur, gerr := pods.Get(ctx, static.Namespace, static.Name)
		if gerr != nil {
			return nil, fmt.Errorf("get mirror pod %s/%s: %w", static.Namespace, static.Name, gerr)
		}
		if !IsMirror(cur) || cur.Annotations[ConfigMirrorAnnotation] != static.Annotations[ConfigHashAnnotation] || cur.DeletionTimestamp != nil {
			return nil, fmt.Errorf("create mirror pod %s/%s: a stale pod of that name is being replaced", static.Namespace, static.Name)
		}
		return cur, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create mirror pod %s/%s: %w", static.Namespace, static.Name, err)
	}
	m.logger.Info("mirror pod created", zap.String("pod", static.Namespace+"/"+static.Name), zap.String("uid", string(created.UID)))
	return created, nil
}

// deleteMirror deletes a mirror pod at once (grace 0, only that UID).
func (m *Mirrors) deleteMirror(ctx context.Context, mirror *corev1.Pod) error {
	zero := int64(0)
	uid := mirror.UID
	_, err := client.For[*corev1.Pod](m.cfg.Client).Delete(ctx, mirror.Namespace, mirror.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete mirror pod %s/%s: %w", mirror.Namespace, mirror.Name, err)
	}
	m.mu.Lock()
	delete(m.written, uid)
	m.mu.Unlock()
	m.logger.Info("mirror pod deleted", zap.String("pod", mirror.Namespace+"/"+mirror.Name), zap.String("uid", string(uid)))
	return nil
}

// updateStatus writes the static pod's status to its mirror when the
// mirror does not have it.
func (m *Mirrors) updateStatus(ctx context.Context, static, mirror *corev1.Pod) error {
	m.mu.Lock()
	st, ok := m.status[static.UID]
	last, wrote := m.written[mirror.UID]
	m.mu.Unlock()
	if !ok || equality.Semantic.DeepEqual(mirror.Status, st) || (wrote && equality.Semantic.DeepEqual(last, st)) {
		return nil
	}
	p := mirror.DeepCopy()
	p.Status = *st.DeepCopy()
	if _, err := client.For[*corev1.Pod](m.cfg.Client).UpdateStatus(ctx, p.Namespace, p); err != nil {
		// A conflict means the cache is behind: the next pass retries.
		return fmt.Errorf("update status of mirror pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	m.mu.Lock()
	m.written[mirror.UID] = st
	m.mu.Unlock()
	return nil
}

// WithoutMirrors passes on the events of every pod but mirror pods: the
// kubelet runs a static pod from its manifest, never from its mirror.
func WithoutMirrors(h informer.ResourceEventHandler) informer.ResourceEventHandler {
	isMirror := func(obj any) bool {
		if t, ok := obj.(informer.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		p, ok := obj.(*corev1.Pod)
		return ok && IsMirror(p)
	}
	return informer.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if !isMirror(obj) {
				h.OnAdd(obj, false)
			}
		},
		UpdateFunc: func(old, obj any) {
			if !isMirror(obj) {
				h.OnUpdate(old, obj)
			}
		},
		DeleteFunc: func(obj any) {
			if !isMirror(obj) {
				h.OnDelete(obj)
			}
		},
	}
}
