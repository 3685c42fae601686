package kubeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.kubeconfig")
	in := &Config{Server: "https://127.0.0.1:6443", CAPEM: []byte("ca"), CertPEM: []byte("cert"), KeyPEM: []byte("key"), Namespace: "team"}
	if err := Write(path, "coxswain", in); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	out, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if out.Server != in.Server || string(out.CAPEM) != "ca" || string(out.CertPEM) != "cert" || string(out.KeyPEM) != "key" || out.Namespace != "team" {
		t.Fatalf("loaded %+v, want %+v", out, in)
	}
	if host, err := out.Host(); err != nil || host != "127.0.0.1:6443" {
		t.Fatalf("Host() = %q %v", host, err)
	}
}

func TestLoadFileReferencesAndErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"ca.crt": "CA", "c.crt": "CERT", "c.key": "KEY"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}
users:
- name: u
  user: {client-certificate: c.crt, client-key: c.key}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
	path := filepath.Join(dir, "k")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.CAPEM) != "CA" || string(cfg.CertPEM) != "CERT" || string(cfg.KeyPEM) != "KEY" {
		t.Fatalf("relative file references not resolved: %+v", cfg)
	}
	if _, err := cfg.TLSConfig(); err == nil {
		t.Fatal("TLSConfig accepted a CA without a PEM certificate")
	}
	tests := map[string]string{
		"missing context": strings.Replace(doc, "current-context: x", "current-context: y", 1),
		"missing cluster": strings.Replace(doc, "{cluster: c,", "{cluster: nope,", 1),
		"bad yaml":        "clusters: [",
		"bad base64":      strings.Replace(doc, "certificate-authority: ca.crt", "certificate-authority-data: '!!!'", 1),
	}
	for name, body := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
	if _, err := Load(filepath.Join(dir, "absent")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
