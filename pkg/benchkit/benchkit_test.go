package benchkit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	if got := Percentile([]int{}, 50); got != 0 {
		t.Errorf("empty: got %d", got)
	}
	one := []time.Duration{7}
	for _, p := range []float64{0, 50, 99, 100} {
		if got := Percentile(one, p); got != 7 {
			t.Errorf("single value, p%v: got %v", p, got)
		}
	}
	hundred := make([]int, 100) // 1..100
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		p    float64
		want int
	}{{0, 1}, {1, 1}, {50, 50}, {90, 90}, {99, 99}, {99.5, 100}, {100, 100}, {-3, 1}, {250, 100}} {
		if got := Percentile(hundred, c.p); got != c.want {
			t.Errorf("1..100, p%v: got %d, want %d", c.p, got, c.want)
		}
	}
	// Nearest rank on a small set: p50 of 4 values is the 2nd, p99 the 4th.
	four := []int32{10, 20, 30, 40}
	if got := Percentile(four, 50); got != 20 {
		t.Errorf("p50 of 4: got %d", got)
	}
	if got := Percentile(four, 99); got != 40 {
		t.Errorf("p99 of 4: got %d", got)
	}
	unsorted := []time.Duration{5, 1, 4, 2, 3}
	if got := Median(unsorted); got != 3 {
		t.Errorf("median: got %v", got)
	}
	if unsorted[0] != 5 {
		t.Error("Median changed its input")
	}
	if got := MinDuration(unsorted); got != 1 {
		t.Errorf("min: got %v", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime=150 and stime=50 ticks.
	stat := []byte("4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615")
	got, err := parseStatCPU(stat, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got != 2*time.Second {
		t.Errorf("got %v, want 2s", got)
	}
	if _, err := parseStatCPU([]byte("garbage"), 100); err == nil {
		t.Error("no error for malformed stat")
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := Num(n); got != want {
			t.Errorf("Num(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0", 420 * time.Microsecond: "420 µs", 4210 * time.Microsecond: "4.21 ms",
		85300 * time.Microsecond: "85.3 ms", 1230 * time.Millisecond: "1.23 s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := FormatTarget(50 * time.Millisecond); got != "50 ms" {
		t.Errorf("FormatTarget(50ms) = %q", got)
	}
	if got := FormatTarget(time.Second); got != "1 s" {
		t.Errorf("FormatTarget(1s) = %q", got)
	}
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := WriteSection(path, "a", "# A\n\nfirst\n"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "b", "# B\n\nsecond"); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "a", "# A\n\nthird\n"); err != nil {
		t.Fatal(err)
	}
	got := read()
	if !strings.HasPrefix(got, fileHeader) {
		t.Errorf("no header:\n%s", got)
	}
	want := "<!-- begin: a -->\n# A\n\nthird\n<!-- end: a -->\n\n<!-- begin: b -->\n# B\n\nsecond\n<!-- end: b -->\n"
	if !strings.HasSuffix(got, want) || strings.Contains(got, "first") {
		t.Errorf("sections:\n%s\nwant suffix:\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte("<!-- begin: a -->\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "a", "x"); err == nil || !strings.Contains(err.Error(), "only one of its markers") {
		t.Errorf("half a section: error %v", err)
	}
	if got := read(); got != "<!-- begin: a -->\nbroken\n" {
		t.Errorf("a refused write changed the file: %q", got)
	}
}

func TestWaitIdle(t *testing.T) {
	ctx := context.Background()
	// This process, asleep but for the test, goes idle.
	if _, err := WaitIdle(ctx, []int{os.Getpid()}, 0.5, 100*time.Millisecond, 10*time.Second); err != nil {
		t.Fatalf("idle process: %v", err)
	}
	// A spinning goroutine keeps it busy past the limit.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	defer func() { close(stop); <-done }()
	if _, err := WaitIdle(ctx, []int{os.Getpid()}, 0.01, 100*time.Millisecond, 500*time.Millisecond); err == nil {
		t.Fatal("a spinning process counted as idle")
	}
	if _, err := WaitIdle(ctx, []int{1 << 30}, 0.5, 100*time.Millisecond, time.Second); err == nil {
		t.Fatal("a missing process counted as idle")
	}
}
