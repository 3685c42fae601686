package logs

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStreamWriter(t *testing.T) {
	p := ContainerPath(t.TempDir(), "ns", "pod", "uid", "c", 0)
	if want := filepath.Join("ns_pod_uid", "c", "0.log"); !strings.HasSuffix(p, want) {
		t.Fatalf("path %q does not end in %q", p, want)
	}
	f, err := Create(p, Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	f.now = func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC) }
	out, errw := f.Stream("stdout"), f.Stream("stderr")
	for _, s := range []string{"hel", "lo\nwor", "ld\n", "tail"} {
		if _, err := out.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = errw.Write([]byte("oops\n"))
	_ = out.Close()
	_ = errw.Close()
	_ = f.Close()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ts := "2024-01-02T03:04:05.000000006Z"
	want := ts + " stdout F hello\n" + ts + " stdout F world\n" + ts + " stderr F oops\n" + ts + " stdout F tail\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c", "0.log")
	f, err := Create(p, Rotation{MaxSize: 200, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	f.now = func() time.Time { tick = tick.Add(time.Second); return tick }
	w := f.Stream("stdout")
	for i := range 40 {
		if _, err := fmt.Fprintf(w, "line %02d of forty, some padding here\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// The current file, the newest rotated one plain, the one before gzipped.
	if len(names) != 3 || names[0] != "0.log" || !strings.HasSuffix(names[1], ".gz") || strings.HasSuffix(names[2], ".gz") {
		t.Fatalf("files %q, want 0.log, one gzipped and one plain rotated file", names)
	}
	for _, n := range names {
		st, _ := os.Stat(filepath.Join(filepath.Dir(p), n))
		if !strings.HasSuffix(n, ".gz") && st.Size() > 200 {
			t.Errorf("%s holds %d bytes, over the 200 of MaxSize", n, st.Size())
		}
	}
	cur, _ := os.ReadFile(p)
	if !strings.Contains(string(cur), "line 39 of forty") {
		t.Errorf("the current file lacks the last line: %q", cur)
	}
	zf, _ := os.Open(filepath.Join(filepath.Dir(p), names[1]))
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(zr); err != nil || !strings.Contains(string(b), "stdout F line") {
		t.Errorf("gzipped rotated file: %q, %v", b, err)
	}
}
