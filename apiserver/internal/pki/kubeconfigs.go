package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

// ClusterName names the cluster, user and context in the kubeconfigs written.
const ClusterName = "coxswain"

// Identity is a client certificate subject: user name and groups.
type Identity struct {
	CommonName string
	Groups     []string
}

// Kubeconfigs lists the kubeconfig files WriteKubeconfigs puts in the data
// directory and the identity each one carries.
var Kubeconfigs = map[string]Identity{
	"admin.kubeconfig":              {CommonName: "admin", Groups: []string{"system:masters"}},
	"scheduler.kubeconfig":          {CommonName: "system:kube-scheduler"},
	"controller-manager.kubeconfig": {CommonName: "system:kube-controller-manager"},
	"kube-proxy.kubeconfig":         {CommonName: "system:kube-proxy", Groups: []string{"system:node-proxier"}},
	// A generic kubelet identity for nodes joining without their own
	// certificate; IssueNodeKubeconfig makes per-node ones.
	"kubelet.kubeconfig": {CommonName: "system:kubelet", Groups: []string{"system:nodes"}},
}

// WriteKubeconfigs writes the component kubeconfigs (see Kubeconfigs) in
// dataDir for the apiserver at server (e.g. https://127.0.0.1:6443), and
// copies the CA certificate to dataDir/ca.crt for nodes joining.
//
// An existing kubeconfig is kept across restarts; it is rewritten only when
// it does not load, names another server URL, trusts another CA, or its
// client certificate is not
// valid for at least RenewBefore more.
func WriteKubeconfigs(dataDir, server string, b *Bundle) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("pki: create %s: %w", dataDir, err)
	}
	for name, id := range Kubeconfigs {
		path := filepath.Join(dataDir, name)
		if b.kubeconfigUsable(path, server) {
			continue
		}
		if err := b.writeKubeconfig(path, server, id.CommonName, id.Groups); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dataDir, CACertFile), b.CAPEM, 0o644)
}

// IssueNodeKubeconfig writes (always, replacing any file there) a kubeconfig
// at path for the kubelet of nodeName: user system:node:<nodeName> in group
// system:nodes.
func IssueNodeKubeconfig(path, server, nodeName string, b *Bundle) error {
	if nodeName == "" {
		return errors.New("pki: node kubeconfig needs a node name")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pki: create %s: %w", filepath.Dir(path), err)
	}
	return b.writeKubeconfig(path, server, "system:node:"+nodeName, []string{"system:nodes"})
}

func (b *Bundle) writeKubeconfig(path, server, cn string, groups []string) error {
	certPEM, keyPEM, err := b.IssueClient(cn, groups, ClientValidity)
	if err != nil {
		return err
	}
	cfg := &kubeconfig.Config{Server: server, CAPEM: b.CAPEM, CertPEM: certPEM, KeyPEM: keyPEM}
	if err := kubeconfig.Write(path, ClusterName, cfg); err != nil {
		return fmt.Errorf("pki: %s: %w", path, err)
	}
	return nil
}

// kubeconfigUsable reports whether the kubeconfig at path loads, trusts
// this CA, and holds a client certificate from this CA that stays valid for
// RenewBefore.
func (b *Bundle) kubeconfigUsable(path, server string) bool {
	cfg, err := kubeconfig.Load(path)
	if err != nil || cfg.Server != server || !bytes.Equal(bytes.TrimSpace(cfg.CAPEM), bytes.TrimSpace(b.CAPEM)) {
		return false
	}
	if _, err := cfg.TLSConfig(); err != nil {
		return false
	}
	cert, err := parseCertPEM(cfg.CertPEM)
	if err != nil {
		return false
	}
	now := b.now()
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       b.Pool,
		CurrentTime: now.Add(RenewBefore),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err == nil && !now.Before(cert.NotBefore)
}
