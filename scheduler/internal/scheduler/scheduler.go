// Package scheduler is kube-scheduler's core: it watches nodes and pods,
// keeps the cache and the queue, and runs the scheduling loop: pop a pod,
// filter and score nodes with the profile's plugins, assume the pod on the
// chosen node and bind it asynchronously.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/events"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins"
	"github.com/coxswain/coxswain/scheduler/internal/queue"
)

// Options configure a Scheduler.
type Options struct {
	// Config is the defaulted, validated configuration.
	Config *config.Configuration
	Logger *zap.Logger
	// Metrics receives the scheduler's metrics (nil: not registered).
	Metrics prometheus.Registerer
	// Clock drives the queue's back-off (nil: the wall clock).
	Clock queue.Clock
}

// Scheduler schedules the pods of one profile.
type Scheduler struct {
	client        *client.Client
	pods          *client.Typed[*corev1.Pod]
	schedulerName string
	logger        *zap.Logger

	cache    *cache.Cache
	queue    *queue.Queue
	fwk      *framework.Framework
	recorder *events.Recorder
	metrics  *metrics

	// Used by the scheduling goroutine only.
	snapshot                 *cache.Snapshot
	nextStartNodeIndex       int
	percentageOfNodesToScore int32
	// feasibleBuf and statusBuf are findNodesThatFitPod's buffers.
	feasibleBuf []*framework.NodeInfo
	statusBuf   []*framework.Status
	// scoreBuf holds prioritizeNodes' totals.
	scoreBuf []framework.NodeScore
	rand     *rand.Rand

	handle     *handle
	priorities *priorityResolver
	podLister  *informer.Lister[*corev1.Pod]
	synced     atomic.Bool
	// async tracks binding and status-update goroutines.
	async sync.WaitGroup
}

// New builds a scheduler over c.
func New(c *client.Client, o Options) (*Scheduler, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = config.Default()
	}
	logger := o.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	profile := cfg.Profiles[0]
	h := &handle{snapshot: cache.NewSnapshot(), parallel: framework.NewParallelizer(cfg.Parallelism)}
	fwk, err := NewFramework(profile, plugins.NewInTreeRegistry(), cfg.Parallelism, h)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", profile.SchedulerName, err)
	}
	pct := int32(0)
	if cfg.PercentageOfNodesToScore != nil {
		pct = *cfg.PercentageOfNodesToScore
	}
	if profile.PercentageOfNodesToScore != nil {
		pct = *profile.PercentageOfNodesToScore
	}
	host, _ := os.Hostname()
	s := &Scheduler{
		client:        c,
		pods:          client.For[*corev1.Pod](c),
		schedulerName: profile.SchedulerName,
		logger:        logger,
		cache:         cache.New(logger.Named("cache")),
		queue: queue.New(queue.Options{
			Clock:          o.Clock,
			InitialBackoff: time.Duration(cfg.PodInitialBackoffSeconds) * time.Second,
			MaxBackoff:     time.Duration(cfg.PodMaxBackoffSeconds) * time.Second,
		}),
		fwk:                      fwk,
		recorder:                 events.NewRecorder(c, profile.SchedulerName, host, logger.Named("events")),
		snapshot:                 h.snapshot,
		handle:                   h,
		priorities:               &priorityResolver{},
		percentageOfNodesToScore: pct,
		rand:                     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	if s.metrics, err = newMetrics(o.Metrics, s.queue.Lens); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return s, nil
}

// Ready says whether the informers have synced and scheduling has begun.
func (s *Scheduler) Ready() bool { return s.synced.Load() }

// Cache returns the scheduler's cache (for tests).
func (s *Scheduler) Cache() *cache.Cache { return s.cache }

// Queue returns the scheduler's queue (for tests).
func (s *Scheduler) Queue() *queue.Queue { return s.queue }

// Run watches, schedules until ctx is done, and returns once every
// goroutine it started has stopped.
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nodeFactory := informer.NewFactory(s.client, 0, informer.WithLogger(s.logger.Named("informer")))
	podFactory := informer.NewFilteredFactory(s.client, 0, "", func(o *metav1.ListOptions) {
		o.FieldSelector = "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)
	}, informer.WithLogger(s.logger.Named("informer")))
	nodeInf, _ := informer.ForType[*corev1.Node](nodeFactory)
	podInf, podLister := informer.ForType[*corev1.Pod](podFactory)
	s.podLister = podLister
	// The objects plugins read: namespaces (affinity namespaceSelector),
	// Services and controllers (default topology spreading).
	nsInf, nsLister := informer.ForType[*corev1.Namespace](nodeFactory)
	svcInf, svcLister := informer.ForType[*corev1.Service](nodeFactory)
	rcInf, rcLister := informer.ForType[*corev1.ReplicationController](nodeFactory)
	rsInf, rsLister := informer.ForType[*appsv1.ReplicaSet](nodeFactory)
	ssInf, ssLister := informer.ForType[*appsv1.StatefulSet](nodeFactory)
	pcInf, pcLister := informer.ForType[*schedulingv1.PriorityClass](nodeFactory)
	s.priorities.classes = pcLister
	s.handle.objects = &objectLister{namespaces: nsLister, services: svcLister, rcs: rcLister, replicaSets: rsLister, statefulSets: ssLister}

	regs, err := s.addEventHandlers(nodeInf, podInf)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer podFactory.Wait()
	defer nodeFactory.Wait()
	defer cancel()
	nodeFactory.Start(ctx)
	podFactory.Start(ctx)
	wg.Go(func() { s.recorder.Run(ctx) })
	wg.Go(func() { s.queue.Run(ctx) })

	synced := []func() bool{nodeInf.HasSynced, podInf.HasSynced, nsInf.HasSynced, svcInf.HasSynced, rcInf.HasSynced, rsInf.HasSynced, ssInf.HasSynced, pcInf.HasSynced}
	for _, r := range regs {
		synced = append(synced, r.HasSynced)
	}
	if !informer.WaitForCacheSync(ctx, synced...) {
		return nil // ctx done
	}
	s.synced.Store(true)
	s.logger.Info("caches synced, scheduling", zap.String("schedulerName", s.schedulerName))
	for ctx.Err() == nil {
		s.scheduleOne(ctx)
	}
	s.async.Wait()
	return nil
}

func assigned(pod *corev1.Pod) bool { return pod.Spec.NodeName != "" }

func podOf(obj any) (*corev1.Pod, bool) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return o, true
	case informer.DeletedFinalStateUnknown:
		p, ok := o.Obj.(*corev1.Pod)
		return p, ok
	case *informer.DeletedFinalStateUnknown:
		p, ok := o.Obj.(*corev1.Pod)
		return p, ok
	}
	return nil, false
}

func nodeOf(obj any) (*corev1.Node, bool) {
	switch o := obj.(type) {
	case *corev1.Node:
		return o, true
	case informer.DeletedFinalStateUnknown:
		n, ok := o.Obj.(*corev1.Node)
		return n, ok
	case *informer.DeletedFinalStateUnknown:
		n, ok := o.Obj.(*corev1.Node)
		return n, ok
	}
	return nil, false
}

// addEventHandlers routes informer events: nodes and bound pods to the
// cache, unbound pods of this scheduler to the queue; changes that may
// make room retry the unschedulable pods.
func (s *Scheduler) addEventHandlers(nodeInf, podInf informer.SharedInformer) ([]informer.Registration, error) {
	nodeReg, err := nodeInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := nodeOf(obj); ok {
				s.cache.AddNode(n)
				s.queue.MoveAllToActiveOrBackoffQueue()
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := nodeOf(oldObj)
			n, ok2 := nodeOf(newObj)
			if !ok1 || !ok2 {
				return
			}
			s.cache.UpdateNode(o, n)
			if nodeSchedulingPropertiesChanged(o, n) {
				s.queue.MoveAllToActiveOrBackoffQueue()
			}
		},
		DeleteFunc: func(obj any) {
			if n, ok := nodeOf(obj); ok {
				s.cache.RemoveNode(n)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("node event handler: %w", err)
	}
	boundReg, err := podInf.AddEventHandler(informer.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := podOf(obj)
			return ok && assigned(p)
		},
		Handler: informer.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if p, ok := podOf(obj); ok {
					s.cache.AddPod(p)
					// A new pod may satisfy a parked pod's affinity.
					s.queue.MoveAllToActiveOrBackoffQueue()
				}
			},
			UpdateFunc: func(oldObj, newObj any) {
				o, ok1 := podOf(oldObj)
				n, ok2 := podOf(newObj)
				if ok1 && ok2 {
					s.cache.UpdatePod(o, n)
				}
			},
			DeleteFunc: func(obj any) {
				if p, ok := podOf(obj); ok {
					s.cache.RemovePod(p)
					s.queue.MoveAllToActiveOrBackoffQueue()
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pod event handler: %w", err)
	}
	pendingReg, err := podInf.AddEventHandler(informer.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := podOf(obj)
			return ok && !assigned(p) && p.Spec.SchedulerName == s.schedulerName
		},
		Handler: informer.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if p, ok := podOf(obj); ok {
					s.queue.Add(s.priorities.withPriority(p))
				}
			},
			UpdateFunc: func(oldObj, newObj any) {
				o, ok1 := podOf(oldObj)
				n, ok2 := podOf(newObj)
				if ok1 && ok2 {
					s.queue.Update(o, s.priorities.withPriority(n))
				}
			},
			DeleteFunc: func(obj any) {
				if p, ok := podOf(obj); ok {
					s.queue.Delete(p)
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pod event handler: %w", err)
	}
	return []informer.Registration{nodeReg, boundReg, pendingReg}, nil
}

// nodeSchedulingPropertiesChanged says whether an update may let a parked
// pod fit: allocatable, labels, taints, unschedulable or condition
// statuses changed (heartbeats alone do not count).
func nodeSchedulingPropertiesChanged(o, n *corev1.Node) bool {
	if o.Spec.Unschedulable != n.Spec.Unschedulable {
		return true
	}
	if !equality.Semantic.DeepEqual(o.Status.Allocatable, n.Status.Allocatable) ||
		!equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
		!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) {
		return true
	}
	conds := func(node *corev1.Node) map[corev1.NodeConditionType]corev1.ConditionStatus {
		m := make(map[corev1.NodeConditionType]corev1.ConditionStatus, len(node.Status.Conditions))
		for _, c := range node.Status.Conditions {
			m[c.Type] = c.Status
		}
		return m
	}
	return !equality.Semantic.DeepEqual(conds(o), conds(n))
}

// scheduleOne schedules the next pod of the queue.
func (s *Scheduler) scheduleOne(ctx context.Context) {
	qp := s.queue.Pop(ctx)
	if qp == nil {
		return
	}
	pod := qp.Pod
	cycle := s.queue.SchedulingCycle()
	if pod.DeletionTimestamp != nil || s.cache.IsAssumedPod(pod) {
		return
	}
	logger := s.logger.With(zap.String("pod", pod.Namespace+"/"+pod.Name))
	start := time.Now()
	s.cache.UpdateSnapshot(s.snapshot)
	state := framework.NewCycleState()
	host, err := s.schedulePod(ctx, state, pod)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		result := "error"
		if isUnschedulable(err) {
			result = "unschedulable"
			logger.Debug("pod is unschedulable", zap.String("reason", err.Error()))
		} else {
			logger.Error("failed to schedule pod", zap.Error(err))
		}
		s.metrics.attempts.WithLabelValues(result, s.schedulerName).Inc()
		s.metrics.duration.WithLabelValues(result, s.schedulerName).Observe(time.Since(start).Seconds())
		nominated := ""
		var fe *FitError
		if errors.As(err, &fe) {
			var perr error
			if nominated, perr = s.preempt(ctx, state, pod, fe, logger); perr != nil {
				logger.Error("preemption failed", zap.Error(perr))
			}
		}
		s.handleFailure(ctx, qp, err, cycle, nominated)
		return
	}
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = host
	if err := s.cache.AssumePod(assumed); err != nil {
		logger.Error("failed to assume pod", zap.Error(err))
		s.metrics.attempts.WithLabelValues("error", s.schedulerName).Inc()
		s.handleFailure(ctx, qp, err, cycle, "")
		return
	}
	s.metrics.attempts.WithLabelValues("scheduled", s.schedulerName).Inc()
	s.metrics.duration.WithLabelValues("scheduled", s.schedulerName).Observe(time.Since(start).Seconds())
	s.async.Go(func() { s.bind(ctx, qp, assumed, cycle, logger) })
}

func isUnschedulable(err error) bool {
	var fe *FitError
	return errors.As(err, &fe) || errors.Is(err, ErrNoNodesAvailable)
}

// bind writes pods/binding; on failure the assumption is forgotten and the
// pod retried.
func (s *Scheduler) bind(ctx context.Context, qp *queue.QueuedPodInfo, assumed *corev1.Pod, cycle int64, logger *zap.Logger) {
	start := time.Now()
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: assumed.Namespace, Name: assumed.Name, UID: assumed.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: assumed.Spec.NodeName},
	}
	_, err := s.client.CreateSubresource(ctx, s.pods.GVR(), assumed.Namespace, assumed.Name, "binding", b, metav1.CreateOptions{})
	if err != nil {
		s.metrics.bindings.WithLabelValues("error").Observe(time.Since(start).Seconds())
		if ferr := s.cache.ForgetPod(assumed); ferr != nil {
			logger.Error("failed to forget assumed pod", zap.Error(ferr))
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("failed to bind pod", zap.String("node", assumed.Spec.NodeName), zap.Error(err))
		// The forgotten pod's room may fit another pod.
		s.queue.MoveAllToActiveOrBackoffQueue()
		s.handleFailure(ctx, qp, fmt.Errorf("binding rejected: %w", err), cycle, "")
		return
	}
	s.metrics.bindings.WithLabelValues("ok").Observe(time.Since(start).Seconds())
	logger.Debug("bound pod", zap.String("node", assumed.Spec.NodeName))
	s.recorder.Eventf(assumed, corev1.EventTypeNormal, "Scheduled", "Binding",
		"Successfully assigned %s/%s to %s", assumed.Namespace, assumed.Name, assumed.Spec.NodeName)
}

// handleFailure requeues a pod whose attempt failed (unless it is gone or
// bound meanwhile), records a FailedScheduling event and sets its
// PodScheduled condition (and status.nominatedNodeName when preemption
// nominated a node).
func (s *Scheduler) handleFailure(ctx context.Context, qp *queue.QueuedPodInfo, err error, cycle int64, nominated string) {
	pod := qp.Pod
	cur, gerr := s.podLister.Get(pod.Namespace, pod.Name)
	if gerr != nil || cur.UID != pod.UID || assigned(cur) {
		return // deleted, replaced or bound meanwhile
	}
	qp.Pod = s.priorities.withPriority(cur)
	unschedulable := isUnschedulable(err)
	s.queue.AddUnschedulableIfNotPresent(qp, unschedulable, cycle)

	reason := corev1.PodReasonUnschedulable
	if !unschedulable {
		reason = corev1.PodReasonSchedulerError
	}
	msg := err.Error()
	s.recorder.Eventf(cur, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "%s", msg)
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: reason, Message: msg}
	if hasCondition(cur, cond) && (nominated == "" || cur.Status.NominatedNodeName == nominated) {
		return
	}
	s.async.Go(func() {
		if err := s.updatePodCondition(ctx, cur, cond, nominated); err != nil && ctx.Err() == nil {
			s.logger.Warn("failed to update pod condition", zap.String("pod", cur.Namespace+"/"+cur.Name), zap.Error(err))
		}
	})
}

func hasCondition(pod *corev1.Pod, c corev1.PodCondition) bool {
	for _, have := range pod.Status.Conditions {
		if have.Type == c.Type {
			return have.Status == c.Status && have.Reason == c.Reason && have.Message == c.Message
		}
	}
	return false
}

// updatePodCondition sets cond (and nominatedNodeName, if not empty) on
// the pod's status, re-reading it on a conflict; it gives up if the pod
// was bound meanwhile.
func (s *Scheduler) updatePodCondition(ctx context.Context, pod *corev1.Pod, cond corev1.PodCondition, nominated string) error {
	for attempt := 0; ; attempt++ {
		p := pod.DeepCopy()
		if nominated != "" {
			p.Status.NominatedNodeName = nominated
		}
		now := metav1.Now()
		cond.LastTransitionTime = now
		found := false
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == cond.Type {
				if p.Status.Conditions[i].Status == cond.Status {
					cond.LastTransitionTime = p.Status.Conditions[i].LastTransitionTime
				}
				p.Status.Conditions[i] = cond
				found = true
			}
		}
		if !found {
			p.Status.Conditions = append(p.Status.Conditions, cond)
		}
		_, err := s.pods.UpdateStatus(ctx, p.Namespace, p)
		if err == nil || !apierrors.IsConflict(err) || attempt >= 3 {
			if err != nil {
				return fmt.Errorf("update status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
			}
			return nil
		}
		fresh, gerr := s.pods.Get(ctx, pod.Namespace, pod.Name)
		if gerr != nil {
			return fmt.Errorf("get pod %s/%s: %w", pod.Namespace, pod.Name, gerr)
		}
		if assigned(fresh) || fresh.UID != pod.UID || hasCondition(fresh, cond) && (nominated == "" || fresh.Status.NominatedNodeName == nominated) {
			return nil
		}
		pod = fresh
	}
}
