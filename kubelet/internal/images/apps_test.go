package images

import (
	"archive/tar"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func imagePaths(t *testing.T, img v1.Image) map[string]bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimPrefix(h.Name, "/")] = true
	}
}

func TestSharedLibrariesAndRedisImage(t *testing.T) {
	host := "/usr/bin/env"
	if _, err := os.Stat(host); err != nil {
		t.Skipf("%s not found", host)
	}
	libs, err := SharedLibraries(host)
	if err != nil {
		t.Fatal(err)
	}
	var libc, loader bool
	for _, l := range libs {
		libc = libc || strings.Contains(l, "libc.so")
		loader = loader || strings.Contains(l, "ld-linux")
	}
	if !libc || !loader {
		t.Fatalf("libraries of %s = %v, want libc and the loader", host, libs)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed")
	}
	if static, err := SharedLibraries("/bin/busybox"); err != nil || len(static) != 0 {
		t.Fatalf("static busybox libraries = %v %v, want none", static, err)
	}
	img, err := Redis("/bin/busybox", host)
	if err != nil {
		t.Fatal(err)
	}
	paths := imagePaths(t, img)
	for _, p := range append([]string{"/usr/bin/redis-server", "/bin/sh", "/bin/busybox"}, libs...) {
		if !paths[p] {
			t.Errorf("redis image lacks %s", p)
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "redis-server" {
		t.Fatalf("redis entrypoint = %v %v", cfg, err)
	}
}

// Build pushes every image to a registry and names the archives after it.
func TestBuildAndPush(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	out := t.TempDir()
	paths, err := Build(Options{OutDir: out, BusyboxBinary: "/bin/busybox", GuestbookBinary: "/bin/busybox", Push: u.Host})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || filepath.Base(paths[1]) != "guestbook.tar" {
		t.Fatalf("archives = %v", paths)
	}
	for _, ref := range []string{BusyboxImage, GuestbookImage} {
		tag, err := name.NewTag(u.Host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Image(tag); err != nil {
			t.Fatalf("pushed %s not in the registry: %v", ref, err)
		}
	}
}
