package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestBuildArchives(t *testing.T) {
	dir := t.TempDir()
	// Any static-ish file will do as the "binaries": the test checks the
	// image structure, not that they run.
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	paths, err := Build(Options{OutDir: out, PauseBinary: bin, BusyboxBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("got %d archives, want 2", len(paths))
	}
	for _, tc := range []struct {
		file, name, entry string
		cmd               string
		minFiles          int
	}{
		{"pause.tar", "docker.io/coxswain/pause:latest", "/pause", "", 1},
		{"busybox.tar", "docker.io/coxswain/busybox:latest", "", "sh", len(BusyboxApplets)},
	} {
		t.Run(tc.file, func(t *testing.T) {
			lay := filepath.Join(dir, "unpacked-"+tc.file)
			if err := os.MkdirAll(lay, 0o755); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command("tar", "-xf", filepath.Join(out, tc.file), "-C", lay).CombinedOutput(); err != nil {
				t.Fatalf("untar: %v: %s", err, b)
			}
			idx, err := layout.ImageIndexFromPath(lay)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != 1 {
				t.Fatalf("got %d manifests, want 1", len(im.Manifests))
			}
			desc := im.Manifests[0]
			if got := desc.Annotations[AnnotationImageName]; got != tc.name {
				t.Errorf("image name annotation = %q, want %q", got, tc.name)
			}
			if got := string(desc.MediaType); got != "application/vnd.oci.image.manifest.v1+json" {
				t.Errorf("manifest media type = %q", got)
			}
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
				t.Errorf("platform = %s/%s", cfg.OS, cfg.Architecture)
			}
			if tc.entry != "" && (len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != tc.entry) {
				t.Errorf("entrypoint = %q, want [%s]", cfg.Config.Entrypoint, tc.entry)
			}
			if tc.cmd != "" && (len(cfg.Config.Cmd) != 1 || cfg.Config.Cmd[0] != tc.cmd) {
				t.Errorf("cmd = %q, want [%s]", cfg.Config.Cmd, tc.cmd)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 1 || len(cfg.RootFS.DiffIDs) != 1 {
				t.Fatalf("got %d layers / %d diff ids, want 1", len(layers), len(cfg.RootFS.DiffIDs))
			}
			mt, _ := layers[0].MediaType()
			if string(mt) != "application/vnd.oci.image.layer.v1.tar+gzip" {
				t.Errorf("layer media type = %q", mt)
			}
		})
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"coxswain/pause":          "docker.io/coxswain/pause:latest",
		"busybox":                 "docker.io/library/busybox:latest",
		"127.0.0.1:5000/x/y:v1":   "127.0.0.1:5000/x/y:v1",
		"coxswain/busybox:latest": "docker.io/coxswain/busybox:latest",
	} {
		got, err := NormalizeName(in)
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
