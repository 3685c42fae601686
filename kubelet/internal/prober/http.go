package prober

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// userAgent is what upstream's kubelet of the served API version sends;
// lifecycleUserAgent with lifecycle hooks.
const (
	userAgent          = "kube-probe/1.32"
	lifecycleUserAgent = "kube-lifecycle/1.32"
)

// maxRespBodyLength bounds the response body read, as upstream.
const maxRespBodyLength = 10 << 10

// probeDialer dials with SO_LINGER 1 s so that probes leave no sockets in
// TIME_WAIT (upstream's probe.ProbeDialer).
func probeDialer() *net.Dialer {
	return &net.Dialer{
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
}

// newTransport is the HTTP probes' transport: no proxy, no keep-alives,
// no certificate verification (as upstream). Plain http goes through
// probeTransport; this one serves https.
func newTransport() *http.Transport {
	return &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as upstream
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil,
		DialContext:        probeDialer().DialContext,
	}
}

// probeTransport is the HTTP probes' round tripper. A probe opens one
// connection, sends one request with "Connection: close" and reads one
// response, so plain http is dialed, written and read on the caller's
// goroutine: http.Transport would start a dial goroutine and a read and
// a write loop per connection, and with 100 probes a second those
// goroutines and their wake-ups were most of the kubelet's CPU (issue 7).
// https goes to tls, an http.Transport.
type probeTransport struct {
	dialer *net.Dialer
	tls    *http.Transport
}

func newProbeTransport() *probeTransport {
	return &probeTransport{dialer: probeDialer(), tls: newTransport()}
}

// aLongTimeAgo is a deadline in the past: set on a connection, it ends
// the reads and writes that wait on it.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper.
func (t *probeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.tls.RoundTrip(req)
	}
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled probe (the pod worker stopped it) ends at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The connection's deadline is the context's, and the netpoller
		// can pass it a moment before the context's own timer fires: a
		// deadline reached is the probe's timeout either way.
		if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	// Request.Write adds "Connection: close" when Close is set, as
	// http.Transport does with DisableKeepAlives.
	out := *req
	out.Close = true
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(conn)
	err = out.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writerPool.Put(bw)
	if err != nil {
		return fail(err)
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(conn)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		br.Reset(nil)
		readerPool.Put(br)
		return fail(err)
	}
	res.Body = &connBody{ReadCloser: res.Body, conn: conn, br: br, stop: stop}
	return res, nil
}

// The probes' buffers are reused: a hundred probes a second would
// otherwise allocate 5 KiB each.
var (
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1024) }}
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}
)

// connBody closes the probe's connection with the response body and
// gives its reader back.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	br   *bufio.Reader
	stop func() bool
	once sync.Once
}

func (b *connBody) Close() error {
	b.stop()
	err := b.ReadCloser.Close()
	if cerr := b.conn.Close(); err == nil {
		err = cerr
	}
	b.once.Do(func() {
		b.br.Reset(nil)
		readerPool.Put(b.br)
	})
	return err
}

// NewLifecycleRequest builds the GET request of a lifecycle hook's httpGet
// action, as upstream's: a probe's request to host (the pod IP when the
// action names none) at the action's port (80 when empty), with user
// agent kube-lifecycle.
func NewLifecycleRequest(ctx context.Context, h *corev1.HTTPGetAction, c *corev1.Container, podIP string) (*http.Request, error) {
	p := h.Port
	if p.Type == intstr.String && p.StrVal == "" {
		p = intstr.FromInt32(80)
	}
	port, err := resolvePort(p, c)
	if err != nil {
		return nil, err
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	if host == "" {
		return nil, errors.New("the pod has no IP for the httpGet hook")
	}
	return newHTTPRequestAgent(ctx, h, host, port, lifecycleUserAgent)
}

// newHTTPRequest builds the probe's GET request to host:port.
func newHTTPRequest(ctx context.Context, h *corev1.HTTPGetAction, host string, port int) (*http.Request, error) {
	return newHTTPRequestAgent(ctx, h, host, port, userAgent)
}

func newHTTPRequestAgent(ctx context.Context, h *corev1.HTTPGetAction, host string, port int, agent string) (*http.Request, error) {
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u, err := url.Parse(h.Path)
	if err != nil {
		u = &url.URL{Path: h.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("http probe request: %w", err)
	}
	headers := http.Header{}
	for _, hd := range h.HTTPHeaders {
		headers.Add(hd.Name, hd.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", agent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// redirectChecker follows redirects to the same host only (at most 10);
// a redirect elsewhere ends the probe with the redirect response, as
// upstream's kubelet does.
func redirectChecker(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// httpProbe is a success for 200 <= status < 400, a warning for a
// redirect not followed, a failure otherwise (connection errors included).
// The timeout is the request context's deadline: http.Client's own
// Timeout would start a goroutine per request.
func (m *Manager) httpProbe(req *http.Request, timeout time.Duration) (outcome, string, error) {
	parent := req.Context()
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	client := &http.Client{Transport: m.transport, CheckRedirect: redirectChecker}
	res, err := client.Do(req.WithContext(ctx))
	if err != nil {
		// Errors (timeouts included) are failures; a timeout reads as
		// upstream's, whose client has Timeout set.
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			msg += " (Client.Timeout exceeded while awaiting headers)"
		}
		return outFailure, msg, nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxRespBodyLength))
	if err != nil {
		return outFailure, "", fmt.Errorf("read http probe response: %w", err)
	}
	body := string(b)
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			return outWarning, fmt.Sprintf("Probe terminated redirects, Response body: %v", body), nil
		}
		return outSuccess, body, nil
	}
	return outFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}
