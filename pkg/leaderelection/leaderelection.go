// Package leaderelection elects one leader among replicas through a
// coordination.k8s.io/v1 Lease, as client-go's leaderelection does: the
// leader renews the lease every RetryPeriod; others take it over once it has
// not changed for LeaseDuration as measured on their own clock. Every write
// is a compare-and-swap on the lease's resourceVersion.
package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/coxswain/coxswain/pkg/client"
	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults, as client-go's and the control-plane components'.
const (
	DefaultNamespace     = "kube-system"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
	// JitterFactor spreads the acquire retries of competing candidates.
	JitterFactor = 1.2
)

// ErrLeaseLost is returned by Run when the lease could not be renewed
// within RenewDeadline.
var ErrLeaseLost = errors.New("leader election lost")

// Callbacks are called on leadership changes.
type Callbacks struct {
	// OnStartedLeading runs in its own goroutine once the lease is held;
	// its context is cancelled when leadership ends. Required.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading is called when Run returns, whether or not it led.
	// Required.
	OnStoppedLeading func()
	// OnNewLeader is called, in its own goroutine, when a different holder
	// is observed, this candidate included. Optional.
	OnNewLeader func(identity string)
}

// Config configures an election.
type Config struct {
	Client *client.Client
	// Namespace and Name of the Lease; Namespace defaults to kube-system.
	Namespace, Name string
	// Identity of this candidate; unique among candidates (hostname_uuid).
	Identity string
	// LeaseDuration is how long non-leaders wait, from their last
	// observation of a change, before taking the lease.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps retrying a renewal before
	// giving up leadership. Less than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the pause between attempts.
	RetryPeriod time.Duration
	Callbacks   Callbacks
	// ReleaseOnCancel clears the holder when ctx is cancelled, after
	// OnStartedLeading has returned, so a successor need not wait for
	// expiry.
	ReleaseOnCancel bool
	Logger          *zap.Logger
}

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate checks a defaulted config.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("lease name is required"))
	}
	if c.Identity == "" {
		errs = append(errs, errors.New("identity is required"))
	}
	if c.LeaseDuration < time.Second {
		errs = append(errs, fmt.Errorf("leaseDuration %v is shorter than the lease's one-second resolution", c.LeaseDuration))
	}
	if c.LeaseDuration <= c.RenewDeadline {
		errs = append(errs, fmt.Errorf("leaseDuration %v must be greater than renewDeadline %v", c.LeaseDuration, c.RenewDeadline))
	}
	if c.RenewDeadline <= time.Duration(JitterFactor*float64(c.RetryPeriod)) {
		errs = append(errs, fmt.Errorf("renewDeadline %v must be greater than retryPeriod*%v (%v)", c.RenewDeadline, JitterFactor, time.Duration(JitterFactor*float64(c.RetryPeriod))))
	}
	if c.RetryPeriod < time.Millisecond {
		errs = append(errs, fmt.Errorf("retryPeriod %v is too short", c.RetryPeriod))
	}
	if c.Callbacks.OnStartedLeading == nil {
		errs = append(errs, errors.New("OnStartedLeading callback is required"))
	}
	if c.Callbacks.OnStoppedLeading == nil {
		errs = append(errs, errors.New("OnStoppedLeading callback is required"))
	}
	return errors.Join(errs...)
}

// leaseClient is the part of the typed Lease client an elector uses.
type leaseClient interface {
	Get(ctx context.Context, ns, name string) (*coordinationv1.Lease, error)
	Create(ctx context.Context, ns string, obj *coordinationv1.Lease) (*coordinationv1.Lease, error)
	Update(ctx context.Context, ns string, obj *coordinationv1.Lease) (*coordinationv1.Lease, error)
}

// record is the election state kept in a Lease's spec.
type record struct {
	HolderIdentity       string
	LeaseDurationSeconds int32
	AcquireTime          time.Time
	RenewTime            time.Time
	LeaseTransitions     int32
}

func recordOf(l *coordinationv1.Lease) record {
	var r record
	s := l.Spec
	if s.HolderIdentity != nil {
		r.HolderIdentity = *s.HolderIdentity
	}
	if s.LeaseDurationSeconds != nil {
		r.LeaseDurationSeconds = *s.LeaseDurationSeconds
	}
	if s.AcquireTime != nil {
		r.AcquireTime = s.AcquireTime.Time
	}
	if s.RenewTime != nil {
		r.RenewTime = s.RenewTime.Time
	}
	if s.LeaseTransitions != nil {
		r.LeaseTransitions = *s.LeaseTransitions
	}
	return r
}

func (r record) spec() coordinationv1.LeaseSpec {
	holder, dur, trans := r.HolderIdentity, r.LeaseDurationSeconds, r.LeaseTransitions
	acquire, renew := metav1.NewMicroTime(r.AcquireTime), metav1.NewMicroTime(r.RenewTime)
	return coordinationv1.LeaseSpec{
		HolderIdentity:       &holder,
		LeaseDurationSeconds: &dur,
		AcquireTime:          &acquire,
		RenewTime:            &renew,
		LeaseTransitions:     &trans,
	}
}

// Elector runs one candidate's election.
type Elector struct {
	cfg    Config
	leases leaseClient
	now    func() time.Time
	logger *zap.Logger

	mu sync.Mutex
	// lease is the last Lease read or written, whose resourceVersion
	// guards the next write.
	lease *coordinationv1.Lease
	// observed is the last record seen and observedTime when, on the local
	// clock, it was first seen to differ from the one before.
	observed     record
	observedTime time.Time
	reported     string

	callbacks sync.WaitGroup
}

// New validates cfg and returns an elector.
func New(cfg Config) (*Elector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("leader election config: %w", err)
	}
	if cfg.Client == nil {
		return nil, fmt.Errorf("leader election config: client is required")
	}
	return newElector(cfg, client.For[*coordinationv1.Lease](cfg.Client)), nil
}

func newElector(cfg Config, leases leaseClient) *Elector {
	return &Elector{
		cfg:    cfg,
		leases: leases,
		now:    time.Now,
		logger: cfg.Logger.Named("leaderelection").With(zap.String("lease", cfg.Namespace+"/"+cfg.Name), zap.String("identity", cfg.Identity)),
	}
}

// Run builds an elector from cfg and runs it.
func Run(ctx context.Context, cfg Config) error {
	e, err := New(cfg)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}

// IsLeader says whether this candidate held the lease at its last
// observation.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed.HolderIdentity == e.cfg.Identity
}

// GetLeader is the holder last observed.
func (e *Elector) GetLeader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed.HolderIdentity
}

// Run competes for the lease until ctx is done, then leads until the lease
// is lost or ctx is done. It returns nil when ctx ended it, ErrLeaseLost
// when renewal failed. OnStoppedLeading is called before it returns, and it
// returns only once OnStartedLeading and OnNewLeader have returned.
func (e *Elector) Run(ctx context.Context) error {
	defer e.callbacks.Wait()
	defer e.cfg.Callbacks.OnStoppedLeading()

	if !e.acquire(ctx) {
		return nil // ctx done
	}
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.callbacks.Go(func() { e.cfg.Callbacks.OnStartedLeading(leadCtx) })

	err := e.renew(ctx)
	cancel()
	if err != nil {
		e.logger.Error("failed to renew lease, leadership lost", zap.Error(err))
		return ErrLeaseLost
	}
	if e.cfg.ReleaseOnCancel {
		// Release only once the guarded work has stopped.
		e.callbacks.Wait()
		e.release(ctx)
	}
	return nil
}

// acquire retries, jittered, until the lease is held (true) or ctx is done.
func (e *Elector) acquire(ctx context.Context) bool {
	e.logger.Info("attempting to acquire leader lease")
	for {
		ok := e.tryAcquireOrRenew(ctx)
		e.maybeReportTransition()
		if ok {
			e.logger.Info("acquired leader lease")
			return true
		}
		if !sleep(ctx, jitter(e.cfg.RetryPeriod, JitterFactor)) {
			return false
		}
	}
}

// renew renews every RetryPeriod. It returns nil when ctx is done, an error
// when no renewal succeeded for RenewDeadline.
func (e *Elector) renew(ctx context.Context) error {
	for {
		deadline := e.now().Add(e.cfg.RenewDeadline)
		renewed := false
		for {
			attemptCtx, cancel := context.WithDeadline(ctx, deadline)
			renewed = e.tryAcquireOrRenew(attemptCtx)
			cancel()
			e.maybeReportTransition()
			if renewed || ctx.Err() != nil || !e.now().Before(deadline) {
				break
			}
			if !sleep(ctx, min(e.cfg.RetryPeriod, deadline.Sub(e.now()))) {
				break
			}
			if !e.now().Before(deadline) {
				break
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if !renewed {
			return fmt.Errorf("no renewal within %v", e.cfg.RenewDeadline)
		}
		if !sleep(ctx, e.cfg.RetryPeriod) {
			return nil
		}
	}
}

// tryAcquireOrRenew creates the lease, renews it if held, or takes it over
// if its holder has let it expire. It reports whether this candidate now
// holds it.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := e.now()
	desired := record{
		HolderIdentity:       e.cfg.Identity,
		LeaseDurationSeconds: int32(e.cfg.LeaseDuration / time.Second),
		AcquireTime:          now,
		RenewTime:            now,
	}

	// Fast path: we lead and the lease is still ours; write over our own
	// last version. A conflict falls back to reading it.
	e.mu.Lock()
	cached, leading := e.lease, e.observed.HolderIdentity == e.cfg.Identity && e.validAt(now)
	if leading && cached != nil {
		desired.AcquireTime = e.observed.AcquireTime
		desired.LeaseTransitions = e.observed.LeaseTransitions
	}
	e.mu.Unlock()
	if leading && cached != nil {
		err := e.write(ctx, cached, desired)
		if err == nil {
			return true
		}
		e.logger.Info("optimistic lease renewal failed, re-reading", zap.Error(err))
	}

	// 1. Read the lease, or create it.
	lease, err := e.leases.Get(ctx, e.cfg.Namespace, e.cfg.Name)
	if err != nil {
		if !apierrors.IsNotFound(err) {
			e.logger.Warn("failed to read lease", zap.Error(err))
			return false
		}
		created, err := e.leases.Create(ctx, e.cfg.Namespace, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
			Spec:       desired.spec(),
		})
		if err != nil {
			e.logger.Warn("failed to create lease", zap.Error(err))
			return false
		}
		e.setObserved(created, e.now())
		return true
	}

	// 2. Note when the record last changed, on our clock.
	e.mu.Lock()
	old := recordOf(lease)
	if e.lease == nil || !equality.Semantic.DeepEqual(lease.Spec, e.lease.Spec) {
		e.observed, e.observedTime = old, e.now()
	}
	e.lease = lease
	iAmHolder := old.HolderIdentity == e.cfg.Identity
	held := old.HolderIdentity != "" && e.validAt(now)
	e.mu.Unlock()
	if held && !iAmHolder {
		e.logger.Debug("lease is held by another candidate and has not expired", zap.String("holder", old.HolderIdentity))
		return false
	}

	// 3. Take or renew it, guarded by the resourceVersion just read.
	if iAmHolder {
		desired.AcquireTime = old.AcquireTime
		desired.LeaseTransitions = old.LeaseTransitions
	} else {
		desired.LeaseTransitions = old.LeaseTransitions + 1
	}
	if err := e.write(ctx, lease, desired); err != nil {
		e.logger.Warn("failed to update lease", zap.Error(err))
		return false
	}
	return true
}

// write updates base's spec to r; the apiserver rejects it with 409 Conflict
// if base's resourceVersion is stale.
func (e *Elector) write(ctx context.Context, base *coordinationv1.Lease, r record) error {
	l := base.DeepCopy()
	l.Spec = r.spec()
	updated, err := e.leases.Update(ctx, e.cfg.Namespace, l)
	if err != nil {
		return err
	}
	e.setObserved(updated, e.now())
	return nil
}

func (e *Elector) setObserved(l *coordinationv1.Lease, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lease = l
	e.observed = recordOf(l)
	e.observedTime = at
}

// validAt says whether the observed lease is unexpired at now: it expires
// LeaseDurationSeconds after we first saw its current record, whatever the
// holder's clock wrote in renewTime. e.mu is held.
func (e *Elector) validAt(now time.Time) bool {
	return leaseValid(e.observedTime, e.observed.LeaseDurationSeconds, now)
}

func leaseValid(observedTime time.Time, durationSeconds int32, now time.Time) bool {
	return observedTime.Add(time.Duration(durationSeconds) * time.Second).After(now)
}

// release clears the holder so another candidate can take the lease at once.
func (e *Elector) release(ctx context.Context) {
	e.mu.Lock()
	lease, leading := e.lease, e.observed.HolderIdentity == e.cfg.Identity
	transitions := e.observed.LeaseTransitions
	e.mu.Unlock()
	if !leading || lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RenewDeadline)
	defer cancel()
	now := e.now()
	r := record{LeaseDurationSeconds: 1, AcquireTime: now, RenewTime: now, LeaseTransitions: transitions}
	if err := e.write(ctx, lease, r); err != nil {
		e.logger.Warn("failed to release lease", zap.Error(err))
		return
	}
	e.logger.Info("released leader lease")
}

// maybeReportTransition calls OnNewLeader when the observed holder changed.
func (e *Elector) maybeReportTransition() {
	e.mu.Lock()
	holder := e.observed.HolderIdentity
	changed := holder != e.reported
	e.reported = holder
	e.mu.Unlock()
	if !changed || holder == "" {
		return
	}
	e.logger.Info("new leader observed", zap.String("leader", holder))
	if f := e.cfg.Callbacks.OnNewLeader; f != nil {
		e.callbacks.Go(func() { f(holder) })
	}
}

// jitter returns d plus up to factor*d.
func jitter(d time.Duration, factor float64) time.Duration {
	return d + time.Duration(rand.Float64()*factor*float64(d))
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
