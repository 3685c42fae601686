package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

// FanoutResult is the watch fan-out measurement.
type FanoutResult struct {
	Watchers     int
	Planned      int // creates planned (rate × duration)
	Writes       int // acknowledged creates
	WriteErrors  int
	RequestedHz  int
	AchievedHz   float64
	Expected     int64 // Watchers × Writes
	Received     int64
	Negative     int64 // events received before the create was acknowledged
	P50, P99     time.Duration
	Max          time.Duration
	WatchErrors  int // watches that ended with an error before the end
	FirstError   string
	DrainTimeout bool // not every watcher had every event by the drain deadline
	RawWatch     bool // watchers read only the name from raw gRPC events
	// Span is from the first write until every event arrived (or the drain
	// deadline); the CPU times are over it.
	Span         time.Duration
	APIServerCPU time.Duration
	BenchCPU     time.Duration // this process: watchers, writers and etcd
}

const fanoutNS = "fanout"

// benchFanout opens cfg.Watchers watches on pods in one namespace, then
// creates pods at cfg.WatchRate for cfg.WatchDuration and measures, per
// watcher, how long after the create's acknowledgement its ADDED event
// arrived.
func benchFanout(ctx context.Context, e *env, cfg *Config, rep *Report, logf func(string, ...any)) error {
	admin, err := e.NewClient()
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close() }()
	if err := ensureNamespace(ctx, admin, fanoutNS); err != nil {
		return err
	}
	_, lm, err := client.For[*corev1.Pod](admin).List(ctx, fanoutNS, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list %s: %w", fanoutNS, err)
	}

	n := int(float64(cfg.WatchRate) * cfg.WatchDuration.Seconds())
	res := FanoutResult{Watchers: cfg.Watchers, RequestedHz: cfg.WatchRate, RawWatch: cfg.WatchRaw}
	t0 := time.Now()
	since := func() int64 { return max(int64(time.Since(t0)), 1) }
	acks := make([]atomic.Int64, n) // ack time of create i, ns since t0; 0 = not yet

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	conns := make([]*client.Client, max(cfg.WatchClients, 1))
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range conns {
		if conns[i], err = e.NewClient(); err != nil {
			return err
		}
	}

	type watcherResult struct {
		delays   []int32 // microseconds
		negative int64
		err      error
	}
	results := make([]watcherResult, cfg.Watchers)
	var (
		wg       sync.WaitGroup
		received atomic.Int64
	)
	mode := "typed client, every event decoded"
	if cfg.WatchRaw {
		mode = "raw gRPC stream, only the name read"
	}
	logf("  opening %d watches over %d connections (%s)", cfg.Watchers, len(conns), mode)
	gvr := client.For[*corev1.Pod](admin).GVR()
	for wi := range cfg.Watchers {
		r := &results[wi]
		r.delays = make([]int32, 0, n)
		seen := make([]bool, n)
		got := 0
		// handle records one ADDED event; it reports whether the watcher
		// has seen every write.
		handle := func(name string, now int64) bool {
			i, err := strconv.Atoi(strings.TrimPrefix(name, "fan-"))
			if err != nil || i < 0 || i >= n || seen[i] {
				return false
			}
			seen[i] = true
			d := int64(0)
			if ack := acks[i].Load(); ack == 0 || now < ack {
				r.negative++
			} else {
				d = now - ack
			}
			r.delays = append(r.delays, int32(min(d/int64(time.Microsecond), math.MaxInt32)))
			received.Add(1)
			got++
			return got == n
		}
		conn := conns[wi%len(conns)]
		if cfg.WatchRaw {
			stream, err := resourcev1.NewResourcesClient(conn.Conn()).Watch(wctx, &resourcev1.WatchRequest{
				Ref:             &resourcev1.ResourceRef{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource, Namespace: fanoutNS},
				ResourceVersion: lm.ResourceVersion, AllowBatches: true,
			})
			if err != nil {
				return fmt.Errorf("watch %d: %w", wi, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ev, err := stream.Recv()
					now := since()
					if err != nil {
						if wctx.Err() == nil {
							r.err = err
						}
						return
					}
					evs := ev.Batch
					if len(evs) == 0 {
						evs = []*resourcev1.WatchEvent{ev}
					}
					for _, ev := range evs {
						if ev.Type != string(watch.Added) {
							continue
						}
						if name, ok := podName(ev.Object); ok && handle(name, now) {
							return
						}
					}
				}
			}()
			continue
		}
		w, err := client.For[*corev1.Pod](conn).Watch(wctx, fanoutNS, metav1.ListOptions{ResourceVersion: lm.ResourceVersion})
		if err != nil {
			return fmt.Errorf("watch %d: %w", wi, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for ev := range w.ResultChan() {
				now := since()
				switch ev.Type {
				case watch.Added:
				case watch.Error:
					if wctx.Err() == nil {
						r.err = apierrors.FromObject(ev.Object)
					}
					return
				default:
					continue
				}
				if pod, ok := ev.Object.(*corev1.Pod); ok && handle(pod.Name, now) {
					return
				}
			}
			if wctx.Err() == nil && r.err == nil {
				r.err = errors.New("watch closed early")
			}
		}()
	}
	// Watches start from the list's resourceVersion, so none can miss an
	// event; the pause only keeps stream set-up out of the first delays.
	time.Sleep(time.Second)

	logf("  writing %d pods at %d/s", n, cfg.WatchRate)
	jobs := make(chan int, n)
	var (
		writers   sync.WaitGroup
		writeErrs atomic.Int64
		acked     atomic.Int64
		firstErr  atomic.Value
		lastAck   atomic.Int64
	)
	wconns := make([]*client.Client, connsFor(cfg.Writers))
	defer func() {
		for _, c := range wconns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range wconns {
		if wconns[i], err = e.NewClient(); err != nil {
			return err
		}
	}
	writeDeadline := since() + int64(cfg.WatchMaxTime)
	var skipped atomic.Int64
	for w := range cfg.Writers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			pods := client.For[*corev1.Pod](wconns[w/workersPerConn])
			for i := range jobs {
				if since() > writeDeadline {
					skipped.Add(1)
					continue // over the time bound: drain the queue unwritten
				}
				pod := smallPod(i)
				pod.Name = fmt.Sprintf("fan-%06d", i)
				octx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := pods.Create(octx, fanoutNS, pod)
				cancel()
				if err != nil {
					writeErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				now := since()
				acks[i].Store(now)
				acked.Add(1)
				for {
					l := lastAck.Load()
					if now <= l || lastAck.CompareAndSwap(l, now) {
						break
					}
				}
			}
		}()
	}
	apiCPU0, _ := benchkit.ProcessCPU(e.PID())
	selfCPU0, _ := benchkit.ProcessCPU(os.Getpid())
	start := since()
	interval := float64(time.Second) / float64(cfg.WatchRate)
	for i := range n {
		if d := time.Duration(start + int64(float64(i)*interval) - since()); d > 0 {
			time.Sleep(d)
		}
		if since() > writeDeadline {
			break
		}
		jobs <- i
	}
	close(jobs)
	writers.Wait()
	res.Writes = int(acked.Load())
	res.WriteErrors = int(writeErrs.Load())
	res.Planned = n
	if res.Writes+res.WriteErrors < n {
		rep.Problems = append(rep.Problems, fmt.Sprintf("watch fan-out: only %d of %d creates were sent within the %v bound (the creates did not keep up with %d/s)",
			res.Writes+res.WriteErrors, n, cfg.WatchMaxTime, cfg.WatchRate))
	}
	if v := firstErr.Load(); v != nil {
		res.FirstError = "write: " + v.(string)
	}
	if span := lastAck.Load() - start; span > 0 {
		res.AchievedHz = float64(res.Writes) / time.Duration(span).Seconds()
	}
	logf("  %d writes acknowledged (%.0f/s), %d errors; waiting up to %v for the watchers", res.Writes, res.AchievedHz, res.WriteErrors, cfg.WatchDrain)

	want := int64(cfg.Watchers) * int64(res.Writes)
	drainEnd := time.Now().Add(cfg.WatchDrain)
	for received.Load() < want {
		if time.Now().After(drainEnd) {
			res.DrainTimeout = true
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	res.Span = time.Duration(since() - start)
	if c, err := benchkit.ProcessCPU(e.PID()); err == nil {
		res.APIServerCPU = c - apiCPU0
	}
	if c, err := benchkit.ProcessCPU(os.Getpid()); err == nil {
		res.BenchCPU = c - selfCPU0
	}
	wcancel()
	wg.Wait()

	res.Expected = int64(cfg.Watchers) * int64(res.Writes)
	res.Received = received.Load()
	all := make([]int32, 0, res.Received)
	for _, r := range results {
		all = append(all, r.delays...)
		res.Negative += r.negative
		if r.err != nil {
			res.WatchErrors++
			if res.FirstError == "" {
				res.FirstError = "watch: " + r.err.Error()
			}
		}
	}
	slices.Sort(all)
	us := func(v int32) time.Duration { return time.Duration(v) * time.Microsecond }
	res.P50, res.P99 = us(benchkit.Percentile(all, 50)), us(benchkit.Percentile(all, 99))
	if len(all) > 0 {
		res.Max = us(all[len(all)-1])
	}
	rep.Fanout = &res
	logf("  received %d of %d events; delay p50 %v p99 %v max %v; %d negative clamped; %d watch errors",
		res.Received, res.Expected, ms(res.P50), ms(res.P99), ms(res.Max), res.Negative, res.WatchErrors)
	logf("  over %v: apiserver CPU %v, benchmark process CPU %v", ms(res.Span), ms(res.APIServerCPU), ms(res.BenchCPU))
	if res.WatchErrors > 0 || res.WriteErrors > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("watch fan-out: %d watch errors, %d write errors; first: %s", res.WatchErrors, res.WriteErrors, res.FirstError))
	}
	if res.Received < res.Expected {
		rep.Problems = append(rep.Problems, fmt.Sprintf("watch fan-out: %d of %d events not received within %v after the last write", res.Expected-res.Received, res.Expected, cfg.WatchDrain))
	}
	return nil
}

func ensureNamespace(ctx context.Context, c *client.Client, name string) error {
	_, err := client.For[*corev1.Namespace](c).Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// podName reads metadata.name from a pod in the Kubernetes protobuf
// encoding (magic "k8s\x00", then runtime.Unknown whose field 2 is the Pod;
// Pod field 1 is ObjectMeta; ObjectMeta field 1 is the name) without
// decoding the rest.
func podName(raw []byte) (string, bool) {
	b, ok := bytes.CutPrefix(raw, []byte("k8s\x00"))
	if !ok {
		return "", false
	}
	for _, num := range []uint64{2, 1, 1} {
		if b, ok = protoField(b, num); !ok {
			return "", false
		}
	}
	return string(b), true
}

// protoField returns the first length-delimited field num of message b.
func protoField(b []byte, num uint64) ([]byte, bool) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, false
		}
		b = b[n:]
		switch key & 7 {
		case 0: // varint
			_, n = binary.Uvarint(b)
			if n <= 0 {
				return nil, false
			}
			b = b[n:]
		case 1: // fixed64
			if len(b) < 8 {
				return nil, false
			}
			b = b[8:]
		case 2: // length-delimited
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return nil, false
			}
			v := b[n : n+int(l)]
			if key>>3 == num {
				return v, true
			}
			b = b[n+int(l):]
		case 5: // fixed32
			if len(b) < 4 {
				return nil, false
			}
			b = b[4:]
		default:
			return nil, false
		}
	}
	return nil, false
}
