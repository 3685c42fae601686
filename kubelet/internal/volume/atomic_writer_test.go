package volume

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var tsDirRE = regexp.MustCompile(`^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$`)

// visible reads the files a container sees: every path under dir not
// starting with "..", through the symlinks, with its content and mode.
func visible(t *testing.T, dir string) map[string]FileProjection {
	t.Helper()
	out := map[string]FileProjection{}
	var walk func(rel string)
	walk = func(rel string) {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if rel == "" && len(e.Name()) >= 2 && e.Name()[:2] == ".." {
				continue
			}
			p := filepath.Join(rel, e.Name())
			info, err := os.Stat(filepath.Join(dir, p))
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if info.IsDir() {
				walk(p)
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			out[p] = FileProjection{Data: b, Mode: int32(info.Mode().Perm())}
		}
	}
	walk("")
	return out
}

// layout is what the volume's directory holds at its top level: the
// ..data target and the names with their symlink targets.
func layout(t *testing.T, dir string) (string, map[string]string) {
	t.Helper()
	data, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil {
		t.Fatalf("..data: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	var tsDirs []string
	for _, e := range entries {
		switch {
		case e.Name() == dataDirName:
		case tsDirRE.MatchString(e.Name()):
			tsDirs = append(tsDirs, e.Name())
		case e.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(filepath.Join(dir, e.Name()))
			links[e.Name()] = target
		default:
			t.Errorf("unexpected entry %q (%v)", e.Name(), e.Type())
		}
	}
	sort.Strings(tsDirs)
	if len(tsDirs) != 1 || tsDirs[0] != data {
		t.Errorf("timestamped directories %q, ..data -> %q; want exactly the one ..data points to", tsDirs, data)
	}
	return data, links
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	// An orphan of an interrupted earlier write goes at the next one.
	if err := os.Mkdir(filepath.Join(dir, "..2020_01_02_03_04_05.123"), 0o755); err != nil {
		t.Fatal(err)
	}

	first := map[string]FileProjection{
		"greeting":    {Data: []byte("hello"), Mode: 0o644},
		"nested/deep": {Data: []byte("x"), Mode: 0o400},
		"gone":        {Data: []byte("soon removed"), Mode: 0o600},
	}
	changed, err := writeAtomic(dir, first)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	ts1, links := layout(t, dir)
	if !tsDirRE.MatchString(ts1) {
		t.Errorf("..data -> %q, want a timestamped directory", ts1)
	}
	wantLinks := map[string]string{"greeting": "..data/greeting", "nested": "..data/nested", "gone": "..data/gone"}
	if d := cmp.Diff(wantLinks, links); d != "" {
		t.Errorf("symlinks (-want +got):\n%s", d)
	}
	if d := cmp.Diff(first, visible(t, dir)); d != "" {
		t.Errorf("files after the first write (-want +got):\n%s", d)
	}

	// The same payload again: nothing is written.
	changed, err = writeAtomic(dir, first)
	if err != nil || changed {
		t.Fatalf("same payload: changed %v, %v; want no write", changed, err)
	}
	if ts, _ := layout(t, dir); ts != ts1 {
		t.Errorf("..data moved to %q for an unchanged payload", ts)
	}

	// An update: a value changes, a key goes, a key comes. ..data is
	// swapped to a new directory and the old one is removed.
	second := map[string]FileProjection{
		"greeting":    {Data: []byte("hello again"), Mode: 0o644},
		"nested/deep": {Data: []byte("x"), Mode: 0o400},
		"new":         {Data: []byte("fresh"), Mode: 0o640},
	}
	changed, err = writeAtomic(dir, second)
	if err != nil || !changed {
		t.Fatalf("update: changed %v, %v", changed, err)
	}
	ts2, links := layout(t, dir)
	if ts2 == ts1 {
		t.Errorf("..data still -> %q after an update", ts2)
	}
	if _, err := os.Lstat(filepath.Join(dir, ts1)); !os.IsNotExist(err) {
		t.Errorf("old timestamped directory %s still there: %v", ts1, err)
	}
	wantLinks = map[string]string{"greeting": "..data/greeting", "nested": "..data/nested", "new": "..data/new"}
	if d := cmp.Diff(wantLinks, links); d != "" {
		t.Errorf("symlinks after the update (-want +got):\n%s", d)
	}
	if d := cmp.Diff(second, visible(t, dir)); d != "" {
		t.Errorf("files after the update (-want +got):\n%s", d)
	}

	// A mode change alone is an update too.
	third := map[string]FileProjection{
		"greeting":    {Data: []byte("hello again"), Mode: 0o600},
		"nested/deep": {Data: []byte("x"), Mode: 0o400},
		"new":         {Data: []byte("fresh"), Mode: 0o640},
	}
	changed, err = writeAtomic(dir, third)
	if err != nil || !changed {
		t.Fatalf("mode change: changed %v, %v", changed, err)
	}
	layout(t, dir)
	if d := cmp.Diff(third, visible(t, dir)); d != "" {
		t.Errorf("files after the mode change (-want +got):\n%s", d)
	}

	// Everything removed: only ..data and its empty directory are left.
	if _, err := writeAtomic(dir, map[string]FileProjection{}); err != nil {
		t.Fatal(err)
	}
	if _, links := layout(t, dir); len(links) != 0 {
		t.Errorf("symlinks left after an empty payload: %v", links)
	}
}

func TestWriteAtomicRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", "/etc/passwd", "..", "../escape", "a/../../b", "..hidden", "a/..b", "x/.."} {
		t.Run(p, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := writeAtomic(dir, map[string]FileProjection{p: {Data: []byte("x"), Mode: 0o644}}); err == nil {
				t.Errorf("path %q: got no error", p)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("path %q: wrote %d entries", p, len(entries))
			}
		})
	}
	// A file that is also another file's directory.
	if _, err := writeAtomic(t.TempDir(), map[string]FileProjection{"a": {Mode: 0o644}, "a/b": {Mode: 0o644}}); err == nil {
		t.Error("a and a/b: got no error")
	}
}

// The files are switched at once: a reader holding the old directory
// keeps reading old content, and a new lookup reads only new content.
func TestWriteAtomicSwitchesAtOnce(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeAtomic(dir, map[string]FileProjection{"a": {Data: []byte("1"), Mode: 0o644}, "b": {Data: []byte("1"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := writeAtomic(dir, map[string]FileProjection{"a": {Data: []byte("2"), Mode: 0o644}, "b": {Data: []byte("2"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := old.Read(b); err != nil || string(b) != "1" {
		t.Errorf("open file read %q, %v; want the old content 1", b, err)
	}
	for _, name := range []string{"a", "b"} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != "2" {
			t.Errorf("%s = %q, want 2", name, got)
		}
	}
}
