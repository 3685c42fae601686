package bench

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
)

// CreateLevel is one concurrency level of the create benchmark.
type CreateLevel struct {
	Concurrency int
	APIServer   OpStats
	Etcd        OpStats
}

// Ratio is the apiserver's throughput as a fraction of raw etcd's.
func (l CreateLevel) Ratio() float64 {
	if l.Etcd.Rate() == 0 {
		return 0
	}
	return l.APIServer.Rate() / l.Etcd.Rate()
}

// workersPerConn is how many workers share one gRPC (or etcd) connection.
const workersPerConn = 16

func connsFor(conc int) int { return (conc + workersPerConn - 1) / workersPerConn }

// benchCreates measures, per concurrency level, raw etcd puts of the
// encoded pod and then pod creates through the apiserver.
func benchCreates(ctx context.Context, e *env, cfg *Config, rep *Report, logf func(string, ...any)) error {
	tmpl := typicalPod()
	tmpl.Name = "bench-c64-000000"
	tmpl.Namespace = metav1.NamespaceDefault
	raw, err := client.Encode(tmpl.DeepCopy())
	if err != nil {
		return err
	}
	rep.PodBytes = len(raw)
	logf("typical pod: %d bytes in protobuf", len(raw))

	for _, conc := range cfg.Concurrency {
		n := cfg.Creates
		if conc == 1 {
			n = cfg.CreatesSerial
		}
		lvl := CreateLevel{Concurrency: conc}

		lvl.Etcd, err = etcdPuts(ctx, e, conc, n, cfg, raw)
		if err != nil {
			return err
		}
		logf("  c=%-3d raw etcd:  %6d puts    in %6.2fs = %8.0f/s  p50 %v  p99 %v  errors %d",
			conc, lvl.Etcd.Count, lvl.Etcd.Elapsed.Seconds(), lvl.Etcd.Rate(), ms(lvl.Etcd.P50), ms(lvl.Etcd.P99), lvl.Etcd.Errors)

		lvl.APIServer, err = apiCreates(ctx, e, conc, n, cfg, tmpl, rep)
		if err != nil {
			return err
		}
		logf("  c=%-3d apiserver: %6d creates in %6.2fs = %8.0f/s  p50 %v  p99 %v  CPU/create %s  errors %d",
			conc, lvl.APIServer.Count, lvl.APIServer.Elapsed.Seconds(), lvl.APIServer.Rate(), ms(lvl.APIServer.P50), ms(lvl.APIServer.P99), ms(lvl.APIServer.CPUPerOp), lvl.APIServer.Errors)
		for _, s := range []OpStats{lvl.Etcd, lvl.APIServer} {
			if s.Errors > 0 {
				rep.Problems = append(rep.Problems, fmt.Sprintf("creates at c=%d: %d errors, first: %s", conc, s.Errors, s.FirstErr))
			}
		}
		rep.Creates = append(rep.Creates, lvl)
		if err := e.Alive(); err != nil {
			return err
		}
	}
	return nil
}

func etcdPuts(ctx context.Context, e *env, conc, n int, cfg *Config, value []byte) (OpStats, error) {
	clients := make([]*clientv3.Client, connsFor(conc))
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := e.NewEtcdClient()
		if err != nil {
			return OpStats{}, err
		}
		clients[i] = c
		if _, err := c.Get(ctx, "/bench/warmup"); err != nil {
			return OpStats{}, fmt.Errorf("etcd warm-up: %w", err)
		}
	}
	v := string(value)
	return runLoad(ctx, conc, n, cfg.CreateMaxTime, func(w int) func(context.Context, int) error {
		kv := clients[w/workersPerConn]
		return func(ctx context.Context, i int) error {
			_, err := kv.Put(ctx, fmt.Sprintf("/bench/raw/c%d/%06d", conc, i), v)
			return err
		}
	}), nil
}

func apiCreates(ctx context.Context, e *env, conc, n int, cfg *Config, tmpl *corev1.Pod, rep *Report) (OpStats, error) {
	clients := make([]*client.Client, connsFor(conc))
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range clients {
		c, err := e.NewClient()
		if err != nil {
			return OpStats{}, err
		}
		clients[i] = c
		if _, err := client.For[*corev1.ConfigMap](c).Get(ctx, metav1.NamespaceDefault, "bench-ready"); err != nil {
			return OpStats{}, fmt.Errorf("apiserver warm-up: %w", err)
		}
	}
	cpu0, err := benchkit.ProcessCPU(e.PID())
	if err != nil {
		return OpStats{}, err
	}
	s := runLoad(ctx, conc, n, cfg.CreateMaxTime, func(w int) func(context.Context, int) error {
		pods := client.For[*corev1.Pod](clients[w/workersPerConn])
		pod := tmpl.DeepCopy()
		return func(ctx context.Context, i int) error {
			pod.Name = fmt.Sprintf("bench-c%d-%06d", conc, i)
			out, err := pods.Create(ctx, metav1.NamespaceDefault, pod)
			if err == nil && rep.StoredPodBytes == 0 && i == 0 {
				if b, err := client.Encode(out); err == nil {
					rep.StoredPodBytes = len(b)
				}
			}
			return err
		}
	})
	cpu1, err := benchkit.ProcessCPU(e.PID())
	if err != nil {
		return s, err
	}
	if s.Count > 0 {
		s.CPUPerOp = (cpu1 - cpu0) / timeDiv(s.Count)
	}
	return s, nil
}
