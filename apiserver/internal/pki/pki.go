// Package pki creates and keeps the apiserver's certificate authority and
// serving certificate under --data-dir/pki, and issues client certificates
// signed by that CA (for the kubeconfigs the apiserver writes on first start).
//
// Everything is idempotent: files that exist and are still good are loaded
// and kept across restarts, so kubeconfigs handed out earlier keep working.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names under the pki directory.
const (
	CACertFile      = "ca.crt"
	CAKeyFile       = "ca.key"
	ServingCertFile = "apiserver.crt"
	ServingKeyFile  = "apiserver.key"
)

// Validity periods and the renewal margin.
const (
	CAValidity      = 10 * 365 * 24 * time.Hour
	ServingValidity = 365 * 24 * time.Hour
	ClientValidity  = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry a certificate we issued is
	// replaced at start-up.
	RenewBefore = 30 * 24 * time.Hour
	// backdate absorbs small clock differences between machines.
	backdate = 5 * time.Minute
)

// CACommonName is the subject of the self-signed CA.
const CACommonName = "coxswain-ca"

// DefaultHosts are always in the serving certificate's SANs.
var DefaultHosts = []string{
	"127.0.0.1",
	"::1",
	"localhost",
	"kubernetes",
	"kubernetes.default",
	"kubernetes.default.svc",
	"kubernetes.default.svc.cluster.local",
}

// Options shape the serving certificate.
type Options struct {
	// Hosts are extra IP addresses and DNS names for the serving
	// certificate: the first IP of the service range (e.g. 10.96.0.1), the
	// bind address, the node's hostname and addresses. Unspecified addresses
	// (0.0.0.0, ::) and empty strings are ignored; DefaultHosts are always
	// added.
	Hosts []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bundle is the loaded CA and serving certificate.
type Bundle struct {
	// CACert and CAKey sign serving and client certificates.
	CACert *x509.Certificate
	CAKey  crypto.Signer
	// CAPEM is the CA certificate as PEM, as written to ca.crt.
	CAPEM []byte
	// Serving is the apiserver's TLS certificate (leaf then CA).
	Serving tls.Certificate
	// ServingCertPEM and ServingKeyPEM are the serving certificate's files.
	ServingCertPEM []byte
	ServingKeyPEM  []byte
	// Pool holds the CA, for verifying client certificates.
	Pool *x509.CertPool

	clock func() time.Time
}

// now reads the bundle's clock (time.Now for a Bundle built by hand).
func (b *Bundle) now() time.Time {
	if b.clock == nil {
		return time.Now()
	}
	return b.clock()
}

// Ensure loads or creates the CA and serving certificate in dir.
//
// The CA is never regenerated when ca.crt exists (a damaged or half-present
// CA is an error). The serving certificate is regenerated when it is missing,
// unparsable, not signed by the CA, expiring within RenewBefore, or lacking
// one of the requested hosts.
func Ensure(dir string, opts Options) (*Bundle, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: chmod %s: %w", dir, err)
	}
	b := &Bundle{clock: opts.Now}
	if err := b.ensureCA(dir); err != nil {
		return nil, err
	}
	b.Pool = x509.NewCertPool()
	b.Pool.AddCert(b.CACert)

	ips, dns := splitHosts(opts.Hosts)
	certPath, keyPath := filepath.Join(dir, ServingCertFile), filepath.Join(dir, ServingKeyFile)
	certPEM, keyPEM, ok := b.loadServing(certPath, keyPath, ips, dns)
	if !ok {
		var err error
		certPEM, keyPEM, err = b.issue(&x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses: ips,
			DNSNames:    dns,
		}, ServingValidity)
		if err != nil {
			return nil, fmt.Errorf("pki: issue serving certificate: %w", err)
		}
		if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := writeFile(certPath, certPEM, 0o644); err != nil {
			return nil, err
		}
	}
	serving, err := tls.X509KeyPair(append(append([]byte{}, certPEM...), b.CAPEM...), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: load serving certificate: %w", err)
	}
	b.Serving, b.ServingCertPEM, b.ServingKeyPEM = serving, certPEM, keyPEM
	return b, nil
}

// ensureCA loads ca.crt/ca.key, or creates them when both are absent.
func (b *Bundle) ensureCA(dir string) error {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		cert, err := parseCertPEM(certPEM)
		if err != nil {
			return fmt.Errorf("pki: load %s: %w", certPath, err)
		}
		key, err := parseKeyPEM(keyPEM)
		if err != nil {
			return fmt.Errorf("pki: load %s: %w", keyPath, err)
		}
		if !cert.IsCA {
			return fmt.Errorf("pki: %s is not a CA certificate", certPath)
		}
		if !publicKeysEqual(cert.PublicKey, key.Public()) {
			return fmt.Errorf("pki: %s does not match %s", keyPath, certPath)
		}
		b.CACert, b.CAKey, b.CAPEM = cert, key, certPEM
		return nil
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
	case certErr != nil && !errors.Is(certErr, os.ErrNotExist):
		return fmt.Errorf("pki: read CA: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, os.ErrNotExist):
		return fmt.Errorf("pki: read CA key: %w", keyErr)
	default:
		return fmt.Errorf("pki: only one of %s and %s exists; restore or remove it", certPath, keyPath)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := b.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CACommonName},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(CAValidity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(certPath, certPEM, 0o644); err != nil {
		return err
	}
	b.CACert, b.CAKey, b.CAPEM = cert, key, certPEM
	return nil
}

// loadServing returns the existing serving certificate and key when they are
// still good for the CA, the clock and the hosts.
func (b *Bundle) loadServing(certPath, keyPath string, ips []net.IP, dns []string) (certPEM, keyPEM []byte, ok bool) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, false
	}
	keyPEM, err = os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, false
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, nil, false
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, nil, false
	}
	if cert.CheckSignatureFrom(b.CACert) != nil {
		return nil, nil, false
	}
	now := b.now()
	if now.Before(cert.NotBefore) || now.Add(RenewBefore).After(cert.NotAfter) {
		return nil, nil, false
	}
	for _, ip := range ips {
		if !containsIP(cert.IPAddresses, ip) {
			return nil, nil, false
		}
	}
	for _, name := range dns {
		if !containsFold(cert.DNSNames, name) {
			return nil, nil, false
		}
	}
	return certPEM, keyPEM, true
}

// IssueClient signs a client certificate for user commonName in groups
// (Subject O). validity <= 0 means ClientValidity; the certificate never
// outlives the CA.
func (b *Bundle) IssueClient(commonName string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("pki: client certificate needs a common name")
	}
	if validity <= 0 {
		validity = ClientValidity
	}
	certPEM, keyPEM, err = b.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: append([]string(nil), groups...)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue client certificate for %q: %w", commonName, err)
	}
	return certPEM, keyPEM, nil
}

// issue creates a fresh P-256 key and a certificate from tmpl signed by the CA.
func (b *Bundle) issue(tmpl *x509.Certificate, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, err
	}
	now := b.now()
	tmpl.NotBefore = now.Add(-backdate).UTC()
	tmpl.NotAfter = now.Add(validity).UTC()
	if tmpl.NotAfter.After(b.CACert.NotAfter) {
		tmpl.NotAfter = b.CACert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CACert, key.Public(), b.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// LoadCA reads a PEM bundle of CA certificates (--client-ca-file).
func LoadCA(certFile string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("pki: %s holds no PEM certificate", certFile)
	}
	return pool, nil
}

// FirstServiceIP returns the first usable address of a service CIDR, the
// ClusterIP of the "kubernetes" service (10.96.0.0/12 gives 10.96.0.1).
func FirstServiceIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("pki: service range: %w", err)
	}
	ip := append(net.IP(nil), n.IP...)
	for i := len(ip) - 1; i >= 0; i-- {
		ip[i]++
		if ip[i] != 0 {
			break
		}
	}
	if !n.Contains(ip) {
		return nil, fmt.Errorf("pki: service range %s is too small", cidr)
	}
	return ip, nil
}

// splitHosts merges DefaultHosts with hosts, dropping blanks, unspecified
// addresses and duplicates, into IP and DNS SANs.
func splitHosts(hosts []string) (ips []net.IP, dns []string) {
	seen := map[string]bool{}
	for _, h := range append(append([]string{}, DefaultHosts...), hosts...) {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip.IsUnspecified() {
				continue
			}
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			if seen[ip.String()] {
				continue
			}
			seen[ip.String()] = true
			ips = append(ips, ip)
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if seen[h] {
			continue
		}
		seen[h] = true
		dns = append(dns, h)
	}
	return ips, dns
}

func containsIP(list []net.IP, ip net.IP) bool {
	for _, x := range list {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(raw []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// parseKeyPEM reads an EC, PKCS#1 RSA or PKCS#8 private key.
func parseKeyPEM(raw []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			return nil, errors.New("no PEM private key")
		}
		switch block.Type {
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported private key type %T", k)
			}
			return s, nil
		}
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// writeFile writes atomically (temporary file then rename) with mode perm.
func writeFile(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return os.Chmod(path, perm)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}
