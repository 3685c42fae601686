package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

func TestWriteKubeconfigs(t *testing.T) {
	dataDir := t.TempDir()
	b, err := Ensure(filepath.Join(dataDir, "pki"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const server = "https://127.0.0.1:6443"
	if err := WriteKubeconfigs(dataDir, server, b); err != nil {
		t.Fatalf("WriteKubeconfigs: %v", err)
	}
	if got := readFile(t, filepath.Join(dataDir, CACertFile)); !bytes.Equal(got, b.CAPEM) {
		t.Errorf("%s/ca.crt differs from the CA", dataDir)
	}

	tests := []struct {
		file       string
		wantUser   string
		wantGroups []string
	}{
		{"admin.kubeconfig", "admin", []string{"system:masters"}},
		{"scheduler.kubeconfig", "system:kube-scheduler", nil},
		{"controller-manager.kubeconfig", "system:kube-controller-manager", nil},
		{"kube-proxy.kubeconfig", "system:kube-proxy", []string{"system:node-proxier"}},
		{"kubelet.kubeconfig", "system:kubelet", []string{"system:nodes"}},
	}
	if got, want := len(tests), len(Kubeconfigs); got != want {
		t.Errorf("test covers %d kubeconfigs, Kubeconfigs lists %d", got, want)
	}
	before := map[string][]byte{}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dataDir, tc.file)
			before[tc.file] = readFile(t, path)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
				t.Errorf("mode = %v, want %v", got, want)
			}
			cfg, err := kubeconfig.Load(path)
			if err != nil {
				t.Fatalf("kubeconfig.Load: %v", err)
			}
			if cfg.Server != server {
				t.Errorf("Server = %q, want %q", cfg.Server, server)
			}
			if !bytes.Equal(cfg.CAPEM, b.CAPEM) {
				t.Errorf("CA data differs from the bundle's CA")
			}
			u := userFromKubeconfig(t, cfg, b)
			if u.Name != tc.wantUser {
				t.Errorf("user = %q, want %q", u.Name, tc.wantUser)
			}
			if want := append(slices.Clone(tc.wantGroups), authn.GroupAuthenticated); !slices.Equal(u.Groups, want) {
				t.Errorf("groups = %v, want %v", u.Groups, want)
			}
		})
	}

	// A restart keeps every file byte for byte.
	b2, err := Ensure(filepath.Join(dataDir, "pki"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfigs(dataDir, server, b2); err != nil {
		t.Fatalf("second WriteKubeconfigs: %v", err)
	}
	for file, want := range before {
		if got := readFile(t, filepath.Join(dataDir, file)); !bytes.Equal(got, want) {
			t.Errorf("%s rewritten on restart, want it kept", file)
		}
	}

	// A kubeconfig trusting another CA (the pki directory was replaced) is rewritten.
	other, err := Ensure(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfigs(dataDir, server, other); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeconfig.Load(filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.CAPEM, other.CAPEM) {
		t.Errorf("admin.kubeconfig kept the old CA after the CA changed")
	}
}

func TestWriteKubeconfigsRenewsExpiring(t *testing.T) {
	dataDir := t.TempDir()
	past := time.Now().Add(-350 * 24 * time.Hour)
	old, err := Ensure(filepath.Join(dataDir, "pki"), Options{Now: func() time.Time { return past }})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfigs(dataDir, "https://127.0.0.1:6443", old); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, filepath.Join(dataDir, "admin.kubeconfig"))
	b, err := Ensure(filepath.Join(dataDir, "pki"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKubeconfigs(dataDir, "https://127.0.0.1:6443", b); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dataDir, "admin.kubeconfig")); bytes.Equal(got, before) {
		t.Errorf("admin.kubeconfig with a certificate expiring in 15 days was kept, want it renewed")
	}
}

func TestIssueNodeKubeconfig(t *testing.T) {
	b, err := Ensure(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		node     string
		wantUser string
		wantErr  bool
	}{
		{node: "node-1", wantUser: "system:node:node-1"},
		{node: "", wantErr: true},
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "nodes", tc.node, "kubelet.kubeconfig")
		err := IssueNodeKubeconfig(path, "https://10.0.0.1:6443", tc.node, b)
		if (err != nil) != tc.wantErr {
			t.Errorf("IssueNodeKubeconfig(%q) error = %v, want error %v", tc.node, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		cfg, err := kubeconfig.Load(path)
		if err != nil {
			t.Fatalf("kubeconfig.Load: %v", err)
		}
		u := userFromKubeconfig(t, cfg, b)
		if want := []string{"system:nodes", authn.GroupAuthenticated}; u.Name != tc.wantUser || !slices.Equal(u.Groups, want) {
			t.Errorf("user = %q %v, want %q %v", u.Name, u.Groups, tc.wantUser, want)
		}
	}
}

// userFromKubeconfig authenticates the kubeconfig's client certificate
// without a connection.
func userFromKubeconfig(t *testing.T, cfg *kubeconfig.Config, b *Bundle) *authn.User {
	t.Helper()
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatalf("TLSConfig: %v", err)
	}
	if len(tc.Certificates) != 1 || tc.Certificates[0].Leaf == nil {
		t.Fatalf("kubeconfig holds no client certificate")
	}
	u, err := authn.FromTLS(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.Certificates[0].Leaf}}, b.Pool)
	if err != nil {
		t.Fatalf("FromTLS: %v", err)
	}
	return u
}

// TestTLSHandshake connects a client built from admin.kubeconfig to a TLS
// listener serving the bundle's certificate, as the apiserver does.
func TestTLSHandshake(t *testing.T) {
	dataDir := t.TempDir()
	b, err := Ensure(filepath.Join(dataDir, "pki"), Options{Hosts: []string{"10.96.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{b.Serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    b.Pool,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	server := "https://" + ln.Addr().String()
	if err := WriteKubeconfigs(dataDir, server, b); err != nil {
		t.Fatal(err)
	}

	type result struct {
		user *authn.User
		err  error
	}
	results := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			results <- result{err: err}
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			results <- result{err: err}
			return
		}
		state := tc.ConnectionState()
		u, err := authn.FromTLS(&state, b.Pool)
		results <- result{user: u, err: err}
		_, _ = conn.Write([]byte("ok"))
	}()

	cfg, err := kubeconfig.Load(filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.Server)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig.ServerName = u.Hostname()
	if got, want := tlsConfig.ServerName, "127.0.0.1"; got != want {
		t.Fatalf("ServerName = %q, want %q", got, want)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, tlsConfig)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		t.Errorf("read = %q, %v; want \"ok\"", buf, err)
	}
	r := <-results
	if r.err != nil {
		t.Fatalf("server side: %v", r.err)
	}
	if want := []string{"system:masters", authn.GroupAuthenticated}; r.user.Name != "admin" || !slices.Equal(r.user.Groups, want) {
		t.Errorf("server saw user %q %v, want %q %v", r.user.Name, r.user.Groups, "admin", want)
	}
}
