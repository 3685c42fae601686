package cacher

import (
	"context"
	"errors"
	"time"

	"github.com/google/btree"
)

// Paginated lists (limit/continue) are served from a snapshot of the cache
// taken at the first page: the btree's copy-on-write clone, kept for a
// while under the page's revision, so that later pages show the state of
// the first one, as upstream's continue tokens promise.
const (
	maxSnapshots = 16
	snapshotTTL  = 90 * time.Second
)

type snapshot struct {
	tree  *btree.BTreeG[*Entry]
	taken time.Time
}

// ErrNoSnapshot is returned for a continued list whose snapshot is gone;
// the caller reads etcd at the token's revision instead.
var ErrNoSnapshot = errors.New("no cached snapshot at that revision")

// ListPage returns up to limit matching entries in key order, starting at
// start (inclusive). With snapRev 0 it is a first page: the cache waits
// until it reflects minRev and, if more items follow, keeps a snapshot at
// the returned revision. With snapRev > 0 it continues from that snapshot.
// next is the key to continue from, "" at the end.
func (c *Cacher) ListPage(ctx context.Context, minRev int64, p Predicate, start string, limit int64, snapRev int64) (items []*Entry, rev int64, next string, err error) {
	var tree *btree.BTreeG[*Entry]
	if snapRev > 0 {
		c.mu.Lock()
		s, ok := c.snapshots[snapRev]
		c.mu.Unlock()
		if !ok || time.Since(s.taken) > snapshotTTL {
			return nil, 0, "", ErrNoSnapshot
		}
		tree, rev = s.tree, snapRev
	} else {
		c.mu.Lock()
		if err := c.waitFor(ctx, minRev); err != nil {
			c.mu.Unlock()
			return nil, 0, "", err
		}
		tree, rev = c.items.Clone(), c.rev
		c.mu.Unlock()
	}
	prefix := c.scanPrefix(p.Namespace)
	if start < prefix {
		start = prefix
	}
	tree.AscendGreaterOrEqual(&Entry{Key: start}, func(e *Entry) bool {
		if len(e.Key) < len(prefix) || e.Key[:len(prefix)] != prefix {
			return false
		}
		if !p.Matches(e) {
			return true
		}
		if limit > 0 && int64(len(items)) == limit {
			next = e.Key
			return false
		}
		items = append(items, e)
		return true
	})
	if next != "" && snapRev == 0 {
		c.keepSnapshot(rev, tree)
	}
	return items, rev, next, nil
}

func (c *Cacher) keepSnapshot(rev int64, tree *btree.BTreeG[*Entry]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snapshots == nil {
		c.snapshots = map[int64]snapshot{}
	}
	now := time.Now()
	for r, s := range c.snapshots {
		if now.Sub(s.taken) > snapshotTTL {
			delete(c.snapshots, r)
		}
	}
	if _, ok := c.snapshots[rev]; ok {
		return
	}
	if len(c.snapshots) >= maxSnapshots {
		var oldest int64
		for r := range c.snapshots {
			if oldest == 0 || r < oldest {
				oldest = r
			}
		}
		delete(c.snapshots, oldest)
	}
	c.snapshots[rev] = snapshot{tree: tree, taken: now}
}
