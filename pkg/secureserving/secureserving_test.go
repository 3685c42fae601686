package secureserving

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func serve(t *testing.T, lis net.Listener) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return "https://" + lis.Addr().String() + "/healthz"
}

func get(url string, cfg *tls.Config) (string, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestSelfSignedServesLoopback(t *testing.T) {
	o := &Options{BindAddress: "127.0.0.1"}
	lis, err := o.Listen("kube-scheduler", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, lis)
	if _, err := get(url, &tls.Config{MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("a self-signed certificate was trusted without being pinned")
	}
	// Trusting the certificate the server presents must verify for 127.0.0.1.
	conn, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // fetching the cert to pin it
	if err != nil {
		t.Fatal(err)
	}
	cert := conn.ConnectionState().PeerCertificates[0]
	_ = conn.Close()
	if !strings.HasPrefix(cert.Subject.CommonName, "kube-scheduler@") {
		t.Errorf("subject %q, want kube-scheduler@<time>", cert.Subject.CommonName)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	body, err := get(url, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil || body != "ok" {
		t.Fatalf("GET with the pinned certificate: %q, %v", body, err)
	}
}

func TestCertFilesAndClientCAs(t *testing.T) {
	cert, err := SelfSigned("node-a", []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)

	o := &Options{BindAddress: "127.0.0.1", CertFile: certFile, KeyFile: keyFile}
	lis, err := o.Listen("ignored", nil, pool)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, lis)
	if _, err := get(url, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("a client without a certificate was let in although client CAs are set")
	}
	conn, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("dial with the file certificate trusted: %v", err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; !strings.HasPrefix(got, "node-a@") {
		t.Errorf("served certificate %q, want the one from --tls-cert-file", got)
	}
	_ = conn.Close()
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{BindAddress: "0.0.0.0", CertFile: "a"}, "must be given together"},
		{Options{BindAddress: "0.0.0.0", KeyFile: "a"}, "must be given together"},
		{Options{BindAddress: "::", Port: 70000}, "between 0 and 65535"},
		{Options{BindAddress: "127.0.0.1", Port: 10259}, ""},
		{Options{BindAddress: "localhost"}, "not an IP address"},
	} {
		err := tc.o.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestMissingCertFile(t *testing.T) {
	o := &Options{BindAddress: "127.0.0.1", CertFile: "/nonexistent/tls.crt", KeyFile: "/nonexistent/tls.key"}
	if _, err := o.Listen("x", nil, nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/tls.crt") {
		t.Fatalf("error %v, want one naming the certificate file", err)
	}
}
