package volume

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
)

// syncTimeout bounds how long a read waits for an object's first list.
const syncTimeout = 10 * time.Second

type objectKey struct{ namespace, name string }

// objectWatch is the informer of one object (field selector metadata.name)
// and the pods using it.
type objectWatch struct {
	inf    informer.SharedInformer
	cancel context.CancelFunc
	pods   map[types.UID]bool
}

// objectCache keeps the ConfigMaps (or Secrets) that pods use, as upstream's
// watch-based manager: one watch per object, started when the first pod
// using it registers and stopped when the last one goes; a change tells the
// pods using the object.
type objectCache[T runtime.Object] struct {
	c      *client.Client
	gvr    schema.GroupVersionResource
	kind   string
	notify func(types.UID)
	logger *zap.Logger

	mu      sync.Mutex
	watches map[objectKey]*objectWatch
	byPod   map[types.UID][]objectKey
	wg      sync.WaitGroup
}

func newObjectCache[T runtime.Object](c *client.Client, kind string, notify func(types.UID), logger *zap.Logger) *objectCache[T] {
	oc := &objectCache[T]{c: c, kind: kind, notify: notify, logger: logger, watches: map[objectKey]*objectWatch{}, byPod: map[types.UID][]objectKey{}}
	if c != nil {
		oc.gvr = client.For[T](c).GVR()
	}
	return oc
}

// register makes uid use exactly the named objects of namespace; ctx bounds
// the watches it starts.
func (oc *objectCache[T]) register(ctx context.Context, uid types.UID, namespace string, names []string) {
	if oc.c == nil {
		return
	}
	want := map[objectKey]bool{}
	for _, n := range names {
		want[objectKey{namespace, n}] = true
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for _, k := range oc.byPod[uid] {
		if !want[k] {
			oc.release(uid, k)
		}
	}
	keys := make([]objectKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
		w, ok := oc.watches[k]
		if !ok {
			w = oc.start(ctx, k)
			oc.watches[k] = w
		}
		w.pods[uid] = true
	}
	if len(keys) == 0 {
		delete(oc.byPod, uid)
		return
	}
	oc.byPod[uid] = keys
}

// unregister drops uid's uses.
func (oc *objectCache[T]) unregister(uid types.UID) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for _, k := range oc.byPod[uid] {
		oc.release(uid, k)
	}
	delete(oc.byPod, uid)
}

// release drops uid's use of k and stops its watch when unused; oc.mu is held.
func (oc *objectCache[T]) release(uid types.UID, k objectKey) {
	w, ok := oc.watches[k]
	if !ok {
		return
	}
	delete(w.pods, uid)
	if len(w.pods) == 0 {
		w.cancel()
		delete(oc.watches, k)
	}
}

// start runs the informer of k; oc.mu is held.
func (oc *objectCache[T]) start(ctx context.Context, k objectKey) *objectWatch {
	lw := informer.NewListWatch(oc.c, oc.gvr, k.namespace, func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
	})
	var example T
	example, _ = reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
	inf := informer.NewSharedInformer(lw, example, 0, informer.Indexers{}, informer.WithLogger(oc.logger))
	wctx, cancel := context.WithCancel(ctx)
	w := &objectWatch{inf: inf, cancel: cancel, pods: map[types.UID]bool{}}
	changed := func(any) {
		oc.mu.Lock()
		pods := make([]types.UID, 0, len(w.pods))
		for uid := range w.pods {
			pods = append(pods, uid)
		}
		oc.mu.Unlock()
		for _, uid := range pods {
			oc.notify(uid)
		}
	}
	_, _ = inf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, obj any) { changed(obj) },
		DeleteFunc: changed,
	})
	oc.wg.Go(func() { inf.Run(wctx) })
	oc.logger.Debug("watching", zap.String(oc.kind, k.namespace+"/"+k.name))
	return w
}

// get returns the object from its watch once that has listed it (or from
// the apiserver for an object no pod registered), or a NotFound error.
func (oc *objectCache[T]) get(ctx context.Context, namespace, name string) (T, error) {
	var zero T
	if oc.c == nil {
		return zero, fmt.Errorf("no apiserver client to read %s %q", oc.kind, name)
	}
	k := objectKey{namespace, name}
	oc.mu.Lock()
	w, ok := oc.watches[k]
	oc.mu.Unlock()
	if !ok {
		return client.For[T](oc.c).Get(ctx, namespace, name)
	}
	if !w.inf.HasSynced() {
		sctx, cancel := context.WithTimeout(ctx, syncTimeout)
		synced := informer.WaitForCacheSync(sctx, w.inf.HasSynced)
		cancel()
		if !synced {
			return zero, fmt.Errorf("%s %q: the watch has not listed it yet", oc.kind, name)
		}
	}
	obj, exists, err := w.inf.GetStore().GetByKey(namespace + "/" + name)
	if err != nil {
		return zero, err
	}
	if !exists {
		return zero, apierrors.NewNotFound(oc.gvr.GroupResource(), name)
	}
	t, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("cached %s %q is a %T", oc.kind, name, obj)
	}
	return t, nil
}

// wait waits for the watches to stop.
func (oc *objectCache[T]) wait() { oc.wg.Wait() }
