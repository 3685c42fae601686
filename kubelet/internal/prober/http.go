package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
// no certificate verification (as upstream).
func newTransport() *http.Transport {
	return &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as upstream
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil,
		DialContext:        probeDialer().DialContext,
	}
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
func (m *Manager) httpProbe(req *http.Request, timeout time.Duration) (outcome, string, error) {
	client := &http.Client{Timeout: timeout, Transport: m.transport, CheckRedirect: redirectChecker}
	res, err := client.Do(req)
	if err != nil {
		// Errors (timeouts included) are failures.
		return outFailure, err.Error(), nil
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
