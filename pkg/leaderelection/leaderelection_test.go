package leaderelection

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestLeaseValid(t *testing.T) {
	base := time.Unix(1000, 0)
	tests := []struct {
		name     string
		observed time.Time
		seconds  int32
		now      time.Time
		want     bool
	}{
		{"just observed", base, 15, base, true},
		{"within duration", base, 15, base.Add(14999 * time.Millisecond), true},
		{"exactly expired", base, 15, base.Add(15 * time.Second), false},
		{"long expired", base, 15, base.Add(time.Hour), false},
		{"zero duration", base, 0, base, false},
		{"released (1s)", base, 1, base.Add(1500 * time.Millisecond), false},
		{"clock behind observation", base, 15, base.Add(-time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leaseValid(tt.observed, tt.seconds, tt.now); got != tt.want {
				t.Errorf("leaseValid(%v, %d, %v) = %v, want %v", tt.observed, tt.seconds, tt.now, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func(c *Config) {}
	cb := Callbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr bool
	}{
		{"defaults", ok, false},
		{"no name", func(c *Config) { c.Name = "" }, true},
		{"no identity", func(c *Config) { c.Identity = "" }, true},
		{"renew deadline not below lease duration", func(c *Config) { c.RenewDeadline = c.LeaseDuration }, true},
		{"retry period too long for deadline", func(c *Config) { c.RetryPeriod = 9 * time.Second }, true},
		{"sub-second lease", func(c *Config) {
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 500*time.Millisecond, 100*time.Millisecond, 10*time.Millisecond
		}, true},
		{"no callbacks", func(c *Config) { c.Callbacks = Callbacks{} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Name: "x", Identity: "me", Callbacks: cb}
			c.setDefaults()
			tt.edit(&c)
			if err := c.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// fakeLeases stores one lease with compare-and-swap updates, as the
// apiserver does.
type fakeLeases struct {
	mu        sync.Mutex
	lease     *coordinationv1.Lease
	rv        int
	failWrite atomic.Bool
}

var leaseGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (f *fakeLeases) Get(_ context.Context, _, name string) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == nil {
		return nil, apierrors.NewNotFound(leaseGR, name)
	}
	return f.lease.DeepCopy(), nil
}

func (f *fakeLeases) Create(_ context.Context, _ string, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease != nil {
		return nil, apierrors.NewAlreadyExists(leaseGR, l.Name)
	}
	f.rv++
	l = l.DeepCopy()
	l.ResourceVersion = strconv.Itoa(f.rv)
	f.lease = l
	return l.DeepCopy(), nil
}

func (f *fakeLeases) Update(_ context.Context, _ string, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	if f.failWrite.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == nil || l.ResourceVersion != f.lease.ResourceVersion {
		return nil, apierrors.NewConflict(leaseGR, l.Name, errors.New("the object has been modified"))
	}
	f.rv++
	l = l.DeepCopy()
	l.ResourceVersion = strconv.Itoa(f.rv)
	f.lease = l
	return l.DeepCopy(), nil
}

func (f *fakeLeases) holder() (string, int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == nil {
		return "", 0
	}
	r := recordOf(f.lease)
	return r.HolderIdentity, r.LeaseTransitions
}

// candidate is an elector with a skewable clock and recorded callbacks.
type candidate struct {
	e       *Elector
	skew    atomic.Int64
	leading atomic.Bool
	started chan struct{}
	stopped chan struct{}
	done    chan struct{} // closed when Run returned, with err set
	err     error
	cancel  context.CancelFunc
}

// wait waits for Run to return and gives its error.
func (c *candidate) wait(t *testing.T) error {
	t.Helper()
	waitFor(t, c.e.cfg.Identity+" Run returned", c.done)
	return c.err
}

func newCandidate(t *testing.T, leases *fakeLeases, id string, release bool) *candidate {
	c := &candidate{started: make(chan struct{}), stopped: make(chan struct{}), done: make(chan struct{})}
	cfg := Config{
		Name: "test", Identity: id, ReleaseOnCancel: release,
		LeaseDuration: time.Second, RenewDeadline: 200 * time.Millisecond, RetryPeriod: 10 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
		Callbacks: Callbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.leading.Store(true)
				close(c.started)
				<-ctx.Done()
				c.leading.Store(false)
			},
			OnStoppedLeading: func() { close(c.stopped) },
		},
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c.e = newElector(cfg, leases)
	c.e.now = func() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.err = c.e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		c.wait(t)
	})
	return c
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestAcquireTakeoverAfterExpiry(t *testing.T) {
	leases := &fakeLeases{}
	a := newCandidate(t, leases, "a", false)
	waitFor(t, "a leading", a.started)
	if h, tr := leases.holder(); h != "a" || tr != 0 {
		t.Fatalf("lease holder %q transitions %d, want a, 0", h, tr)
	}

	b := newCandidate(t, leases, "b", false)
	// b cannot take a lease that a keeps renewing, even once b's clock has
	// moved past the lease duration: every renewal is a new observation.
	deadline := time.Now().Add(5 * time.Second)
	for b.e.GetLeader() != "a" {
		if time.Now().After(deadline) {
			t.Fatal("b never observed a as the leader")
		}
		time.Sleep(time.Millisecond)
	}
	b.skew.Store(int64(2 * time.Second))
	time.Sleep(50 * time.Millisecond) // a negative check: b keeps observing renewals
	if b.leading.Load() {
		t.Fatal("b leads while a renews")
	}

	// a stops without releasing; b takes over once the lease expires on
	// b's clock.
	a.cancel()
	if err := a.wait(t); err != nil {
		t.Errorf("a.Run() = %v, want nil", err)
	}
	waitFor(t, "a stopped", a.stopped)
	b.skew.Store(int64(4 * time.Second))
	waitFor(t, "b leading", b.started)
	if h, tr := leases.holder(); h != "b" || tr != 1 {
		t.Errorf("lease holder %q transitions %d, want b, 1", h, tr)
	}
}

func TestReleaseOnCancel(t *testing.T) {
	leases := &fakeLeases{}
	a := newCandidate(t, leases, "a", true)
	waitFor(t, "a leading", a.started)
	b := newCandidate(t, leases, "b", false)
	a.cancel()
	waitFor(t, "a stopped", a.stopped)
	if a.leading.Load() {
		t.Error("a's OnStartedLeading still running after Run returned")
	}
	// No clock skew: the released lease is free at once.
	waitFor(t, "b leading", b.started)
	if h, tr := leases.holder(); h != "b" || tr != 1 {
		t.Errorf("lease holder %q transitions %d, want b, 1", h, tr)
	}
}

func TestLeaseLostWhenRenewalFails(t *testing.T) {
	leases := &fakeLeases{}
	a := newCandidate(t, leases, "a", false)
	waitFor(t, "a leading", a.started)
	leases.failWrite.Store(true)
	if err := a.wait(t); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Run() = %v, want %v", err, ErrLeaseLost)
	}
	waitFor(t, "OnStoppedLeading", a.stopped)
	if a.leading.Load() {
		t.Error("OnStartedLeading's context not cancelled")
	}
}
