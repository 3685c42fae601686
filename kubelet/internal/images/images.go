// Package images builds Coxswain's OCI images from static binaries with
// go-containerregistry and writes them as OCI archives (an OCI image layout in
// a tar file), the format the kubelet imports from its air-gap folder.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image names of the images this package builds.
const (
	PauseImage   = "coxswain/pause:latest"
	BusyboxImage = "coxswain/busybox:latest"
)

// AnnotationImageName is the index annotation containerd's importer reads
// the image name from.
const AnnotationImageName = "io.containerd.image.name"

// BusyboxApplets are the names linked to busybox in the busybox image.
var BusyboxApplets = []string{
	"sh", "ash", "sleep", "echo", "cat", "ls", "wget", "nc", "env", "true", "false",
	"ps", "kill", "mkdir", "rm", "cp", "mv", "ln", "touch", "head", "tail", "grep",
	"sed", "awk", "tr", "wc", "date", "hostname", "ip", "ping", "nslookup", "id",
	"uname", "test", "printf", "seq", "sort", "uniq", "chmod", "chown", "df", "du",
	"find", "xargs", "vi", "tee", "whoami", "pwd", "yes", "dd", "httpd", "netstat",
	"tar", "gzip", "stty", "stat", "basename", "dirname", "sha256sum", "md5sum", "less",
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// File is one entry of an image layer.
type File struct {
	Path     string // absolute path in the image
	Mode     int64
	Dir      bool
	Linkname string // a symlink when set
	Content  []byte
}

// Pause builds the pause image from a static pause binary.
func Pause(binary string) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read pause binary: %w", err)
	}
	return FromFiles([]File{{Path: "/pause", Mode: 0o755, Content: data}},
		v1.Config{Entrypoint: []string{"/pause"}, Env: []string{"PATH=" + defaultPath}})
}

// Busybox builds the busybox image from a static busybox binary, with the
// applets of BusyboxApplets as symlinks in /bin.
func Busybox(binary string) (v1.Image, error) {
	files, err := busyboxFiles(binary)
	if err != nil {
		return nil, err
	}
	return FromFiles(files, v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=" + defaultPath}})
}

// busyboxFiles are the busybox image's entries.
func busyboxFiles(binary string) ([]File, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read busybox binary: %w", err)
	}
	files := []File{
		{Path: "/bin", Dir: true, Mode: 0o755},
		{Path: "/bin/busybox", Mode: 0o755, Content: data},
		{Path: "/etc", Dir: true, Mode: 0o755},
		{Path: "/etc/passwd", Mode: 0o644, Content: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "/etc/group", Mode: 0o644, Content: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "/root", Dir: true, Mode: 0o700},
		{Path: "/tmp", Dir: true, Mode: 0o1777},
		{Path: "/var", Dir: true, Mode: 0o755},
		{Path: "/usr", Dir: true, Mode: 0o755},
		{Path: "/usr/bin", Dir: true, Mode: 0o755},
	}
	for _, a := range BusyboxApplets {
		files = append(files, File{Path: "/bin/" + a, Mode: 0o777, Linkname: "busybox"})
	}
	return files, nil
}

// FromFiles builds a one-layer OCI image for the machine's architecture.
func FromFiles(files []File, cfg v1.Config) (v1.Image, error) {
	layerData, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "coxswain-images", Created: v1.Time{Time: time.Unix(0, 0).UTC()}}})
}

func tarFiles(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.Path[1:], Mode: f.Mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case f.Linkname != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Linkname
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Content); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// NormalizeName returns the fully qualified name containerd uses for ref
// ("coxswain/pause" is "docker.io/coxswain/pause:latest").
func NormalizeName(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("parse image name %q: %w", ref, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// WriteArchive writes img, named ref, as an OCI archive at path.
func WriteArchive(path, ref string, img v1.Image) error {
	full, err := NormalizeName(ref)
	if err != nil {
		return err
	}
	named, _ := reference.ParseNormalizedNamed(full)
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	dir, err := os.MkdirTemp("", "coxswain-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		AnnotationImageName:                 full,
		"org.opencontainers.image.ref.name": tag,
	})); err != nil {
		return fmt.Errorf("image layout: %w", err)
	}
	tmp := path + ".tmp"
	if err := tarDir(dir, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// tarDir writes the regular files and folders under dir into a tar file.
func tarDir(dir, out string) error {
	var paths []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			f.Close()
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		} else {
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		if !fi.IsDir() {
			src, err := os.Open(p)
			if err != nil {
				f.Close()
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Options says which images to build and where.
type Options struct {
	OutDir          string
	PauseBinary     string // empty: no pause image
	BusyboxBinary   string // empty: no busybox image
	RedisBinary     string // empty: no redis image (needs BusyboxBinary)
	GuestbookBinary string // empty: no guestbook image
	// Push, when set (host:port), also pushes every image to that registry
	// over plain HTTP, and names the archives <Push>/<image>.
	Push string
}

// Build writes the archives the options ask for into OutDir and returns
// their paths.
func Build(o Options) ([]string, error) {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	build := func(file, ref string, mk func(string) (v1.Image, error), bin string) error {
		if bin == "" {
			return nil
		}
		img, err := mk(bin)
		if err != nil {
			return fmt.Errorf("build %s: %w", ref, err)
		}
		if o.Push != "" {
			if _, err := Push(o.Push, ref, img); err != nil {
				return err
			}
			ref = o.Push + "/" + ref
		}
		p := filepath.Join(o.OutDir, file)
		if err := WriteArchive(p, ref, img); err != nil {
			return fmt.Errorf("write %s: %w", ref, err)
		}
		out = append(out, p)
		return nil
	}
	if err := build("pause.tar", PauseImage, Pause, o.PauseBinary); err != nil {
		return nil, err
	}
	if err := build("busybox.tar", BusyboxImage, Busybox, o.BusyboxBinary); err != nil {
		return nil, err
	}
	if o.RedisBinary != "" {
		if err := build("redis.tar", RedisImage, func(bin string) (v1.Image, error) { return Redis(o.BusyboxBinary, bin) }, o.RedisBinary); err != nil {
			return nil, err
		}
	}
	if err := build("guestbook.tar", GuestbookImage, Guestbook, o.GuestbookBinary); err != nil {
		return nil, err
	}
	return out, nil
}
