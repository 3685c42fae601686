// Package server is the kubelet API on 10250: HTTPS with a self-signed
// serving certificate (as upstream's kubelet makes when none is given),
// accepting only client certificates of the cluster CA. It serves container
// logs, exec, attach and port-forward to the apiserver, which routes
// pods/log, pods/exec, pods/attach and pods/portforward here.
package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// Listen opens the kubelet API's TLS listener on addr.
func Listen(addr, nodeName string, ips []net.IP, clientCAs *x509.CertPool) (net.Listener, error) {
	cert, err := selfSigned(nodeName, ips)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubelet API listen: %w", err)
	}
	return tls.NewListener(lis, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		NextProtos:   []string{"h2", "http/1.1"},
	}), nil
}

func selfSigned(nodeName string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeName + "@" + strconv.FormatInt(time.Now().Unix(), 10)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{nodeName},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Runtime is what the kubelet API needs of the container runtime for exec,
// attach and port-forward (containerruntime.Runtime).
type Runtime interface {
	RunningContainer(ctx context.Context, namespace, pod, uid, container string) (string, error)
	ExecStream(ctx context.Context, id string, cmd []string, s containerruntime.Streams) (int, error)
	WaitExit(ctx context.Context, id string) (<-chan struct{}, error)
	PodNetNS(ctx context.Context, namespace, pod, uid string) (string, error)
	DialPort(ctx context.Context, netns string, port uint16) (net.Conn, error)
}

// Config configures the kubelet API.
type Config struct {
	// LogDir holds the pods' CRI logs (/var/log/pods).
	LogDir string
	// Runtime runs exec, attach and port-forward; nil answers them 503.
	Runtime Runtime
	Logger  *zap.Logger
	// StreamIdleTimeout closes a streaming connection that carried nothing
	// for that long (upstream's --streaming-connection-idle-timeout, 4 h).
	StreamIdleTimeout time.Duration
	// StreamCreationTimeout bounds the wait for a client's SPDY streams
	// (30 s).
	StreamCreationTimeout time.Duration
	// Stats serves /stats/summary and /metrics/resource; nil answers them
	// 503.
	Stats StatsProvider
}

// Server serves the kubelet API: /containerLogs/<namespace>/<pod>/<container>
// from the CRI log files, with upstream's query parameters (follow,
// previous, timestamps, tailLines, limitBytes, sinceSeconds);
// /exec/<namespace>/<pod>[/<uid>]/<container> and /attach/... with the
// remotecommand protocols; /portForward/<namespace>/<pod>[/<uid>] with the
// port-forward protocols; /stats/summary and /metrics/resource from the
// resource stats. Streaming requests end with their request's
// context (set http.Server.BaseContext to stop them with the kubelet) and
// Close waits for them.
type Server struct {
	cfg    Config
	logger *zap.Logger
	mux    *http.ServeMux

	mu      sync.Mutex
	closing bool
	streams sync.WaitGroup
}

// New returns the kubelet API handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.StreamIdleTimeout == 0 {
		cfg.StreamIdleTimeout = 4 * time.Hour
	}
	if cfg.StreamCreationTimeout == 0 {
		cfg.StreamCreationTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, mux: http.NewServeMux()}
	mux := s.mux
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/"), "/")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			http.Error(w, "want /containerLogs/<namespace>/<pod>/<container>", http.StatusBadRequest)
			return
		}
		if err := serveLogs(r.Context(), w, r, cfg.LogDir, parts[0], parts[1], parts[2]); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
		}
	})
	for _, p := range []string{"/exec/{namespace}/{pod}/{container}", "/exec/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.streaming(s.serveExec))
	}
	for _, p := range []string{"/attach/{namespace}/{pod}/{container}", "/attach/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.streaming(s.serveAttach))
	}
	for _, p := range []string{"/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"} {
		mux.HandleFunc(p, s.streaming(s.servePortForward))
	}
	mux.HandleFunc("GET /stats/summary", s.serveSummary)
	mux.HandleFunc("GET /metrics/resource", s.serveResourceMetrics)
	return s
}

// ServeHTTP serves the kubelet API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close refuses new streaming sessions and waits for the running ones to
// end: they outlive http.Server.Shutdown, which does not follow hijacked
// connections, and end when their request's context does.
func (s *Server) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.streams.Wait()
}

// begin counts a streaming session in, unless the server is closing.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.streams.Add(1)
	return true
}

// streaming wraps the handlers of exec, attach and port-forward: GET and
// POST only, a runtime required, and the session counted for Close.
func (s *Server) streaming(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if s.cfg.Runtime == nil {
			http.Error(w, "this kubelet has no container runtime to stream from", http.StatusServiceUnavailable)
			return
		}
		if !s.begin() {
			http.Error(w, "the kubelet is shutting down", http.StatusServiceUnavailable)
			return
		}
		defer s.streams.Done()
		h(w, r)
	}
}

// logFile finds the log of the container's latest run (or the one before
// it, for previous) of the newest pod of that name.
func logFile(logDir, ns, pod, container string, previous bool) (string, error) {
	pods, _ := filepath.Glob(filepath.Join(logDir, ns+"_"+pod+"_*"))
	var newest string
	var newestTime time.Time
	for _, p := range pods {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(newestTime) {
			newest, newestTime = p, st.ModTime()
		}
	}
	if newest == "" {
		return "", fmt.Errorf("no logs of pod %s/%s on this node", ns, pod)
	}
	runs, _ := filepath.Glob(filepath.Join(newest, container, "*.log"))
	var n []int
	for _, r := range runs {
		if i, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(r), ".log")); err == nil {
			n = append(n, i)
		}
	}
	sort.Ints(n)
	idx := len(n) - 1
	if previous {
		idx--
	}
	if idx < 0 {
		if previous {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", container, pod)
		}
		return "", fmt.Errorf("container %q in pod %q has no logs", container, pod)
	}
	return filepath.Join(newest, container, strconv.Itoa(n[idx])+".log"), nil
}

// entry is one parsed CRI log line.
type entry struct {
	ts      time.Time
	content []byte
	partial bool
}

func parse(line []byte) (entry, bool) {
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) < 3 {
		return entry{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return entry{}, false
	}
	e := entry{ts: ts, partial: string(f[2]) == "P"}
	if len(f) == 4 {
		e.content = f[3]
	}
	return e, true
}

func serveLogs(ctx context.Context, w http.ResponseWriter, r *http.Request, logDir, ns, pod, container string) error {
	q := r.URL.Query()
	flag := func(k string) bool { v, _ := strconv.ParseBool(q.Get(k)); return v }
	path, err := logFile(logDir, ns, pod, container, flag("previous"))
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tail := -1
	if v := q.Get("tailLines"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil || tail < 0 {
			return fmt.Errorf("invalid tailLines %q", v)
		}
	}
	limit := int64(-1)
	if v := q.Get("limitBytes"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil || limit <= 0 {
			return fmt.Errorf("invalid limitBytes %q", v)
		}
	}
	var since time.Time
	if v := q.Get("sinceSeconds"); v != "" {
		s, err := strconv.Atoi(v)
		if err != nil || s <= 0 {
			return fmt.Errorf("invalid sinceSeconds %q", v)
		}
		since = time.Now().Add(-time.Duration(s) * time.Second)
	}
	timestamps := flag("timestamps")
	format := func(e entry) []byte {
		out := e.content
		if !e.partial {
			out = append(out[:len(out):len(out)], '\n')
		}
		if timestamps {
			out = append([]byte(e.ts.Format(time.RFC3339Nano)+" "), out...)
		}
		return out
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	var written int64
	emit := func(b []byte) bool {
		if limit >= 0 && written+int64(len(b)) > limit {
			b = b[:limit-written]
		}
		n, err := w.Write(b)
		written += int64(n)
		return err == nil && (limit < 0 || written < limit)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var lines [][]byte
	var pending []byte
	readAll := func() {
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				line = append(pending, line[:len(line)-1]...)
				pending = nil
				if e, ok := parse(line); ok && !e.ts.Before(since) {
					lines = append(lines, format(e))
				}
			} else if len(line) > 0 {
				pending = append(pending, line...)
			}
			if err != nil {
				return
			}
		}
	}
	readAll()
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if !emit(l) {
			return nil
		}
	}
	lines = nil
	if !flag("follow") {
		return nil
	}
	flusher, _ := w.(http.Flusher)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		readAll()
		for _, l := range lines {
			if !emit(l) {
				return nil
			}
		}
		lines = nil
	}
}
