package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/coxswain/coxswain/kube-proxy/internal/dns"
	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/informer"
)

// DNSResult is the node-local DNS under load.
type DNSResult struct {
	Services, Clients int
	Duration          time.Duration
	Queries, Failed   int
	P50, P99, Max     time.Duration
	// CPU of the process: the server and the load generator together.
	CPU time.Duration
}

// QPS is the answered queries per second.
func (r *DNSResult) QPS() float64 { return float64(r.Queries) / r.Duration.Seconds() }

// runDNS serves the cluster domain over cfg.DNSServices Services on
// loopback and sends A queries for random Service names from
// cfg.DNSClients closed-loop clients, each with its own UDP socket.
func runDNS(ctx context.Context, cfg *Config) (*DNSResult, error) {
	gen, err := generate(cfg.DNSServices, cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	services := informer.NewIndexer(withNamespace(dns.ServiceIndexers))
	slicesIdx := informer.NewIndexer(withNamespace(dns.SliceIndexers))
	for _, o := range gen.services.List() {
		if err := services.Add(o); err != nil {
			return nil, err
		}
	}
	for _, o := range gen.slices.List() {
		if err := slicesIdx.Add(o); err != nil {
			return nil, err
		}
	}
	srv := dns.New(services, slicesIdx, dns.Options{Domain: "cluster.local"})
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	server, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}

	queries := make([][]byte, cfg.DNSServices)
	for i := range queries {
		m := new(mdns.Msg)
		m.SetQuestion(fmt.Sprintf("svc-%d.bench-%d.svc.cluster.local.", i, i%20), mdns.TypeA)
		if queries[i], err = m.Pack(); err != nil {
			return nil, err
		}
	}
	res := &DNSResult{Services: cfg.DNSServices, Clients: cfg.DNSClients, Duration: cfg.DNSDuration}
	// A short warm-up, not counted, then the measured run.
	if _, _, err := load(ctx, server, queries, cfg.DNSClients, 500*time.Millisecond); err != nil {
		return nil, err
	}
	cpu0, err := benchkit.ProcessCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	lat, failed, err := load(ctx, server, queries, cfg.DNSClients, cfg.DNSDuration)
	if err != nil {
		return nil, err
	}
	cpu1, err := benchkit.ProcessCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	res.Queries, res.Failed, res.CPU = len(lat), failed, cpu1-cpu0
	res.P50, res.P99, res.Max = benchkit.Percentile(lat, 50), benchkit.Percentile(lat, 99), benchkit.Percentile(lat, 100)
	cfg.logf("  %s queries (%.0f/s), %d failed, p50 %s, p99 %s", benchkit.Num(int64(res.Queries)), res.QPS(), failed,
		benchkit.FormatDuration(res.P50), benchkit.FormatDuration(res.P99))
	return res, nil
}

func withNamespace(extra informer.Indexers) informer.Indexers {
	out := informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc}
	maps.Copy(out, extra)
	return out
}

// load runs the closed-loop clients for d and returns the latencies of the
// answered queries and how many failed (timed out, or not an answer).
func load(ctx context.Context, server *net.UDPAddr, queries [][]byte, clients int, d time.Duration) ([]time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu     sync.Mutex
		all    []time.Duration
		failed int
		errs   []error
		wg     sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			lat, bad, err := client(ctx, server, queries, uint64(c))
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			failed += bad
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return all, failed, errors.Join(errs...)
}

func client(ctx context.Context, server *net.UDPAddr, queries [][]byte, seed uint64) ([]time.Duration, int, error) {
	conn, err := net.DialUDP("udp", nil, server)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = conn.Close() }()
	rng := rand.New(rand.NewPCG(seed, 42))
	lat := make([]time.Duration, 0, 1<<16)
	failed := 0
	q := make([]byte, 0, 512)
	buf := make([]byte, 1500)
	var id uint16
	for ctx.Err() == nil {
		q = append(q[:0], queries[rng.IntN(len(queries))]...)
		id++
		q[0], q[1] = byte(id>>8), byte(id)
		start := time.Now()
		if _, err := conn.Write(q); err != nil {
			return lat, failed, err
		}
		_ = conn.SetReadDeadline(start.Add(time.Second))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				failed++ // timed out
				break
			}
			if n < 12 || buf[0] != q[0] || buf[1] != q[1] {
				continue // a late answer to an earlier query
			}
			rcode, answers := buf[3]&0x0f, int(buf[6])<<8|int(buf[7])
			if rcode != mdns.RcodeSuccess || answers == 0 {
				failed++
			} else {
				lat = append(lat, time.Since(start))
			}
			break
		}
	}
	return lat, failed, nil
}
