package containerruntime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	kimages "github.com/coxswain/coxswain/kubelet/internal/images"
)

// ImageGCConfig configures the image garbage collector, upstream's
// ImageGCPolicy.
type ImageGCConfig struct {
	// HighThreshold is the disk usage (percent) of the image filesystem
	// at or above which unused images are removed (85), down to
	// LowThreshold (80). HighThreshold 100 disables the collection.
	HighThreshold, LowThreshold int
	// MinAge is how long an image stays unused at least before it may go
	// (upstream's --minimum-image-ttl-duration, 2 min).
	MinAge time.Duration
	// Period is how often the collector runs (5 min, as upstream's).
	Period time.Duration
	// ImageFS is a path on the filesystem holding containerd's images
	// (its root, /var/lib/containerd).
	ImageFS string
	// PinnedImages are never removed: the pod infra (pause) image.
	PinnedImages []string
	Logger       *zap.Logger
}

// imageRecord is one image of the store, by its target digest.
type imageRecord struct {
	names   []string
	digest  string
	size    int64
	created time.Time
}

// imageStore is what the collector needs of containerd; a fake in tests.
type imageStore interface {
	// images lists the images, one record per target digest.
	images(ctx context.Context) ([]imageRecord, error)
	// inUse is the set of target digests (and names) containers use.
	inUse(ctx context.Context) (map[string]bool, error)
	remove(ctx context.Context, name string) error
	// usage is the image filesystem's capacity and available bytes.
	usage() (capacity, available uint64, err error)
}

// ImageGC removes unused images when the image filesystem fills up,
// least recently used first, as upstream's realImageGCManager.
type ImageGC struct {
	cfg   ImageGCConfig
	store imageStore
	now   func() time.Time

	mu sync.Mutex
	// lastUsed is when each image (by digest) was last seen in use or,
	// for an image never seen used, first seen.
	lastUsed map[string]time.Time
	// firstSeen is when the collector first saw each image.
	firstSeen map[string]time.Time
}

// NewImageGC returns the image collector of the runtime's images.
func (r *Runtime) NewImageGC(cfg ImageGCConfig) (*ImageGC, error) {
	return newImageGC(cfg, &containerdImages{r: r, fs: cfg.ImageFS})
}

func newImageGC(cfg ImageGCConfig, store imageStore) (*ImageGC, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Period == 0 {
		cfg.Period = 5 * time.Minute
	}
	if cfg.HighThreshold < 0 || cfg.HighThreshold > 100 || cfg.LowThreshold < 0 || cfg.LowThreshold > 100 {
		return nil, fmt.Errorf("image GC thresholds %d/%d: want 0..100", cfg.HighThreshold, cfg.LowThreshold)
	}
	if cfg.LowThreshold > cfg.HighThreshold {
		return nil, fmt.Errorf("image GC low threshold %d is above the high threshold %d", cfg.LowThreshold, cfg.HighThreshold)
	}
	return &ImageGC{cfg: cfg, store: store, now: time.Now, lastUsed: map[string]time.Time{}, firstSeen: map[string]time.Time{}}, nil
}

// Run collects every Period until ctx ends.
func (g *ImageGC) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.Period)
	defer t.Stop()
	for {
		if _, err := g.Collect(ctx); err != nil {
			g.cfg.Logger.Warn("image garbage collection", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Collect notes which images are in use and, when the image filesystem's
// usage is at or above the high threshold, removes unused images (never
// a pinned one, nor one unused for less than MinAge), least recently used
// first, until the usage would be down to the low threshold. It returns
// the names removed.
func (g *ImageGC) Collect(ctx context.Context) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	recs, err := g.store.images(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	used, err := g.store.inUse(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images in use: %w", err)
	}
	pinned := map[string]bool{}
	for _, p := range g.cfg.PinnedImages {
		if n, err := kimages.NormalizeName(p); err == nil {
			pinned[n] = true
		}
		pinned[p] = true
	}
	now := g.now()
	present := map[string]bool{}
	var candidates []imageRecord
	for _, rec := range recs {
		present[rec.digest] = true
		if _, ok := g.firstSeen[rec.digest]; !ok {
			g.firstSeen[rec.digest] = now
			g.lastUsed[rec.digest] = now
		}
		inUse := used[rec.digest]
		for _, n := range rec.names {
			inUse = inUse || used[n] || pinned[n]
		}
		if inUse {
			g.lastUsed[rec.digest] = now
			continue
		}
		candidates = append(candidates, rec)
	}
	for d := range g.firstSeen {
		if !present[d] {
			delete(g.firstSeen, d)
			delete(g.lastUsed, d)
		}
	}
	if g.cfg.HighThreshold >= 100 {
		return nil, nil
	}
	capacity, available, err := g.store.usage()
	if err != nil {
		return nil, fmt.Errorf("image filesystem usage: %w", err)
	}
	if capacity == 0 {
		return nil, nil
	}
	usage := int64(capacity - available)
	if usage*100 < int64(capacity)*int64(g.cfg.HighThreshold) {
		return nil, nil
	}
	toFree := usage - int64(capacity)*int64(g.cfg.LowThreshold)/100
	g.cfg.Logger.Info("image filesystem usage above the high threshold: removing unused images",
		zap.Int64("usagePercent", usage*100/int64(capacity)), zap.Int("highThreshold", g.cfg.HighThreshold), zap.Int64("bytesToFree", toFree))
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := g.lastUsed[candidates[i].digest], g.lastUsed[candidates[j].digest]
		if !a.Equal(b) {
			return a.Before(b)
		}
		return candidates[i].created.Before(candidates[j].created)
	})
	var removed []string
	var errs []error
	freed := int64(0)
	for _, rec := range candidates {
		if freed >= toFree {
			break
		}
		if now.Sub(g.lastUsed[rec.digest]) < g.cfg.MinAge {
			continue
		}
		ok := true
		for _, n := range rec.names {
			if err := g.store.remove(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("remove image %s: %w", n, err))
				ok = false
				continue
			}
			removed = append(removed, n)
		}
		if ok {
			freed += rec.size
			delete(g.firstSeen, rec.digest)
			delete(g.lastUsed, rec.digest)
			g.cfg.Logger.Info("removed unused image", zap.Strings("names", rec.names), zap.Int64("size", rec.size))
		}
	}
	if freed < toFree {
		errs = append(errs, fmt.Errorf("freed %d of the %d bytes wanted: no more unused images", freed, toFree))
	}
	return removed, errors.Join(errs...)
}

// containerdImages is the image store of the kubelet's containerd
// namespace.
type containerdImages struct {
	r  *Runtime
	fs string
}

func (s *containerdImages) images(ctx context.Context) ([]imageRecord, error) {
	ctx = nsCtx(ctx)
	imgs, err := s.r.client.ImageService().List(ctx)
	if err != nil {
		return nil, err
	}
	byDigest := map[string]*imageRecord{}
	var order []string
	for _, img := range imgs {
		d := img.Target.Digest.String()
		rec, ok := byDigest[d]
		if !ok {
			rec = &imageRecord{digest: d, created: img.CreatedAt}
			if size, err := img.Size(ctx, s.r.client.ContentStore(), nil); err == nil {
				rec.size = size
			}
			byDigest[d] = rec
			order = append(order, d)
		}
		rec.names = append(rec.names, img.Name)
	}
	out := make([]imageRecord, 0, len(order))
	for _, d := range order {
		out = append(out, *byDigest[d])
	}
	return out, nil
}

func (s *containerdImages) inUse(ctx context.Context) (map[string]bool, error) {
	ctx = nsCtx(ctx)
	cs, err := s.r.client.ContainerService().List(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, c := range cs {
		if c.Image != "" {
			used[c.Image] = true
		}
	}
	// A name in use makes its digest in use (another name may share it).
	imgs, err := s.r.client.ImageService().List(ctx)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if used[img.Name] {
			used[img.Target.Digest.String()] = true
		}
	}
	return used, nil
}

func (s *containerdImages) remove(ctx context.Context, name string) error {
	err := s.r.client.ImageService().Delete(nsCtx(ctx), name, images.SynchronousDelete())
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (s *containerdImages) usage() (uint64, uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.fs, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", s.fs, err)
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}
