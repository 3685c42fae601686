package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// MaxRetries is how many times a key is retried with back-off before it is
// dropped; the next event or resync brings it back.
const MaxRetries = 15

// SyncFunc reconciles the object with the given key.
type SyncFunc func(ctx context.Context, key string) error

// NewQueue returns a rate-limited queue with the default controller rate
// limiter, recording metrics under name when m is not nil.
func NewQueue(name string, m *workqueue.Metrics) *workqueue.Typed[string] {
	return workqueue.NewWithConfig(workqueue.Config[string]{Name: name, Metrics: m})
}

// Run waits for the caches to sync, then runs workers goroutines that take
// keys from q and call sync, until ctx is done; it shuts q down and returns
// once every worker has stopped.
func Run(ctx context.Context, name string, logger *zap.Logger, q *workqueue.Typed[string], workers int, syncFn SyncFunc, synced ...func() bool) {
	defer q.ShutDown()
	logger.Info("starting controller", zap.String("controller", name), zap.Int("workers", workers))
	defer logger.Info("stopped controller", zap.String("controller", name))
	if !informer.WaitForCacheSync(ctx, synced...) {
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for processNext(ctx, logger, q, syncFn) {
			}
		})
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

// processNext handles one key; false means the queue is shut down.
func processNext(ctx context.Context, logger *zap.Logger, q *workqueue.Typed[string], sync SyncFunc) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	if ctx.Err() != nil {
		return true
	}
	start := time.Now()
	err := sync(ctx, key)
	var again *RequeueAfterError
	switch {
	case err == nil:
		q.Forget(key)
		logger.Debug("synced", zap.String("key", key), zap.Duration("took", time.Since(start)))
	case errors.As(err, &again):
		q.Forget(key)
		logger.Debug("waiting", zap.String("key", key), zap.String("reason", again.Reason), zap.Duration("after", again.After))
		q.AddAfter(key, again.After)
	case errors.Is(err, context.Canceled):
	case q.NumRequeues(key) < MaxRetries:
		lvl := logger.Info
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			lvl = logger.Warn
		}
		lvl("sync failed; retrying", zap.String("key", key), zap.Error(err))
		q.AddRateLimited(key)
	default:
		logger.Error("sync failed; dropping key", zap.String("key", key), zap.Error(err))
		q.Forget(key)
	}
	return true
}

// RequeueAfterError is returned by a sync that succeeded but must look
// again after a while (waiting on something no event will announce): the
// key is requeued after After without counting as a failure.
type RequeueAfterError struct {
	After  time.Duration
	Reason string
}

func (e *RequeueAfterError) Error() string {
	return fmt.Sprintf("requeue after %v: %s", e.After, e.Reason)
}

// RequeueAfter returns a RequeueAfterError.
func RequeueAfter(d time.Duration, reason string) error {
	return &RequeueAfterError{After: d, Reason: reason}
}

// Enqueue adds obj's key (obj may be a DeletedFinalStateUnknown) to q.
func Enqueue(q *workqueue.Typed[string], obj any) {
	if key, err := informer.KeyFunc(obj); err == nil {
		q.Add(key)
	}
}
