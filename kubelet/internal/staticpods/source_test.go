package staticpods

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
)

// recordingSink records what a Source hands it.
type recordingSink struct {
	mu      sync.Mutex
	events  []string // "+name" or "-name"
	running map[string]*corev1.Pod
}

func (r *recordingSink) AddStatic(p *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "+"+p.Name)
	r.running[string(p.UID)] = p
}

func (r *recordingSink) RemoveStatic(p *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "-"+p.Name)
	delete(r.running, string(p.UID))
}

// take returns the events so far, sorted (the order of a pass is not
// specified but removals come first), and forgets them.
func (r *recordingSink) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	sort.Strings(ev)
	return ev
}

func podManifest(name, cmd string) string {
	return strings.NewReplacer("name: web", "name: "+name, "3600", cmd).Replace(podYAML)
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSourceFolder(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zap.InfoLevel)
	sink := &recordingSink{running: map[string]*corev1.Pod{}}
	changes := 0
	s := NewSource(Config{Path: dir, NodeName: "n1", Sink: sink, OnChange: func() { changes++ }, Logger: zap.New(core)})

	write(t, filepath.Join(dir, "a.yaml"), podManifest("a", "3600"))
	write(t, filepath.Join(dir, "b.json"), `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},"spec":{"containers":[{"name":"c","image":"i:1"}]}}`)
	write(t, filepath.Join(dir, "bad.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: []}\n")
	write(t, filepath.Join(dir, ".hidden.yaml"), podManifest("hidden", "3600"))
	write(t, filepath.Join(dir, "z-dup.yaml"), podManifest("a", "1"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub", "c.yaml"), podManifest("c", "3600"))

	s.Sync()
	if diff := cmp.Diff([]string{"+a-n1", "+b-n1"}, sink.take()); diff != "" {
		t.Errorf("first read (-want +got):\n%s", diff)
	}
	if !s.Synced() || changes != 1 {
		t.Errorf("Synced %v, OnChange calls %d; want true, 1", s.Synced(), changes)
	}
	bad := logs.FilterMessage("bad static pod manifest: skipped").All()
	if len(bad) != 1 || bad[0].ContextMap()["file"] != filepath.Join(dir, "bad.yaml") ||
		!strings.Contains(bad[0].ContextMap()["error"].(string), "spec.containers: required") {
		t.Errorf("bad manifest log lines = %+v; want one naming bad.yaml and its error", bad)
	}
	if dup := logs.FilterMessage("static pod skipped: another manifest has a pod of that name").All(); len(dup) != 1 {
		t.Errorf("duplicate name log lines = %d, want 1", len(dup))
	}

	// Nothing changed: nothing happens, the bad manifest is not logged
	// again.
	s.Sync()
	if ev := sink.take(); len(ev) != 0 || changes != 1 {
		t.Errorf("second read: events %v, OnChange calls %d; want none, 1", ev, changes)
	}
	if n := logs.FilterMessage("bad static pod manifest: skipped").Len(); n != 1 {
		t.Errorf("bad manifest logged %d times, want once", n)
	}
	before := s.Pods()

	// A changed manifest: the old pod goes and the new one (another UID)
	// comes. A removed one goes.
	write(t, filepath.Join(dir, "a.yaml"), podManifest("a", "7200"))
	if err := os.Remove(filepath.Join(dir, "b.json")); err != nil {
		t.Fatal(err)
	}
	s.Sync()
	if diff := cmp.Diff([]string{"+a-n1", "-a-n1", "-b-n1"}, sink.take()); diff != "" {
		t.Errorf("after change (-want +got):\n%s", diff)
	}
	after := s.Pods()
	if len(after) != 1 || after[0].UID == before[0].UID {
		t.Errorf("pods after the change: %d, uid %v (was %v)", len(after), after[0].UID, before[0].UID)
	}
	if changes != 2 {
		t.Errorf("OnChange calls %d, want 2", changes)
	}

	// Fixing the bad manifest runs its pod.
	write(t, filepath.Join(dir, "bad.yaml"), podManifest("bad", "3600"))
	s.Sync()
	if diff := cmp.Diff([]string{"+bad-n1"}, sink.take()); diff != "" {
		t.Errorf("after the fix (-want +got):\n%s", diff)
	}

	// The folder gone: no static pods.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s.Sync()
	if diff := cmp.Diff([]string{"-a-n1", "-bad-n1"}, sink.take()); diff != "" {
		t.Errorf("folder removed (-want +got):\n%s", diff)
	}
	if len(s.Pods()) != 0 || len(sink.running) != 0 {
		t.Errorf("pods left: %v", s.Pods())
	}
}

func TestSourceSingleFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pods.yaml")
	write(t, file, podManifest("a", "3600")+"---\n"+podManifest("b", "3600"))
	sink := &recordingSink{running: map[string]*corev1.Pod{}}
	s := NewSource(Config{Path: file, NodeName: "n1", Sink: sink})
	s.Sync()
	if diff := cmp.Diff([]string{"+a-n1", "+b-n1"}, sink.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, p := range s.Pods() {
		if p.Annotations[ConfigSourceAnnotation] != FileSource || p.Annotations[ConfigHashAnnotation] != string(p.UID) {
			t.Errorf("pod %s annotations %v", p.Name, p.Annotations)
		}
	}
}

func TestSourceNoPath(t *testing.T) {
	sink := &recordingSink{running: map[string]*corev1.Pod{}}
	s := NewSource(Config{Sink: sink})
	s.Sync()
	if !s.Synced() || len(s.Pods()) != 0 || len(sink.take()) != 0 {
		t.Errorf("no path: synced %v pods %v", s.Synced(), s.Pods())
	}
}
