package logs

import (
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
	f, err := Create(p)
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
