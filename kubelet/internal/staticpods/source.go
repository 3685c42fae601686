package staticpods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Sink runs and stops static pods: the kubelet's pod manager.
type Sink interface {
	// AddStatic runs a new static pod.
	AddStatic(pod *corev1.Pod)
	// RemoveStatic stops a static pod whose manifest is gone or changed.
	RemoveStatic(pod *corev1.Pod)
}

// Config configures a Source.
type Config struct {
	// Path is a folder of manifests or a single manifest file,
	// upstream's --pod-manifest-path.
	Path     string
	NodeName string
	// Interval is how often Path is read again (20 s, upstream's
	// --file-check-frequency).
	Interval time.Duration
	Sink     Sink
	// OnChange is called after a read that changed the set of static
	// pods (and after the first read). Nil: none.
	OnChange func()
	Logger   *zap.Logger
}

// Source is upstream's file config source: it reads the manifests of
// Path and hands the pods that appeared, changed or went to the Sink. A
// changed manifest is another pod (its UID is the content's hash): the
// old one stops and the new one starts.
type Source struct {
	cfg    Config
	logger *zap.Logger

	mu     sync.Mutex
	pods   map[types.UID]*corev1.Pod
	synced bool
	// bad holds the error last logged for each bad manifest, so that it
	// is logged once per change and not every Interval.
	bad      map[string]string
	noSuchOK bool // that Path does not exist was logged
}

// NewSource returns a Source; Sync reads the manifests, Run keeps reading
// them.
func NewSource(cfg Config) *Source {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Second
	}
	return &Source{cfg: cfg, logger: cfg.Logger, pods: map[types.UID]*corev1.Pod{}, bad: map[string]string{}}
}

// Run reads the manifests every Interval until ctx ends (at once without
// a Path).
func (s *Source) Run(ctx context.Context) {
	if s.cfg.Path == "" {
		return
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Sync()
		}
	}
}

// Pods returns the static pods, sorted by namespace and name.
func (s *Source) Pods() []*corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(s.pods))
	for _, p := range s.pods {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Synced reports whether the manifests were read once.
func (s *Source) Synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// Sync reads the manifests now and hands the changes to the Sink. When
// Path cannot be read (but exists) the pods stay as they are.
func (s *Source) Sync() {
	pods, ok := s.read(time.Now())
	if !ok {
		return
	}
	s.mu.Lock()
	next := make(map[types.UID]*corev1.Pod, len(pods))
	var added, removed []*corev1.Pod
	for _, p := range pods {
		if prev, ok := s.pods[p.UID]; ok {
			// The same version: keep the pod as first seen.
			next[p.UID] = prev
			continue
		}
		next[p.UID] = p
		added = append(added, p)
	}
	for uid, p := range s.pods {
		if _, ok := next[uid]; !ok {
			removed = append(removed, p)
		}
	}
	first := !s.synced
	s.pods, s.synced = next, true
	s.mu.Unlock()

	for _, p := range removed {
		s.logger.Info("static pod removed", zap.String("pod", p.Namespace+"/"+p.Name), zap.String("uid", string(p.UID)))
		s.cfg.Sink.RemoveStatic(p)
	}
	for _, p := range added {
		s.logger.Info("static pod added", zap.String("pod", p.Namespace+"/"+p.Name), zap.String("uid", string(p.UID)))
		s.cfg.Sink.AddStatic(p)
	}
	if (first || len(added) > 0 || len(removed) > 0) && s.cfg.OnChange != nil {
		s.cfg.OnChange()
	}
}

// read returns the pods of every good manifest of Path; false when Path
// exists but cannot be read (the pods are kept as they are). A bad
// manifest is logged with its error and skipped; so is a pod whose name
// an earlier manifest (in file name order) took.
func (s *Source) read(now time.Time) ([]*corev1.Pod, bool) {
	path := s.cfg.Path
	if path == "" {
		return nil, true
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		// As upstream: no manifests, no static pods.
		s.mu.Lock()
		logIt := !s.noSuchOK
		s.noSuchOK = true
		s.mu.Unlock()
		if logIt {
			s.logger.Info("pod manifest path does not exist: no static pods", zap.String("path", path))
		}
		return nil, true
	}
	if err != nil {
		s.logger.Warn("read pod manifest path", zap.String("path", path), zap.Error(err))
		return nil, false
	}
	s.mu.Lock()
	s.noSuchOK = false
	s.mu.Unlock()
	var files []string
	switch {
	case fi.IsDir():
		entries, err := os.ReadDir(path)
		if err != nil {
			s.logger.Warn("read pod manifest folder", zap.String("path", path), zap.Error(err))
			return nil, false
		}
		for _, e := range entries {
			// Hidden files (editors' swap files among them) are skipped,
			// as upstream's.
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			f := filepath.Join(path, e.Name())
			st, err := os.Stat(f) // through symlinks
			switch {
			case err != nil:
				s.badManifest(f, err)
			case st.IsDir():
				// Not recursing, as upstream.
			case st.Mode().IsRegular():
				files = append(files, f)
			default:
				s.badManifest(f, errors.New("not a regular file"))
			}
		}
	case fi.Mode().IsRegular():
		files = []string{path}
	default:
		s.logger.Warn("pod manifest path is neither a folder nor a file", zap.String("path", path))
		return nil, false
	}
	var out []*corev1.Pod
	owner := map[string]string{} // namespace/name: the file it came from
	present := map[string]bool{}
	for _, f := range files {
		present[f] = true
		pods, err := s.readFile(f, now)
		if err != nil {
			s.badManifest(f, err)
			continue
		}
		s.goodManifest(f)
		for _, p := range pods {
			key := p.Namespace + "/" + p.Name
			if other, dup := owner[key]; dup {
				s.logger.Error("static pod skipped: another manifest has a pod of that name",
					zap.String("file", f), zap.String("pod", key), zap.String("other", other))
				continue
			}
			owner[key] = f
			out = append(out, p)
		}
	}
	s.mu.Lock()
	for f := range s.bad {
		if !present[f] {
			delete(s.bad, f)
		}
	}
	s.mu.Unlock()
	return out, true
}

// readFile decodes and completes the pods of one manifest.
func (s *Source) readFile(file string, now time.Time) ([]*corev1.Pod, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("larger than %d bytes", maxManifestSize)
	}
	pods, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, errors.New("no pod in the manifest")
	}
	for i, p := range pods {
		name := p.Name
		if err := Complete(p, file, s.cfg.NodeName, now); err != nil {
			return nil, fmt.Errorf("pod %d (%q): %w", i, name, err)
		}
	}
	return pods, nil
}

// badManifest logs that file was skipped, once for each error it has.
func (s *Source) badManifest(file string, err error) {
	s.mu.Lock()
	logIt := s.bad[file] != err.Error()
	s.bad[file] = err.Error()
	s.mu.Unlock()
	if logIt {
		s.logger.Error("bad static pod manifest: skipped", zap.String("file", file), zap.Error(err))
	}
}

func (s *Source) goodManifest(file string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.bad, file)
}
