package images

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Image names of the demo's images.
const (
	RedisImage     = "coxswain/redis:latest"
	GuestbookImage = "coxswain/guestbook:latest"
)

// SharedLibraries lists the shared libraries a host binary links, with the
// dynamic loader, as ldd reports them (absolute paths, sorted).
func SharedLibraries(binary string) ([]string, error) {
	out, err := exec.Command("ldd", binary).CombinedOutput()
	if err != nil {
		// ldd exits non-zero for a static binary: it needs nothing.
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w", binary, err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", binary, line)
		}
		var p string
		if _, after, ok := strings.Cut(line, "=> "); ok {
			p = strings.Fields(after)[0]
		} else if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			p = f[0]
		}
		if p == "" || !strings.HasPrefix(p, "/") {
			continue // linux-vdso and the like live in the kernel
		}
		seen[p] = true
	}
	libs := make([]string, 0, len(seen))
	for p := range seen {
		libs = append(libs, p)
	}
	sort.Strings(libs)
	return libs, nil
}

// hostFiles returns image entries for host files at the same paths (links
// resolved), with their parent folders.
func hostFiles(paths []string) ([]File, error) {
	var files []File
	dirs := map[string]bool{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		for d := filepath.Dir(p); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		files = append(files, File{Path: p, Mode: 0o755, Content: data})
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	out := make([]File, 0, len(dirList)+len(files))
	for _, d := range dirList {
		out = append(out, File{Path: d, Dir: true, Mode: 0o755})
	}
	return append(out, files...), nil
}

// Redis builds the redis image from a host redis-server binary (Debian's
// redis-tools ships it as redis-check-rdb; redis picks its mode from the
// name it runs as) plus the shared libraries it links, over the busybox
// image's files so that `sh -c` works.
func Redis(busybox, redis string) (v1.Image, error) {
	base, err := busyboxFiles(busybox)
	if err != nil {
		return nil, err
	}
	libs, err := SharedLibraries(redis)
	if err != nil {
		return nil, err
	}
	extra, err := hostFiles(libs)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(redis)
	if err != nil {
		return nil, fmt.Errorf("read redis binary: %w", err)
	}
	files := mergeFiles(base, extra)
	files = append(files, File{Path: "/usr/bin/redis-server", Mode: 0o755, Content: data}, File{Path: "/data", Dir: true, Mode: 0o777})
	return FromFiles(files, v1.Config{Entrypoint: []string{"redis-server"}, WorkingDir: "/data", Env: []string{"PATH=" + defaultPath},
		ExposedPorts: map[string]struct{}{"6379/tcp": {}}})
}

// Guestbook builds the demo frontend's image from its static binary.
func Guestbook(binary string) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read guestbook binary: %w", err)
	}
	return FromFiles([]File{{Path: "/guestbook", Mode: 0o755, Content: data}},
		v1.Config{Entrypoint: []string{"/guestbook"}, Env: []string{"PATH=" + defaultPath}, ExposedPorts: map[string]struct{}{"8080/tcp": {}}})
}

// mergeFiles appends the entries of extra whose paths base does not hold.
func mergeFiles(base, extra []File) []File {
	have := map[string]bool{}
	for _, f := range base {
		have[f.Path] = true
	}
	out := append([]File{}, base...)
	for _, f := range extra {
		if !have[f.Path] {
			have[f.Path] = true
			out = append(out, f)
		}
	}
	return out
}

// Push uploads img to registry (host:port, plain HTTP) as <registry>/<ref>.
func Push(registry, ref string, img v1.Image) (string, error) {
	target := registry + "/" + ref
	tag, err := name.NewTag(target, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("image name %s: %w", target, err)
	}
	if err := remote.Write(tag, img); err != nil {
		return "", fmt.Errorf("push %s: %w", target, err)
	}
	return target, nil
}
