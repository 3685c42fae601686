// Package etcd stores API objects in etcd v3: one key per object, values in
// the Kubernetes protobuf encoding, resourceVersion = the etcd revision that
// last modified the key. Every write is a transaction guarded by the key's
// mod_revision, so a stale writer gets a conflict, never a lost update.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// ErrReserved is returned when a reservation key of a write is already held.
type ErrReserved struct{ Key string }

func (e *ErrReserved) Error() string { return fmt.Sprintf("key %s is already reserved", e.Key) }

// Store reads and writes objects of any kind in etcd.
type Store struct {
	client  *clientv3.Client
	logger  *zap.Logger
	latency *prometheus.HistogramVec
}

// NewStore returns a store over an etcd client. latency may be nil.
func NewStore(c *clientv3.Client, logger *zap.Logger, latency *prometheus.HistogramVec) *Store {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Store{client: c, logger: logger, latency: latency}
}

// Client returns the etcd client.
func (s *Store) Client() *clientv3.Client { return s.client }

func (s *Store) observe(op string, start time.Time) {
	if s.latency != nil {
		s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
}

// Encode serialises obj for storage with an empty resourceVersion.
func Encode(gvk schema.GroupVersionKind, obj runtime.Object) ([]byte, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	rv := acc.GetResourceVersion()
	acc.SetResourceVersion("")
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	raw, err := runtime.Encode(scheme.Protobuf, obj)
	acc.SetResourceVersion(rv)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", gvk.Kind, err)
	}
	return raw, nil
}

// Decode parses a stored value and sets its resourceVersion to rev.
func Decode(raw []byte, rev int64) (runtime.Object, error) {
	obj, _, err := scheme.Protobuf.Decode(raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode stored object: %w", err)
	}
	if err := SetResourceVersion(obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

// SetResourceVersion sets obj's metadata.resourceVersion to rev.
func SetResourceVersion(obj runtime.Object, rev int64) error {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("set resourceVersion: %w", err)
	}
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	return nil
}

// ParseResourceVersion parses a resourceVersion; "" is 0.
func ParseResourceVersion(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	return n, nil
}

// CurrentRevision returns etcd's current revision.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	defer s.observe("revision", time.Now())
	resp, err := s.client.Get(ctx, "/registry/health-revision", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read etcd revision: %w", translate(err))
	}
	return resp.Header.Revision, nil
}

// Create writes raw at key when key does not exist, together with the
// reservation keys (each of which must not exist either; its value is key).
// It returns the revision of the write.
func (s *Store) Create(ctx context.Context, key string, raw []byte, reserve []string) (int64, error) {
	defer s.observe("create", time.Now())
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	ops := []clientv3.Op{clientv3.OpPut(key, string(raw))}
	for _, r := range reserve {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(r), "=", 0))
		ops = append(ops, clientv3.OpPut(r, key))
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", key, translate(err))
	}
	if !resp.Succeeded {
		return 0, s.whichExists(ctx, key, reserve)
	}
	return resp.Header.Revision, nil
}

// errKeyExists is returned (wrapped) when the object's own key exists.
var errKeyExists = errors.New("key exists")

// IsKeyExists reports whether a Create failed because the object exists.
func IsKeyExists(err error) bool { return errors.Is(err, errKeyExists) }

func (s *Store) whichExists(ctx context.Context, key string, reserve []string) error {
	keys := append([]string{key}, reserve...)
	for i, k := range keys {
		resp, err := s.client.Get(ctx, k, clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("create %s: %w", key, translate(err))
		}
		if resp.Count > 0 {
			if i == 0 {
				return fmt.Errorf("create %s: %w", key, errKeyExists)
			}
			return &ErrReserved{Key: k}
		}
	}
	// Everything was released between the failed transaction and now: the
	// caller retries.
	return apierrors.NewConflict(schema.GroupResource{}, key, errors.New("concurrent reservation, retry"))
}

// KV is one stored value with its revisions.
type KV struct {
	Key         string
	Value       []byte
	ModRevision int64
}

// Get reads one key; ok is false when it does not exist. rev 0 reads the
// latest revision.
func (s *Store) Get(ctx context.Context, key string, rev int64) (kv KV, ok bool, err error) {
	defer s.observe("get", time.Now())
	opts := []clientv3.OpOption{}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := s.client.Get(ctx, key, opts...)
	if err != nil {
		return KV{}, false, fmt.Errorf("get %s: %w", key, translate(err))
	}
	if len(resp.Kvs) == 0 {
		return KV{}, false, nil
	}
	k := resp.Kvs[0]
	return KV{Key: string(k.Key), Value: k.Value, ModRevision: k.ModRevision}, true, nil
}

// Update replaces key's value when its mod_revision is still modRev,
// reserving and releasing keys in the same transaction. ok is false when the
// key changed meanwhile (the caller re-reads and retries).
func (s *Store) Update(ctx context.Context, key string, modRev int64, raw []byte, reserve, release []string) (rev int64, ok bool, err error) {
	defer s.observe("update", time.Now())
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", modRev)}
	ops := []clientv3.Op{clientv3.OpPut(key, string(raw))}
	for _, r := range reserve {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(r), "=", 0))
		ops = append(ops, clientv3.OpPut(r, key))
	}
	for _, r := range release {
		ops = append(ops, clientv3.OpDelete(r))
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, false, fmt.Errorf("update %s: %w", key, translate(err))
	}
	if !resp.Succeeded {
		// Either the object moved on or a reservation is held.
		cur, exists, gerr := s.Get(ctx, key, 0)
		if gerr != nil {
			return 0, false, gerr
		}
		if exists && cur.ModRevision == modRev {
			for _, r := range reserve {
				g, err := s.client.Get(ctx, r, clientv3.WithCountOnly())
				if err != nil {
					return 0, false, fmt.Errorf("update %s: %w", key, translate(err))
				}
				if g.Count > 0 {
					return 0, false, &ErrReserved{Key: r}
				}
			}
		}
		return 0, false, nil
	}
	return resp.Header.Revision, true, nil
}

// Delete removes key when its mod_revision is still modRev, releasing keys in
// the same transaction. ok is false when the key changed meanwhile.
func (s *Store) Delete(ctx context.Context, key string, modRev int64, release []string) (rev int64, ok bool, err error) {
	defer s.observe("delete", time.Now())
	ops := []clientv3.Op{clientv3.OpDelete(key)}
	for _, r := range release {
		ops = append(ops, clientv3.OpDelete(r))
	}
	resp, err := s.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).Then(ops...).Commit()
	if err != nil {
		return 0, false, fmt.Errorf("delete %s: %w", key, translate(err))
	}
	return resp.Header.Revision, resp.Succeeded, nil
}

// ListPage reads up to limit keys (0: all) under prefix starting at start
// (inclusive), at revision rev (0: latest). It returns the kvs, the
// revision read at, and whether more keys follow.
func (s *Store) ListPage(ctx context.Context, prefix, start string, rev, limit int64) ([]KV, int64, bool, error) {
	defer s.observe("list", time.Now())
	if start == "" {
		start = prefix
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	resp, err := s.client.Get(ctx, start, opts...)
	if err != nil {
		return nil, 0, false, fmt.Errorf("list %s: %w", prefix, translate(err))
	}
	out := make([]KV, len(resp.Kvs))
	for i, k := range resp.Kvs {
		out[i] = KV{Key: string(k.Key), Value: k.Value, ModRevision: k.ModRevision}
	}
	return out, resp.Header.Revision, resp.More, nil
}

// ListKeys returns the keys under prefix.
func (s *Store) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list keys %s: %w", prefix, translate(err))
	}
	out := make([]string, len(resp.Kvs))
	for i, k := range resp.Kvs {
		out[i] = string(k.Key)
	}
	return out, nil
}

// Compact compacts etcd history up to rev.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if _, err := s.client.Compact(ctx, rev); err != nil {
		return fmt.Errorf("compact at %d: %w", rev, translate(err))
	}
	return nil
}
