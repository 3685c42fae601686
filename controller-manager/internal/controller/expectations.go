package controller

import (
	"sync"
	"time"
)

// ExpectationsTimeout is how long unmet expectations hold a controller back:
// an informer event lost for good must not block it forever.
const ExpectationsTimeout = 5 * time.Minute

// Expectations records, per controller key, the creations and deletions a
// controller has asked for and not yet seen in its informer. While some are
// pending the controller must not act on its cache, which is stale.
// Deletions are tracked by pod key, so that a pod deleted by someone else is
// not mistaken for one the controller asked to delete.
type Expectations struct {
	mu    sync.Mutex
	items map[string]*expectation
	now   func() time.Time
}

type expectation struct {
	adds      int64
	deletes   map[string]struct{}
	timestamp time.Time
}

// NewExpectations returns an empty record.
func NewExpectations() *Expectations {
	return &Expectations{items: map[string]*expectation{}, now: time.Now}
}

// Satisfied says whether the controller key may act: nothing is pending,
// the record has expired, or there is no record at all.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.items[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deletes) == 0 {
		return true
	}
	return e.now().Sub(x.timestamp) > ExpectationsTimeout
}

// ExpectCreations replaces key's record with n pending creations.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.items[key] = &expectation{adds: int64(n), deletes: map[string]struct{}{}, timestamp: e.now()}
}

// ExpectDeletions replaces key's record with the deletion of the objects
// with the given keys.
func (e *Expectations) ExpectDeletions(key string, objKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletes: make(map[string]struct{}, len(objKeys)), timestamp: e.now()}
	for _, k := range objKeys {
		x.deletes[k] = struct{}{}
	}
	e.items[key] = x
}

// CreationObserved lowers key's pending creations by one: the informer saw
// one, or a create failed and never will be seen.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.items[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// DeletionObserved clears the pending deletion of objKey.
func (e *Expectations) DeletionObserved(key, objKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.items[key]; ok {
		delete(x.deletes, objKey)
	}
}

// Delete forgets key, whose controller is gone.
func (e *Expectations) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.items, key)
}

// Pending returns key's pending creations and deletions, for tests and logs.
func (e *Expectations) Pending(key string) (adds int, deletes int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.items[key]
	if !ok {
		return 0, 0
	}
	return int(x.adds), len(x.deletes)
}
