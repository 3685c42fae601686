package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

// RestResult is the REST API measurement: JSON creates over HTTP/2 against
// gRPC creates, and `kubectl get pods -A` on a cluster of cfg.RestPods pods.
type RestResult struct {
	Concurrency int
	Creates     OpStats // REST: JSON POSTs over HTTP/2
	GRPC        OpStats // gRPC creates at the same concurrency
	GRPCHere    bool    // GRPC was measured in this phase, not taken from the creates phase
	Proto       string  // HTTP protocol the creates used ("HTTP/2.0")
	BodyBytes   int     // JSON request body

	Cleared   int // pods of earlier phases deleted before loading
	ClearLeft int // pods of earlier phases still there after the clearing
	ClearTime time.Duration

	ListPods int // pods requested
	Load     OpStats
	PodBytes int

	TableRows  int // rows of the unpaged Table (every pod in the cluster)
	TableBytes int
	TableFull  []time.Duration
	PagedRows  int
	Pages      int
	PagedBytes int
	TablePaged []time.Duration // sum of the pages' times, per walk
	PageTimes  []time.Duration // every page of every walk
	FirstPages []time.Duration // the first page of each walk
	LastPages  []time.Duration // the last page of each walk
	Gzipped    bool            // the unpaged Table came gzip-compressed (Go's client asks for it, as kubectl does)
	ProtoItems int
	ProtoBytes int
	Protobuf   []time.Duration

	KubectlPath  string
	Kubectl      time.Duration // wall time of one `kubectl get pods -A`
	KubectlLines int
	KubectlNote  string // why kubectl was not timed, or how it failed
}

// Ratio is the REST create rate as a fraction of the gRPC one.
func (r *RestResult) Ratio() float64 {
	if r.GRPC.Rate() == 0 {
		return 0
	}
	return r.Creates.Rate() / r.GRPC.Rate()
}

const (
	restNS        = "rest"
	restListNS    = "rest-list-" // + 0..restListNSs-1
	restListNSs   = 10
	restPageLimit = 500
	// kubectl's Accept header for `kubectl get` with the default printer.
	tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	protoAccept = "application/vnd.kubernetes.protobuf"
)

// benchRest measures REST creates against gRPC creates at c=64, then
// clears the pods of earlier phases, loads cfg.RestPods pods and times
// what `kubectl get pods -A` asks the apiserver for.
func benchRest(ctx context.Context, e *env, cfg *Config, rep *Report, logf func(string, ...any)) error {
	kc, err := kubeconfig.Load(e.Kubeconfig)
	if err != nil {
		return err
	}
	tc, err := kc.TLSConfig()
	if err != nil {
		return err
	}
	admin, err := e.NewClient()
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close() }()
	if err := ensureNamespace(ctx, admin, restNS); err != nil {
		return err
	}
	conc := targetCreateConcurrency
	res := &RestResult{Concurrency: conc, ListPods: cfg.RestPods, KubectlPath: cfg.Kubectl}
	rep.Rest = res

	// 1. Creates: the gRPC figure of the creates phase, or measured now.
	found := false
	for _, l := range rep.Creates {
		if l.Concurrency == conc {
			res.GRPC, found = l.APIServer, true
		}
	}
	tmpl := typicalPod()
	if !found {
		res.GRPCHere = true
		t := tmpl.DeepCopy()
		t.Namespace = metav1.NamespaceDefault
		if res.GRPC, err = apiCreates(ctx, e, conc, cfg.Creates, cfg, t, rep); err != nil {
			return err
		}
		logf("  c=%-3d gRPC:      %6d creates in %6.2fs = %8.0f/s  p50 %v  p99 %v  CPU/create %s  errors %d",
			conc, res.GRPC.Count, res.GRPC.Elapsed.Seconds(), res.GRPC.Rate(), ms(res.GRPC.P50), ms(res.GRPC.P99), ms(res.GRPC.CPUPerOp), res.GRPC.Errors)
		if res.GRPC.Errors > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("gRPC creates at c=%d: %d errors, first: %s", conc, res.GRPC.Errors, res.GRPC.FirstErr))
		}
	}
	if err := restCreates(ctx, e, kc.Server, tc, conc, cfg.Creates, cfg, tmpl, res); err != nil {
		return err
	}
	logf("  c=%-3d REST:      %6d creates in %6.2fs = %8.0f/s  p50 %v  p99 %v  CPU/create %s  errors %d  (%s, %d-byte JSON bodies) = %s of gRPC",
		conc, res.Creates.Count, res.Creates.Elapsed.Seconds(), res.Creates.Rate(), ms(res.Creates.P50), ms(res.Creates.P99), ms(res.Creates.CPUPerOp),
		res.Creates.Errors, res.Proto, res.BodyBytes, pct(res.Ratio()))
	if res.Creates.Errors > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("REST creates at c=%d: %d errors, first: %s", conc, res.Creates.Errors, res.Creates.FirstErr))
	}
	if err := e.Alive(); err != nil {
		return err
	}

	// 2. Exactly cfg.RestPods pods in the cluster: delete what earlier
	// phases left, then load.
	if err := clearPods(ctx, e, admin, cfg, res, logf); err != nil {
		return err
	}
	if res.ClearLeft > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("REST phase: %d pods of earlier phases not deleted within %v; the lists hold them too", res.ClearLeft, cfg.RestMaxTime))
	}
	if err := loadListPods(ctx, e, cfg, res, logf); err != nil {
		return err
	}
	if res.Load.Errors > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("REST phase load: %d errors, first: %s", res.Load.Errors, res.Load.FirstErr))
	}
	if res.Load.Count < cfg.RestPods {
		rep.Problems = append(rep.Problems, fmt.Sprintf("REST phase load: only %d of %d pods created within %v", res.Load.Count, cfg.RestPods, cfg.RestMaxTime))
	}
	if err := e.Alive(); err != nil {
		return err
	}

	// 3. The lists, over one warm HTTP/2 connection as kubectl uses.
	if err := restLists(ctx, kc.Server, tc, cfg, res, logf); err != nil {
		return err
	}
	runKubectl(ctx, e, cfg, res, logf)
	if res.KubectlNote != "" && res.Kubectl > 0 {
		rep.Problems = append(rep.Problems, "kubectl get pods -A: "+res.KubectlNote)
	}
	return e.Alive()
}

// newHTTPClient is an HTTP/2 client with the admin's TLS configuration;
// each has its own transport and so its own connection.
func newHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: tc.Clone(), ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: workersPerConn, IdleConnTimeout: time.Minute,
	}}
}

// do sends req and reads the whole body into buf (reset first); a status
// other than want is an error quoting the start of the body.
func do(c *http.Client, req *http.Request, want int, buf *bytes.Buffer) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		b := buf.Bytes()
		if len(b) > 300 {
			b = b[:300]
		}
		return resp, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	return resp, nil
}

func get(ctx context.Context, c *http.Client, u, accept string, buf *bytes.Buffer) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	return do(c, req, http.StatusOK, buf)
}

// restCreates POSTs the typical pod as JSON to namespace restNS from conc
// workers, one HTTP/2 connection per workersPerConn of them.
func restCreates(ctx context.Context, e *env, server string, tc *tls.Config, conc, n int, cfg *Config, tmpl *corev1.Pod, res *RestResult) error {
	const placeholder = "BENCH-NAME-PLACEHOLDER"
	pod := tmpl.DeepCopy()
	pod.APIVersion, pod.Kind, pod.Name = "v1", "Pod", placeholder
	raw, err := json.Marshal(pod)
	if err != nil {
		return err
	}
	pre, post, ok := bytes.Cut(raw, []byte(placeholder))
	if !ok {
		return errors.New("pod JSON lacks the name placeholder")
	}
	res.BodyBytes = len(raw) - len(placeholder) + len("rest-c64-000000")

	clients := make([]*http.Client, connsFor(conc))
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.CloseIdleConnections()
			}
		}
	}()
	var buf bytes.Buffer
	for i := range clients {
		clients[i] = newHTTPClient(tc)
		// Warm up: open the connection before the clock starts.
		resp, err := get(ctx, clients[i], server+"/api/v1/namespaces/default/configmaps/bench-ready", "application/json", &buf)
		if err != nil {
			return fmt.Errorf("REST warm-up: %w", err)
		}
		res.Proto = resp.Proto
	}
	u := server + "/api/v1/namespaces/" + restNS + "/pods"
	cpu0, err := benchkit.ProcessCPU(e.PID())
	if err != nil {
		return err
	}
	profDone := make(chan error, 1)
	if cfg.RestProfile != "" {
		secs := int(cfg.CreateMaxTime.Seconds())/2 + 1
		go func() {
			profDone <- benchkit.FetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", server, secs), tc, cfg.RestProfile+".cpu.pprof")
		}()
	}
	res.Creates = runLoad(ctx, conc, n, cfg.CreateMaxTime, func(w int) func(context.Context, int) error {
		c := clients[w/workersPerConn]
		var rbuf bytes.Buffer
		return func(ctx context.Context, i int) error {
			// A fresh body each time: the transport may still hold the
			// previous one after the response came.
			body := make([]byte, 0, len(raw)+16)
			body = append(body, pre...)
			body = fmt.Appendf(body, "rest-c%d-%06d", conc, i)
			body = append(body, post...)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
			_, err = do(c, req, http.StatusCreated, &rbuf)
			return err
		}
	})
	cpu1, err := benchkit.ProcessCPU(e.PID())
	if err != nil {
		return err
	}
	if res.Creates.Count > 0 {
		res.Creates.CPUPerOp = (cpu1 - cpu0) / timeDiv(res.Creates.Count)
	}
	if cfg.RestProfile != "" {
		if err := <-profDone; err != nil {
			return fmt.Errorf("REST creates CPU profile: %w", err)
		}
		if err := benchkit.FetchProfile(ctx, server+"/debug/pprof/allocs", tc, cfg.RestProfile+".allocs.pprof"); err != nil {
			return fmt.Errorf("REST creates allocation profile: %w", err)
		}
	}
	return nil
}

// clearPods deletes every pod in the cluster (those of earlier phases), at
// the create concurrency, so that the lists see only the pods loaded for them.
func clearPods(ctx context.Context, e *env, admin *client.Client, cfg *Config, res *RestResult, logf func(string, ...any)) error {
	type key struct{ ns, name string }
	var pods []key
	rc := resourcev1.NewResourcesClient(admin.Conn())
	gvr := client.For[*corev1.Pod](admin).GVR()
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cont := ""
	for {
		out, err := rc.List(lctx, &resourcev1.ListRequest{
			Ref:   &resourcev1.ResourceRef{Group: gvr.Group, Version: gvr.Version, Resource: gvr.Resource},
			Limit: 5000, Continue: cont,
		})
		if err != nil {
			return fmt.Errorf("list pods to clear: %w", err)
		}
		for _, raw := range out.Items {
			ns, name, ok := podKey(raw)
			if !ok {
				return errors.New("list pods to clear: cannot read a pod's namespace and name")
			}
			pods = append(pods, key{ns, name})
		}
		if cont = out.Continue; cont == "" {
			break
		}
	}
	if len(pods) == 0 {
		return nil
	}
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
		c, err := e.NewClient()
		if err != nil {
			return err
		}
		clients[i] = c
	}
	logf("  deleting the %d pods of earlier phases at c=%d", len(pods), conc)
	s := runLoad(ctx, conc, len(pods), cfg.RestMaxTime, func(w int) func(context.Context, int) error {
		typed := client.For[*corev1.Pod](clients[w/workersPerConn])
		return func(ctx context.Context, i int) error {
			_, err := typed.Delete(ctx, pods[i].ns, pods[i].name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	})
	res.Cleared, res.ClearLeft, res.ClearTime = s.Count, len(pods)-s.Count, s.Elapsed
	logf("  deleted %d pods in %.1fs (%.0f/s), %d errors", s.Count, s.Elapsed.Seconds(), s.Rate(), s.Errors)
	return nil
}

// podKey reads metadata.namespace and metadata.name from a pod in the
// Kubernetes protobuf encoding (ObjectMeta fields 3 and 1).
func podKey(raw []byte) (ns, name string, ok bool) {
	b, ok := bytes.CutPrefix(raw, []byte("k8s\x00"))
	if !ok {
		return "", "", false
	}
	for _, num := range []uint64{2, 1} {
		if b, ok = protoField(b, num); !ok {
			return "", "", false
		}
	}
	n, ok := protoField(b, 1)
	if !ok {
		return "", "", false
	}
	s, ok := protoField(b, 3)
	if !ok {
		return "", "", false
	}
	return string(s), string(n), true
}

// loadListPods creates cfg.RestPods small pods spread over restListNSs
// namespaces through gRPC at the create concurrency.
func loadListPods(ctx context.Context, e *env, cfg *Config, res *RestResult, logf func(string, ...any)) error {
	admin, err := e.NewClient()
	if err != nil {
		return err
	}
	defer func() { _ = admin.Close() }()
	for i := range restListNSs {
		if err := ensureNamespace(ctx, admin, fmt.Sprint(restListNS, i)); err != nil {
			return err
		}
	}
	p := smallPod(0)
	p.Namespace = restListNS + "0"
	if raw, err := client.Encode(p); err == nil {
		res.PodBytes = len(raw)
	}
	conc := cfg.ScaleConcurrency
	logf("  loading %d pods of %d bytes over %d namespaces at c=%d", cfg.RestPods, res.PodBytes, restListNSs, conc)
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
	res.Load = runLoad(ctx, conc, cfg.RestPods, cfg.RestMaxTime, func(w int) func(context.Context, int) error {
		pods := client.For[*corev1.Pod](clients[w/workersPerConn])
		return func(ctx context.Context, i int) error {
			pod := smallPod(i)
			pod.Name = fmt.Sprintf("list-%06d", i)
			_, err := pods.Create(ctx, fmt.Sprint(restListNS, i%restListNSs), pod)
			return err
		}
	})
	if cpu1, err := benchkit.ProcessCPU(e.PID()); err == nil && res.Load.Count > 0 {
		res.Load.CPUPerOp = (cpu1 - cpu0) / timeDiv(res.Load.Count)
	}
	logf("  loaded %d pods in %.1fs (%.0f/s), p99 %v, %d errors", res.Load.Count, res.Load.Elapsed.Seconds(), res.Load.Rate(), ms(res.Load.P99), res.Load.Errors)
	return nil
}

// tableMeta is what the benchmark reads of a Table: its kind, where the
// next page starts and how many rows it has.
type tableMeta struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Rows []json.RawMessage `json:"rows"`
}

// restLists times, cfg.RestListRuns times each, the unpaged Table of all
// pods, the walk through its pages of restPageLimit, and the unpaged
// protobuf list; each time is from sending the request until the client
// read the body's last byte. The bodies are checked (not timed) after.
func restLists(ctx context.Context, server string, tc *tls.Config, cfg *Config, res *RestResult, logf func(string, ...any)) error {
	c := newHTTPClient(tc)
	defer c.CloseIdleConnections()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	u := server + "/api/v1/pods"
	if _, err := get(lctx, c, u+"?limit=1", tableAccept, &buf); err != nil { // warm-up
		return fmt.Errorf("list warm-up: %w", err)
	}

	for range cfg.RestListRuns {
		t := time.Now()
		resp, err := get(lctx, c, u, tableAccept, &buf)
		if err != nil {
			return fmt.Errorf("Table list: %w", err)
		}
		res.TableFull = append(res.TableFull, time.Since(t))
		res.TableBytes, res.Gzipped = buf.Len(), resp.Uncompressed
	}
	var tm tableMeta
	if err := json.Unmarshal(buf.Bytes(), &tm); err != nil {
		return fmt.Errorf("Table list: %w", err)
	}
	if tm.Kind != "Table" {
		return fmt.Errorf("Table list: got kind %q", tm.Kind)
	}
	res.TableRows = len(tm.Rows)
	logf("  Table of all pods, unpaged (%d rows, %s): %s", res.TableRows, benchkit.FormatBytes(int64(res.TableBytes)), durs(res.TableFull))

	for range cfg.RestListRuns {
		var total time.Duration
		rows, pages, size, cont := 0, 0, 0, ""
		for {
			pu := fmt.Sprintf("%s?limit=%d", u, restPageLimit)
			if cont != "" {
				pu += "&continue=" + url.QueryEscape(cont)
			}
			t := time.Now()
			if _, err := get(lctx, c, pu, tableAccept, &buf); err != nil {
				return fmt.Errorf("Table page %d: %w", pages+1, err)
			}
			d := time.Since(t)
			total += d
			res.PageTimes = append(res.PageTimes, d)
			if pages == 0 {
				res.FirstPages = append(res.FirstPages, d)
			}
			pages++
			size += buf.Len()
			var pm tableMeta
			if err := json.Unmarshal(buf.Bytes(), &pm); err != nil {
				return fmt.Errorf("Table page %d: %w", pages, err)
			}
			rows += len(pm.Rows)
			if cont = pm.Metadata.Continue; cont == "" {
				res.LastPages = append(res.LastPages, d)
				break
			}
			if pages > 10*(res.TableRows/restPageLimit+1) {
				return fmt.Errorf("Table pages: %d pages for %d pods and still a continue token", pages, res.TableRows)
			}
		}
		res.TablePaged = append(res.TablePaged, total)
		res.PagedRows, res.Pages, res.PagedBytes = rows, pages, size
	}
	logf("  Table of all pods, %d pages of %d (%d rows, %s): %s", res.Pages, restPageLimit, res.PagedRows, benchkit.FormatBytes(int64(res.PagedBytes)), durs(res.TablePaged))
	logf("    per page: median %s, max %s; first pages median %s, last pages median %s",
		benchkit.FormatDuration(benchkit.Median(res.PageTimes)), benchkit.FormatDuration(slices.Max(res.PageTimes)), benchkit.FormatDuration(benchkit.Median(res.FirstPages)), benchkit.FormatDuration(benchkit.Median(res.LastPages)))
	if res.PagedRows != res.TableRows {
		return fmt.Errorf("paging through the Table gave %d rows, the unpaged Table %d", res.PagedRows, res.TableRows)
	}

	for range cfg.RestListRuns {
		t := time.Now()
		resp, err := get(lctx, c, u, protoAccept, &buf)
		if err != nil {
			return fmt.Errorf("protobuf list: %w", err)
		}
		res.Protobuf = append(res.Protobuf, time.Since(t))
		res.ProtoBytes = buf.Len()
		if ct := resp.Header.Get("Content-Type"); ct != protoAccept {
			return fmt.Errorf("protobuf list: got Content-Type %q", ct)
		}
	}
	obj, err := client.Decode(buf.Bytes())
	if err != nil {
		return fmt.Errorf("protobuf list: %w", err)
	}
	list, ok := obj.(*corev1.PodList)
	if !ok {
		return fmt.Errorf("protobuf list: got %T", obj)
	}
	res.ProtoItems = len(list.Items)
	logf("  protobuf list of all pods (%d items, %s): %s", res.ProtoItems, benchkit.FormatBytes(int64(res.ProtoBytes)), durs(res.Protobuf))
	return nil
}

// runKubectl times one real `kubectl get pods -A` (process start, API
// discovery into an empty cache, the paged list and printing), if the
// binary exists.
func runKubectl(ctx context.Context, e *env, cfg *Config, res *RestResult, logf func(string, ...any)) {
	if cfg.Kubectl == "" {
		res.KubectlNote = "not run (-kubectl empty)"
		return
	}
	if _, err := os.Stat(cfg.Kubectl); err != nil {
		res.KubectlNote = fmt.Sprintf("not run: %v", err)
		logf("  kubectl: %s", res.KubectlNote)
		return
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(kctx, cfg.Kubectl, "get", "pods", "-A", "--kubeconfig", e.Kubeconfig, "--cache-dir", filepath.Join(e.tmp, "kubectl-cache"))
	var out lineCounter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	t := time.Now()
	err := cmd.Run()
	res.Kubectl, res.KubectlLines = time.Since(t), out.lines
	if err != nil {
		msg := bytes.TrimSpace(stderr.Bytes())
		if len(msg) > 300 {
			msg = msg[:300]
		}
		res.KubectlNote = fmt.Sprintf("failed: %v: %s", err, msg)
	}
	logf("  %s get pods -A: %s, %d lines of output %s", cfg.Kubectl, benchkit.FormatDuration(res.Kubectl), res.KubectlLines, res.KubectlNote)
}

type lineCounter struct{ lines int }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}
