package rest

import (
	"bufio"
	"bytes"
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
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kubeletPaths maps the pods' connect subresources to the kubelet API's
// paths they are proxied to.
var kubeletPaths = map[string]string{"exec": "exec", "attach": "attach", "portforward": "portForward"}

// isPodConnect reports whether req is pods/exec, pods/attach or
// pods/portforward, served by proxying an upgraded connection to the
// pod's kubelet.
func isPodConnect(req *request) bool {
	return req.gvr.Group == "" && req.gvr.Resource == "pods" && req.name != "" && kubeletPaths[req.subresource] != ""
}

const (
	// kubeletDialTimeout bounds dialing the kubelet and reading its answer
	// to the upgrade request.
	kubeletDialTimeout = 30 * time.Second
	// halfCloseGrace is how long a proxied connection stays half-open once
	// one side has ended, for the other side to read what was sent and end
	// too; then both are closed.
	halfCloseGrace = 5 * time.Second
)

// podConnect serves pods/exec, pods/attach and pods/portforward (GET or
// POST with Upgrade: SPDY/3.1 or websocket) as upstream's apiserver does:
// it finds the pod's container and node, and proxies the upgraded
// connection to the node's kubelet (/exec/<ns>/<pod>/<container>,
// /attach/..., /portForward/<ns>/<pod>) with the apiserver's kubelet client
// certificate, the query translated to the kubelet's parameters. Errors
// before the upgrade are Status objects; a kubelet that refuses the upgrade
// has its answer passed on.
func (h *Handler) podConnect(w http.ResponseWriter, r *http.Request, req *request) {
	gr := schema.GroupResource{Resource: "pods/" + req.subresource}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, r, apierrors.NewMethodNotSupported(gr, r.Method))
		return
	}
	if h.KubeletClient == nil {
		writeError(w, r, apierrors.NewServiceUnavailable("the apiserver has no kubelet client credentials"))
		return
	}
	obj, err := req.store.Get(r.Context(), req.namespace, req.name, "")
	if err != nil {
		writeError(w, r, err)
		return
	}
	pod := obj.(*corev1.Pod)
	q := r.URL.Query()
	params := url.Values{}
	var path string
	if req.subresource == "portforward" {
		var ports []string
		for _, v := range q["ports"] {
			for _, p := range strings.Split(v, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
				if err != nil || n == 0 {
					writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("invalid port %q", p)))
					return
				}
				ports = append(ports, strconv.FormatUint(n, 10))
			}
		}
		if len(ports) > 0 {
			params.Set(corev1.PortHeader, strings.Join(ports, ","))
		}
		path = "/portForward/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name)
	} else {
		container, err := validateContainer(q.Get("container"), pod)
		if err != nil {
			writeError(w, r, err)
			return
		}
		// PodExecOptions and PodAttachOptions default stdout and stderr to true.
		for _, f := range []struct {
			name, param string
			def         bool
		}{
			{"stdin", corev1.ExecStdinParam, false},
			{"stdout", corev1.ExecStdoutParam, true},
			{"stderr", corev1.ExecStderrParam, true},
			{"tty", corev1.ExecTTYParam, false},
		} {
			on := f.def
			if v := q.Get(f.name); v != "" {
				if on, err = strconv.ParseBool(v); err != nil {
					writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("invalid value %q for %s: %v", v, f.name, err)))
					return
				}
			}
			if on {
				params.Set(f.param, "1")
			}
		}
		if req.subresource == "exec" {
			for _, c := range q["command"] {
				params.Add(corev1.ExecCommandParam, c)
			}
		}
		path = "/" + kubeletPaths[req.subresource] + "/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container)
	}
	if pod.Spec.NodeName == "" {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	host, err := h.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !isUpgradeRequest(r) {
		writeError(w, r, apierrors.NewBadRequest("Upgrade request required"))
		return
	}
	target := &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: params.Encode()}
	h.proxyUpgrade(w, r, target)
}

// validateContainer returns the container of the pod a request names, or
// the pod's only container, with upstream's errors.
func validateContainer(container string, pod *corev1.Pod) (string, error) {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	if container == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		default:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, names))
		}
	}
	for _, n := range names {
		if n == container {
			return container, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name))
}

// kubeletHost returns host:port of the kubelet API of node: its first
// InternalIP and its kubelet endpoint's port (10250 when unset).
func (h *Handler) kubeletHost(ctx context.Context, nodeName string) (string, error) {
	nodes, _ := h.Registry.Store(corev1.SchemeGroupVersion.WithResource("nodes"))
	obj, err := nodes.Get(ctx, "", nodeName, "")
	if err != nil {
		return "", err
	}
	return nodeKubeletHost(obj.(*corev1.Node))
}

// nodeKubeletHost returns host:port of node's kubelet API: its first
// InternalIP and its kubelet endpoint's port (10250 when unset).
func nodeKubeletHost(node *corev1.Node) (string, error) {
	host := ""
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && host == "" {
			host = a.Address
		}
	}
	if host == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no InternalIP address", node.Name))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = 10250
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// isUpgradeRequest reports whether r asks for a connection upgrade.
func isUpgradeRequest(r *http.Request) bool {
	for _, v := range r.Header.Values("Connection") {
		if strings.Contains(strings.ToLower(v), "upgrade") {
			return true
		}
	}
	return false
}

// forwardedHeaders are the request's headers sent on to the kubelet: all
// but credentials and impersonation, plus X-Forwarded-For.
func forwardedHeaders(r *http.Request) http.Header {
	out := http.Header{}
	for k, vs := range r.Header {
		switch ck := http.CanonicalHeaderKey(k); {
		case ck == "Authorization", ck == "Proxy-Authorization", ck == "Cookie", strings.HasPrefix(ck, "Impersonate-"):
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Get("X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		out.Set("X-Forwarded-For", ip)
	}
	return out
}

// kubeletTLS is the TLS configuration of the kubelet client, for HTTP/1.1
// (upgrades do not exist in HTTP/2).
func (h *Handler) kubeletTLS() *tls.Config {
	var cfg *tls.Config
	if t, ok := h.KubeletClient.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// proxyUpgrade sends the upgrade request to target and, once the kubelet
// has switched protocols, passes its answer to the client and pipes bytes
// both ways until either side ends, as upstream's UpgradeAwareHandler does.
func (h *Handler) proxyUpgrade(w http.ResponseWriter, r *http.Request, target *url.URL) {
	logger := h.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.With(zap.String("path", r.URL.Path), zap.String("kubelet", target.Host))
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: kubeletDialTimeout, KeepAlive: 30 * time.Second}, Config: h.kubeletTLS()}
	dctx, cancel := context.WithTimeout(r.Context(), kubeletDialTimeout)
	backend, err := d.DialContext(dctx, "tcp", target.Host)
	cancel()
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(fmt.Errorf("error dialing backend: %w", err)))
		return
	}
	defer backend.Close()
	out := &http.Request{
		Method: r.Method, URL: target, Host: target.Host, Header: forwardedHeaders(r),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	_ = backend.SetDeadline(time.Now().Add(kubeletDialTimeout))
	if err := out.Write(backend); err != nil {
		writeError(w, r, apierrors.NewInternalError(fmt.Errorf("error sending request: %w", err)))
		return
	}
	// raw keeps every byte read from the kubelet: the response's head and
	// whatever of the upgraded stream came with it, all for the client.
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(backend, &raw)), out)
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(fmt.Errorf("error reading the kubelet's response: %w", err)))
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		if resp.StatusCode < 400 {
			writeError(w, r, apierrors.NewInternalError(fmt.Errorf("invalid upgrade response: status code %d", resp.StatusCode)))
			return
		}
		// The kubelet's refusal goes to the client as it is: kubectl shows
		// "unable to upgrade connection: <body>".
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		for _, k := range []string{"Content-Type", "X-Content-Type-Options", "X-Accepted-Stream-Protocol-Versions"} {
			if vs := resp.Header.Values(k); len(vs) > 0 {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	_ = backend.SetDeadline(time.Time{})
	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(fmt.Errorf("error hijacking connection: %w", err)))
		return
	}
	defer client.Close()
	if rec, ok := w.(*statusRecorder); ok {
		rec.code = http.StatusSwitchingProtocols
	}
	if _, err := client.Write(raw.Bytes()); err != nil {
		logger.Debug("write the kubelet's upgrade response", zap.Error(err))
		return
	}
	var fromClient io.Reader = client
	if n := buffered.Reader.Buffered(); n > 0 {
		fromClient = io.MultiReader(io.LimitReader(buffered.Reader, int64(n)), client)
	}
	// The request's context ends with the apiserver's serving (when it is
	// the connection's base context): the proxied connection ends with it.
	stop := context.AfterFunc(r.Context(), func() {
		_ = client.Close()
		_ = backend.Close()
	})
	defer stop()
	pipe(logger, client, fromClient, backend)
}

// pipe copies client to backend and backend to client. When one direction
// ends, the other side's write half is closed and, after halfCloseGrace at
// most, both connections; pipe returns when both copies have.
func pipe(logger *zap.Logger, client net.Conn, fromClient io.Reader, backend net.Conn) {
	type result struct {
		toBackend bool
		err       error
	}
	done := make(chan result, 2)
	go func() {
		_, err := io.Copy(backend, fromClient)
		done <- result{toBackend: true, err: err}
	}()
	go func() {
		_, err := io.Copy(client, backend)
		done <- result{toBackend: false, err: err}
	}()
	first := <-done
	if first.err != nil && !errors.Is(first.err, net.ErrClosed) {
		logger.Debug("proxied connection ended", zap.Bool("clientToKubelet", first.toBackend), zap.Error(first.err))
	}
	other := client
	if first.toBackend {
		other = backend
	}
	if cw, ok := other.(interface{ CloseWrite() error }); ok && first.err == nil {
		_ = cw.CloseWrite()
		timer := time.NewTimer(halfCloseGrace)
		select {
		case <-done:
			timer.Stop()
			return
		case <-timer.C:
		}
	}
	_ = client.Close()
	_ = backend.Close()
	<-done
}
