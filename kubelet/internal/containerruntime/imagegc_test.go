package containerruntime

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
)

type fakeImages struct {
	recs      []imageRecord
	used      map[string]bool
	capacity  uint64
	available uint64
	removed   []string
}

func (f *fakeImages) images(context.Context) ([]imageRecord, error) {
	return append([]imageRecord(nil), f.recs...), nil
}
func (f *fakeImages) inUse(context.Context) (map[string]bool, error) { return f.used, nil }
func (f *fakeImages) usage() (uint64, uint64, error)                 { return f.capacity, f.available, nil }
func (f *fakeImages) remove(_ context.Context, name string) error {
	f.removed = append(f.removed, name)
	for i, r := range f.recs {
		for _, n := range r.names {
			if n == name {
				f.available += uint64(r.size)
				f.recs = append(f.recs[:i], f.recs[i+1:]...)
				return nil
			}
		}
	}
	return nil
}

func TestImageGC(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	img := func(name string, size int64, created int) imageRecord {
		return imageRecord{names: []string{name}, digest: "sha256:" + name, size: size, created: t0.Add(time.Duration(created) * time.Second)}
	}
	for _, tc := range []struct {
		name      string
		available uint64 // of 1000
		used      []string
		minAge    time.Duration
		want      []string
		wantErr   bool
	}{
		{name: "below the high threshold", available: 200, want: nil},
		{name: "at 85%: down to 80%, oldest unused first", available: 150, want: []string{"docker.io/library/old:1"}},
		{name: "at 90%: more go", available: 100, want: []string{"docker.io/library/old:1", "docker.io/library/mid:1"}},
		{name: "in use, never", available: 100, used: []string{"docker.io/library/old:1"}, want: []string{"docker.io/library/mid:1", "docker.io/library/new:1"}},
		{name: "in use by digest", available: 100, used: []string{"sha256:docker.io/library/old:1"}, want: []string{"docker.io/library/mid:1", "docker.io/library/new:1"}},
		{name: "too young", available: 50, minAge: time.Hour, want: nil, wantErr: true},
		{name: "not enough to free", available: 0, want: []string{"docker.io/library/old:1", "docker.io/library/mid:1", "docker.io/library/new:1"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeImages{
				recs: []imageRecord{
					img("docker.io/coxswain/pause:latest", 100, 0),
					img("docker.io/library/new:1", 60, 3),
					img("docker.io/library/old:1", 60, 1),
					img("docker.io/library/mid:1", 60, 2),
				},
				used: map[string]bool{}, capacity: 1000, available: tc.available,
			}
			for _, u := range tc.used {
				store.used[u] = true
			}
			g, err := newImageGC(ImageGCConfig{HighThreshold: 85, LowThreshold: 80, MinAge: tc.minAge,
				PinnedImages: []string{"coxswain/pause:latest"}, Logger: zaptest.NewLogger(t)}, store)
			if err != nil {
				t.Fatal(err)
			}
			now := t0.Add(time.Hour)
			g.now = func() time.Time { return now }
			got, err := g.Collect(context.Background())
			if (err != nil) != tc.wantErr {
				t.Errorf("Collect error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			for _, n := range store.removed {
				if n == "docker.io/coxswain/pause:latest" {
					t.Error("the pause image was removed")
				}
			}
		})
	}
}

// TestImageGCLeastRecentlyUsed removes the image unused for longest first,
// whatever its age.
func TestImageGCLeastRecentlyUsed(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	store := &fakeImages{
		recs: []imageRecord{
			{names: []string{"a"}, digest: "sha256:a", size: 60, created: t0},
			{names: []string{"b"}, digest: "sha256:b", size: 60, created: t0.Add(time.Second)},
		},
		used: map[string]bool{"a": true}, capacity: 1000, available: 500,
	}
	g, err := newImageGC(ImageGCConfig{HighThreshold: 85, LowThreshold: 80, MinAge: time.Minute}, store)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	g.now = func() time.Time { return now }
	if _, err := g.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// a stops being used later than b was ever used.
	now = now.Add(10 * time.Minute)
	if _, err := g.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.used = map[string]bool{}
	now = now.Add(10 * time.Minute)
	store.available = 140
	got, err := g.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"b"}, got); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
}

func TestImageGCConfig(t *testing.T) {
	if _, err := newImageGC(ImageGCConfig{HighThreshold: 70, LowThreshold: 80}, &fakeImages{}); err == nil {
		t.Error("low above high: no error")
	}
}
