package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

// ScaleResult is the large-namespace measurement.
type ScaleResult struct {
	Requested    int
	Load         OpStats
	PodBytes     int
	ListItems    int
	CacheLag     time.Duration   // from the load's end until the watch cache was at etcd's revision
	Settle       time.Duration   // ... and the apiserver and etcd were idle
	FullList     []time.Duration // typed client: request, transfer and decode
	RawList      []time.Duration // raw gRPC List: request and transfer, no decode
	RawBytes     int
	EtcdList     []time.Duration // raw etcd range read of the same keys
	EtcdKeys     int
	LabelItems   int
	LabelList    []time.Duration
	RSS, PeakRSS int64
}

const scaleNS = "scale"

// benchScale loads cfg.ScalePods small pods into one namespace and times
// full and label-selected lists and the apiserver's memory.
func benchScale(ctx context.Context, e *env, cfg *Config, rep *Report, logf func(string, ...any)) error {
	admin, err := e.NewClient()
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close() }()
	if err := ensureNamespace(ctx, admin, scaleNS); err != nil {
		return err
	}
	res := ScaleResult{Requested: cfg.ScalePods}
	p := smallPod(0)
	p.Namespace = scaleNS
	if raw, err := client.Encode(p); err == nil {
		res.PodBytes = len(raw)
	}
	logf("  loading %d pods of %d bytes at c=%d", cfg.ScalePods, res.PodBytes, cfg.ScaleConcurrency)

	conc := cfg.ScaleConcurrency
	clients := make([]*client.Client, connsFor(conc))
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range clients {
		if clients[i], err = e.NewClient(); err != nil {
			return err
		}
	}
	cpu0, _ := benchkit.ProcessCPU(e.PID())
	res.Load = runLoad(ctx, conc, cfg.ScalePods, cfg.ScaleMaxTime, func(w int) func(context.Context, int) error {
		pods := client.For[*corev1.Pod](clients[w/workersPerConn])
		return func(ctx context.Context, i int) error {
			_, err := pods.Create(ctx, scaleNS, smallPod(i))
			return err
		}
	})
	if cpu1, err := benchkit.ProcessCPU(e.PID()); err == nil && res.Load.Count > 0 {
		res.Load.CPUPerOp = (cpu1 - cpu0) / timeDiv(res.Load.Count)
	}
	logf("  loaded %d pods in %.1fs (%.0f/s), p99 %v, %d errors", res.Load.Count, res.Load.Elapsed.Seconds(), res.Load.Rate(), ms(res.Load.P99), res.Load.Errors)
	if res.Load.Errors > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("scale load: %d errors, first: %s", res.Load.Errors, res.Load.FirstErr))
	}
	if res.Load.Count < cfg.ScalePods {
		rep.Problems = append(rep.Problems, fmt.Sprintf("scale load: only %d of %d pods created within %v", res.Load.Count, cfg.ScalePods, cfg.ScaleMaxTime))
	}
	if err := e.Alive(); err != nil {
		return err
	}
	if res.RSS, _, err = benchkit.ProcessRSS(e.PID()); err != nil {
		return err
	}

	pods := client.For[*corev1.Pod](admin)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// The lists time the cache holding every pod: they wait until the
	// apiserver's watch cache has caught up with etcd's revision after the
	// load (a consistent list would otherwise wait for it), then until the
	// apiserver and etcd are idle (etcd snapshots after its 100,000th entry).
	ec, err := e.NewEtcdClient()
	if err != nil {
		return err
	}
	defer func() { _ = ec.Close() }()
	settleStart := time.Now()
	if err := waitCacheAt(lctx, ec, pods); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("scale lists: %v; timed anyway", err))
	}
	res.CacheLag = time.Since(settleStart)
	if _, err = benchkit.WaitIdle(lctx, []int{e.PID(), os.Getpid()}, 0.1, 500*time.Millisecond, time.Minute); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("scale lists: %v; timed anyway", err))
	}
	res.Settle = time.Since(settleStart)
	logf("  watch cache at etcd's revision %s after the load, apiserver and etcd idle after %s", benchkit.FormatDuration(res.CacheLag), benchkit.FormatDuration(res.Settle))
	for range cfg.FullListRuns {
		runtime.GC() // the previous list's 100,000 pods are not this one's garbage
		t := time.Now()
		items, _, err := pods.List(lctx, scaleNS, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("full list: %w", err)
		}
		res.FullList = append(res.FullList, time.Since(t))
		res.ListItems = len(items)
	}
	logf("  full list of %d pods: %s", res.ListItems, durs(res.FullList))

	rc := resourcev1.NewResourcesClient(admin.Conn())
	gvr := pods.GVR()
	for range cfg.FullListRuns {
		runtime.GC()
		t := time.Now()
		out, err := rc.List(lctx, &resourcev1.ListRequest{Ref: &resourcev1.ResourceRef{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource, Namespace: scaleNS}})
		if err != nil {
			return fmt.Errorf("raw full list: %w", err)
		}
		res.RawList = append(res.RawList, time.Since(t))
		res.RawBytes = 0
		for _, it := range out.Items {
			res.RawBytes += len(it)
		}
	}
	logf("  raw gRPC list (%s): %s", benchkit.FormatBytes(int64(res.RawBytes)), durs(res.RawList))

	prefix := generic.KeyPrefix(gvr) + scaleNS + "/"
	for range cfg.FullListRuns {
		runtime.GC()
		t := time.Now()
		out, err := ec.Get(lctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("etcd range %s: %w", prefix, err)
		}
		res.EtcdList = append(res.EtcdList, time.Since(t))
		res.EtcdKeys = len(out.Kvs)
	}
	logf("  raw etcd range of %d keys: %s", res.EtcdKeys, durs(res.EtcdList))

	for range cfg.LabelListRuns {
		t := time.Now()
		items, _, err := pods.List(lctx, scaleNS, metav1.ListOptions{LabelSelector: "group=7"})
		if err != nil {
			return fmt.Errorf("label list: %w", err)
		}
		res.LabelList = append(res.LabelList, time.Since(t))
		res.LabelItems = len(items)
	}
	logf("  label list group=7 (%d items): median %v", res.LabelItems, ms(benchkit.Median(res.LabelList)))

	if _, res.PeakRSS, err = benchkit.ProcessRSS(e.PID()); err != nil {
		return err
	}
	logf("  apiserver RSS after loading %s (peak %s)", benchkit.FormatBytes(res.RSS), benchkit.FormatBytes(res.PeakRSS))
	rep.Scale = &res
	return nil
}

func durs(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = benchkit.FormatDuration(d)
	}
	return strings.Join(out, ", ")
}

// waitCacheAt waits until the apiserver's pod cache is at etcd's current
// revision or later: a list at resourceVersion "0" (served by the cache as
// it is, not a consistent read) of a selector matching nothing carries the
// cache's revision.
func waitCacheAt(ctx context.Context, ec *clientv3.Client, pods *client.Typed[*corev1.Pod]) error {
	cur, err := ec.Get(ctx, "/bench/revision-probe")
	if err != nil {
		return fmt.Errorf("etcd revision: %w", err)
	}
	want := cur.Header.Revision
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, lm, err := pods.List(ctx, scaleNS, metav1.ListOptions{ResourceVersion: "0", LabelSelector: "bench-probe=none"})
		if err != nil {
			return fmt.Errorf("cache revision: %w", err)
		}
		if rv, err := strconv.ParseInt(lm.ResourceVersion, 10, 64); err == nil && rv >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the watch cache is at revision %s, not yet at etcd's %d, 2m after the load", lm.ResourceVersion, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
