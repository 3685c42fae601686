// Package kubeconfig reads and writes the kubeconfig file format that kubectl
// uses (clusters, users and contexts with embedded or file-referenced
// certificates), for the subset Coxswain components need.
package kubeconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// File is the on-disk kubeconfig document.
type File struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []NamedCluster `json:"clusters"`
	Users          []NamedUser    `json:"users"`
	Contexts       []NamedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

// NamedCluster is a cluster entry.
type NamedCluster struct {
	Name    string  `json:"name"`
	Cluster Cluster `json:"cluster"`
}

// Cluster says where the apiserver is and which CA signs it.
type Cluster struct {
	Server                   string `json:"server"`
	CertificateAuthority     string `json:"certificate-authority,omitempty"`
	CertificateAuthorityData string `json:"certificate-authority-data,omitempty"`
	TLSServerName            string `json:"tls-server-name,omitempty"`
}

// NamedUser is a user entry.
type NamedUser struct {
	Name string   `json:"name"`
	User AuthInfo `json:"user"`
}

// AuthInfo holds a client certificate.
type AuthInfo struct {
	ClientCertificate     string `json:"client-certificate,omitempty"`
	ClientCertificateData string `json:"client-certificate-data,omitempty"`
	ClientKey             string `json:"client-key,omitempty"`
	ClientKeyData         string `json:"client-key-data,omitempty"`
}

// NamedContext is a context entry.
type NamedContext struct {
	Name    string  `json:"name"`
	Context Context `json:"context"`
}

// Context ties a cluster to a user.
type Context struct {
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace,omitempty"`
}

// Config is the resolved current context: where to connect and with what.
type Config struct {
	// Server is the apiserver URL, e.g. https://127.0.0.1:6443.
	Server        string
	CAPEM         []byte
	CertPEM       []byte
	KeyPEM        []byte
	TLSServerName string
	Namespace     string
}

// Host returns host:port of the server URL.
func (c *Config) Host() (string, error) {
	u, err := url.Parse(c.Server)
	if err != nil {
		return "", fmt.Errorf("parse server %q: %w", c.Server, err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server %q has no host", c.Server)
	}
	return u.Host, nil
}

// TLSConfig builds the client TLS configuration: trust the CA, present the
// client certificate.
func (c *Config) TLSConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if len(c.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CAPEM) {
			return nil, errors.New("kubeconfig: certificate authority holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if len(c.CertPEM) > 0 || len(c.KeyPEM) > 0 {
		cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Load reads a kubeconfig file and resolves its current context.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	var f File
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("parse kubeconfig %s: %w", path, err)
	}
	return f.Resolve(filepath.Dir(path))
}

// Resolve picks the current context; relative file references are taken
// from dir.
func (f *File) Resolve(dir string) (*Config, error) {
	ctxName := f.CurrentContext
	if ctxName == "" && len(f.Contexts) == 1 {
		ctxName = f.Contexts[0].Name
	}
	var kctx *Context
	for i := range f.Contexts {
		if f.Contexts[i].Name == ctxName {
			kctx = &f.Contexts[i].Context
		}
	}
	if kctx == nil {
		return nil, fmt.Errorf("kubeconfig: context %q not found", ctxName)
	}
	cfg := &Config{Namespace: kctx.Namespace}
	found := false
	for _, c := range f.Clusters {
		if c.Name != kctx.Cluster {
			continue
		}
		found = true
		cfg.Server, cfg.TLSServerName = c.Cluster.Server, c.Cluster.TLSServerName
		var err error
		if cfg.CAPEM, err = dataOrFile(c.Cluster.CertificateAuthorityData, c.Cluster.CertificateAuthority, dir); err != nil {
			return nil, fmt.Errorf("kubeconfig cluster %q: %w", c.Name, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("kubeconfig: cluster %q not found", kctx.Cluster)
	}
	for _, u := range f.Users {
		if u.Name != kctx.User {
			continue
		}
		var err error
		if cfg.CertPEM, err = dataOrFile(u.User.ClientCertificateData, u.User.ClientCertificate, dir); err != nil {
			return nil, fmt.Errorf("kubeconfig user %q: %w", u.Name, err)
		}
		if cfg.KeyPEM, err = dataOrFile(u.User.ClientKeyData, u.User.ClientKey, dir); err != nil {
			return nil, fmt.Errorf("kubeconfig user %q: %w", u.Name, err)
		}
	}
	return cfg, nil
}

func dataOrFile(data, file, dir string) ([]byte, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("decode base64 data: %w", err)
		}
		return b, nil
	}
	if file == "" {
		return nil, nil
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return b, nil
}

// New builds a one-context kubeconfig document with embedded certificates.
func New(name string, cfg *Config) *File {
	ctx := Context{Cluster: name, User: name, Namespace: cfg.Namespace}
	return &File{
		APIVersion: "v1",
		Kind:       "Config",
		Clusters: []NamedCluster{{Name: name, Cluster: Cluster{
			Server:                   cfg.Server,
			CertificateAuthorityData: base64.StdEncoding.EncodeToString(cfg.CAPEM),
			TLSServerName:            cfg.TLSServerName,
		}}},
		Users: []NamedUser{{Name: name, User: AuthInfo{
			ClientCertificateData: base64.StdEncoding.EncodeToString(cfg.CertPEM),
			ClientKeyData:         base64.StdEncoding.EncodeToString(cfg.KeyPEM),
		}}},
		Contexts:       []NamedContext{{Name: name, Context: ctx}},
		CurrentContext: name,
	}
}

// Write saves a kubeconfig for cfg at path (mode 0600), atomically.
func Write(path, name string, cfg *Config) error {
	raw, err := yaml.Marshal(New(name, cfg))
	if err != nil {
		return fmt.Errorf("encode kubeconfig: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
