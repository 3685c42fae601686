package rest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

// seenRequest is what the fake kubelet was asked.
type seenRequest struct {
	method, path string
	query        url.Values
	header       http.Header
	clientCert   bool
}

// fakeKubelet answers upgrades on /exec, /attach and /portForward with 101
// and echoes the upgraded connection; container "gone" is refused as
// upstream's kubelet does.
type fakeKubelet struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []seenRequest
	closed chan struct{} // a proxied connection ended on the kubelet's side
	wg     sync.WaitGroup
}

func startFakeKubelet(t *testing.T) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{closed: make(chan struct{}, 16)}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.seen = append(k.seen, seenRequest{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), clientCert: r.TLS != nil && len(r.TLS.PeerCertificates) > 0})
		k.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/gone") {
			http.Error(w, `container not found ("gone")`, http.StatusInternalServerError)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		k.wg.Go(func() {
			defer c.Close()
			upgrade := r.Header.Get("Upgrade")
			_, _ = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\nX-Stream-Protocol-Version: %s\r\n\r\nhello from the kubelet\n", upgrade, r.Header.Get("X-Stream-Protocol-Version"))
			// Echo lines until the client goes.
			s := bufio.NewScanner(brw.Reader)
			for s.Scan() {
				if _, err := fmt.Fprintf(c, "echo: %s\n", s.Text()); err != nil {
					break
				}
			}
			k.closed <- struct{}{}
		})
	}))
	k.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12}
	k.srv.StartTLS()
	t.Cleanup(func() {
		k.srv.Close()
		k.wg.Wait()
	})
	return k
}

func (k *fakeKubelet) last(t *testing.T) seenRequest {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.seen) == 0 {
		t.Fatal("the kubelet saw no request")
	}
	return k.seen[len(k.seen)-1]
}

// apiConn sends a raw request to the apiserver and returns the response
// with the connection it came on.
func apiConn(t *testing.T, env *harness.Env, method, path string, header http.Header) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	kc, err := kubeconfig.Load(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := kc.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc.NextProtos = []string{"http/1.1"}
	host, err := kc.Host()
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", host, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req, _ := http.NewRequest(method, "https://"+host+path, nil)
	req.Header = header
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, br, c
}

func upgradeHeader(upgrade string) http.Header {
	h := http.Header{}
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", upgrade)
	h.Set("Authorization", "Bearer secret")
	if upgrade == "websocket" {
		h.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		h.Set("Sec-WebSocket-Version", "13")
		h.Set("Sec-WebSocket-Protocol", "v5.channel.k8s.io")
	} else {
		h.Add("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	}
	return h
}

// statusOf decodes a Status answer.
func statusOf(t *testing.T, resp *http.Response) metav1.Status {
	t.Helper()
	defer resp.Body.Close()
	var st metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decode Status (HTTP %d): %v", resp.StatusCode, err)
	}
	return st
}

func TestPodConnect(t *testing.T) {
	kubelet := startFakeKubelet(t)
	env := harness.Start(t)
	ctx := context.Background()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(kubelet.srv.URL, "https://"))
	p, _ := strconv.Atoi(port)
	nodes := client.For[*corev1.Node](env.Client)
	n, err := nodes.Create(ctx, "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	if _, err := nodes.UpdateStatus(ctx, "", n); err != nil {
		t.Fatal(err)
	}
	pods := client.For[*corev1.Pod](env.Client)
	mk := func(name, node string, containers ...string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: node}}
		for _, c := range containers {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
		}
		if _, err := pods.Create(ctx, "default", pod); err != nil {
			t.Fatal(err)
		}
	}
	mk("p", "n1", "c", "gone")
	mk("one", "n1", "c")
	mk("unbound", "", "c")

	t.Run("errors before the upgrade", func(t *testing.T) {
		for _, tc := range []struct {
			path   string
			header http.Header
			code   int32
			reason metav1.StatusReason
			msg    string
		}{
			{"/api/v1/namespaces/default/pods/nosuch/exec?command=true", upgradeHeader("SPDY/3.1"), 404, metav1.StatusReasonNotFound, `pods "nosuch" not found`},
			{"/api/v1/namespaces/default/pods/nosuch/portforward", upgradeHeader("SPDY/3.1"), 404, metav1.StatusReasonNotFound, `pods "nosuch" not found`},
			{"/api/v1/namespaces/default/pods/p/exec?command=true&container=x", upgradeHeader("SPDY/3.1"), 400, metav1.StatusReasonBadRequest, "container x is not valid for pod p"},
			{"/api/v1/namespaces/default/pods/p/exec?command=true", upgradeHeader("SPDY/3.1"), 400, metav1.StatusReasonBadRequest, "a container name must be specified for pod p, choose one of: [c gone]"},
			{"/api/v1/namespaces/default/pods/unbound/exec?command=true", upgradeHeader("SPDY/3.1"), 400, metav1.StatusReasonBadRequest, "pod unbound does not have a host assigned"},
			{"/api/v1/namespaces/default/pods/unbound/portforward", upgradeHeader("websocket"), 400, metav1.StatusReasonBadRequest, "pod unbound does not have a host assigned"},
			{"/api/v1/namespaces/default/pods/one/exec?command=true", http.Header{}, 400, metav1.StatusReasonBadRequest, "Upgrade request required"},
			{"/api/v1/namespaces/default/pods/one/exec?command=true&stdin=maybe", upgradeHeader("SPDY/3.1"), 400, metav1.StatusReasonBadRequest, `invalid value "maybe" for stdin`},
		} {
			resp, _, _ := apiConn(t, env, http.MethodPost, tc.path, tc.header)
			st := statusOf(t, resp)
			if st.Code != tc.code || st.Reason != tc.reason || !strings.Contains(st.Message, tc.msg) {
				t.Errorf("%s: %d %s %q, want %d %s %q", tc.path, st.Code, st.Reason, st.Message, tc.code, tc.reason, tc.msg)
			}
		}
	})

	t.Run("the kubelet's refusal passes through", func(t *testing.T) {
		resp, _, _ := apiConn(t, env, http.MethodPost, "/api/v1/namespaces/default/pods/p/exec?command=true&container=gone", upgradeHeader("SPDY/3.1"))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || strings.TrimSpace(string(b)) != `container not found ("gone")` {
			t.Errorf("%d %q", resp.StatusCode, b)
		}
	})

	for _, tc := range []struct {
		name, method, path, upgrade string
		wantPath                    string
		wantQuery                   url.Values
	}{
		{"exec over SPDY", http.MethodPost, "/api/v1/namespaces/default/pods/one/exec?command=echo&command=hi&stdin=true&stdout=true&stderr=false&tty=false", "SPDY/3.1",
			"/exec/default/one/c", url.Values{"command": {"echo", "hi"}, "input": {"1"}, "output": {"1"}}},
		{"exec over websocket", http.MethodGet, "/api/v1/namespaces/default/pods/p/exec?command=sh&container=c&stdin=true&tty=true", "websocket",
			"/exec/default/p/c", url.Values{"command": {"sh"}, "input": {"1"}, "output": {"1"}, "error": {"1"}, "tty": {"1"}}},
		{"attach defaults", http.MethodPost, "/api/v1/namespaces/default/pods/one/attach", "SPDY/3.1",
			"/attach/default/one/c", url.Values{"output": {"1"}, "error": {"1"}}},
		{"portforward over websocket", http.MethodGet, "/api/v1/namespaces/default/pods/p/portforward?ports=8080&ports=9090", "websocket",
			"/portForward/default/p", url.Values{"port": {"8080,9090"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, br, c := apiConn(t, env, tc.method, tc.path, upgradeHeader(tc.upgrade))
			if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), tc.upgrade) {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("HTTP %d %v %q, want 101 to %s", resp.StatusCode, resp.Header, b, tc.upgrade)
			}
			seen := kubelet.last(t)
			if seen.method != tc.method || seen.path != tc.wantPath || !seen.clientCert {
				t.Errorf("kubelet saw %s %s (client certificate %v), want %s %s with one", seen.method, seen.path, seen.clientCert, tc.method, tc.wantPath)
			}
			if d := cmp.Diff(tc.wantQuery, seen.query); d != "" {
				t.Errorf("kubelet query (-want +got):\n%s", d)
			}
			if seen.header.Get("Authorization") != "" || seen.header.Get("X-Forwarded-For") == "" {
				t.Errorf("kubelet headers %v: want no Authorization, an X-Forwarded-For", seen.header)
			}
			if tc.upgrade == "websocket" && seen.header.Get("Sec-WebSocket-Key") == "" {
				t.Errorf("kubelet headers %v: want the WebSocket handshake", seen.header)
			}
			// Bytes both ways after the switch.
			line, err := br.ReadString('\n')
			if err != nil || line != "hello from the kubelet\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			for _, msg := range []string{"one", "two"} {
				if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
					t.Fatal(err)
				}
				if line, err := br.ReadString('\n'); err != nil || line != "echo: "+msg+"\n" {
					t.Fatalf("echo %q, %v", line, err)
				}
			}
			// The client going ends the kubelet's side.
			_ = c.Close()
			select {
			case <-kubelet.closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the kubelet's side stayed open after the client went")
			}
		})
	}
}
