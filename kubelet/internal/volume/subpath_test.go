package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

// subPathTree makes a volume with symlinks that stay inside it and some
// that leave it, next to a directory "outside" of the volume.
func subPathTree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "vol")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub", "deeper")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"sub/f": "inside", "file": "plain", "../outside/secret": "host data"}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"in":              "sub",
		"in-abs":          filepath.Join(root, "sub"),
		"in-dotdot":       "sub/../sub",
		"sub/up":          "../file",
		"sub/deeper/up2":  "../../sub/f",
		"data":            "..2026_11_23_10_00_00.1/key", // as a configMap's key -> ..data/key
		"..data":          "..2026_11_23_10_00_00.1",
		"out-abs":         "/etc",
		"out-outside":     outside,
		"out-rel":         "../outside",
		"sub/out-rel":     "../../outside/secret",
		"sub/deeper/root": "../../..",
		"loop":            "loop",
		"chain1":          "chain2",
		"chain2":          "out-rel",
	}
	if err := os.MkdirAll(filepath.Join(root, "..2026_11_23_10_00_00.1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "..2026_11_23_10_00_00.1", "key"), []byte("value"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

// fdPath is where the descriptor points on the host.
func fdPath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenInRootStaysInside(t *testing.T) {
	root, _ := subPathTree(t)
	canon, _ := filepath.EvalSymlinks(root)
	for _, tc := range []struct{ subPath, want string }{
		{"sub", "sub"},
		{"sub/f", "sub/f"},
		{"./sub/./f", "sub/f"},
		{"in", "sub"},
		{"in/f", "sub/f"},
		{"in-abs/f", "sub/f"},
		{"in-dotdot", "sub"},
		{"sub/up", "file"},
		{"sub/deeper/up2", "sub/f"},
		{"data", "..2026_11_23_10_00_00.1/key"},
		{"file", "file"},
	} {
		t.Run(tc.subPath, func(t *testing.T) {
			f, err := openInRoot(root, tc.subPath, false, 0o755)
			if err != nil {
				t.Fatalf("openInRoot(%q): %v", tc.subPath, err)
			}
			defer f.Close()
			if got, want := fdPath(t, f), filepath.Join(canon, tc.want); got != want {
				t.Errorf("openInRoot(%q) opened %s, want %s", tc.subPath, got, want)
			}
		})
	}
}

func TestOpenInRootRefusesEscapes(t *testing.T) {
	root, outside := subPathTree(t)
	for _, tc := range []struct {
		subPath string
		escape  bool // the error wraps ErrSubPathEscape
	}{
		{"..", true},
		{"../outside", true},
		{"sub/../../outside", true},
		{"/etc", false},
		{"/etc/passwd", false},
		{"out-abs", true},
		{"out-abs/passwd", true},
		{"out-outside/secret", true},
		{"out-rel", true},
		{"out-rel/secret", true},
		{"sub/out-rel", true},
		{"sub/deeper/root", true},
		{"sub/deeper/root/outside/secret", true},
		{"chain1/secret", true},
		{"out-rel/newdir", true},
		{"loop", false},
		{"file/x", false},
		{"missing", false},
	} {
		t.Run(tc.subPath, func(t *testing.T) {
			// mkdir is on where it makes sense: it must not create outside.
			f, err := openInRoot(root, tc.subPath, tc.subPath == "out-rel/newdir", 0o755)
			if err == nil {
				t.Fatalf("openInRoot(%q) opened %s; want an error", tc.subPath, fdPath(t, f))
			}
			if tc.escape && !errors.Is(err, ErrSubPathEscape) {
				t.Errorf("openInRoot(%q): %v; want an error wrapping %v", tc.subPath, err, ErrSubPathEscape)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(outside, "newdir")); !os.IsNotExist(err) {
		t.Errorf("a directory was made outside the volume: %v", err)
	}
}

func TestOpenInRootMakesMissingDirs(t *testing.T) {
	root, _ := subPathTree(t)
	f, err := openInRoot(root, "in/new/dir", true, 0o750)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	info, err := os.Stat(filepath.Join(root, "sub", "new", "dir"))
	if err != nil || !info.IsDir() || info.Mode().Perm() != 0o750 {
		t.Fatalf("sub/new/dir: %v, %v; want a directory of mode 0750", info, err)
	}
}

// bindSubPath mounts exactly the resolved path; an escaping one mounts
// nothing.
func TestBindSubPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	root, _ := subPathTree(t)
	target := filepath.Join(t.TempDir(), "subpaths", "vol", "c", "0")
	t.Cleanup(func() { _ = unmountAll(filepath.Dir(target)) })
	if err := bindSubPath(root, "in", target); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(b) != "inside" {
		t.Errorf("through the bind mount: %q, %v", b, err)
	}
	// Again, now for a file: the earlier mount is replaced.
	if err := bindSubPath(root, "data", target); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "value" {
		t.Errorf("file subPath: %q, %v", b, err)
	}
	mps, err := mountinfo.Under(target)
	if err != nil || len(mps) != 1 {
		t.Errorf("mounts at the target: %q, %v; want one", mps, err)
	}
	err = bindSubPath(root, "out-rel", target)
	if !errors.Is(err, ErrSubPathEscape) {
		t.Errorf("escaping subPath: %v", err)
	}
	if mps, _ := mountinfo.Under(target); len(mps) != 0 {
		t.Errorf("an escaping subPath left mounts: %q", mps)
	}
}
