// Package secureserving opens the HTTPS listeners of the components'
// health and metrics ports (kube-scheduler 10259, kube-controller-manager
// 10257) and of the kubelet API: the serving certificate comes from files
// when given, or, as upstream's components do when none is configured, is a
// self-signed one made at start.
package secureserving

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Options are the serving flags shared by the components.
type Options struct {
	BindAddress string
	Port        int
	// CertFile and KeyFile hold a PEM serving certificate and its key.
	// Both empty: a self-signed certificate is generated in memory.
	CertFile string
	KeyFile  string
}

// AddFlags binds --bind-address, --secure-port, --tls-cert-file and
// --tls-private-key-file; what names the serving component in the help.
func (o *Options) AddFlags(fs *pflag.FlagSet, what string) {
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address serving "+what+" over HTTPS.")
	fs.IntVar(&o.Port, "secure-port", o.Port, "HTTPS port serving "+what+" (0 picks a free port).")
	fs.StringVar(&o.CertFile, "tls-cert-file", o.CertFile, "PEM serving certificate (with intermediates). Empty: a self-signed certificate is generated at start.")
	fs.StringVar(&o.KeyFile, "tls-private-key-file", o.KeyFile, "PEM private key of --tls-cert-file.")
}

// Validate reports flag errors.
func (o *Options) Validate() error {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return errors.New("--tls-cert-file and --tls-private-key-file must be given together")
	}
	if net.ParseIP(o.BindAddress) == nil {
		return fmt.Errorf("--bind-address %q is not an IP address", o.BindAddress)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("--secure-port %d: must be between 0 and 65535", o.Port)
	}
	return nil
}

// Listen opens the TLS listener. host names the self-signed certificate's
// subject; ips and the bind address are its IP SANs. clientCAs, when set,
// makes client certificates of that pool mandatory.
func (o *Options) Listen(host string, ips []net.IP, clientCAs *x509.CertPool) (net.Listener, error) {
	var cert tls.Certificate
	var err error
	if o.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load serving certificate %s: %w", o.CertFile, err)
		}
	} else {
		if ip := net.ParseIP(o.BindAddress); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
		cert, err = SelfSigned(host, ips)
		if err != nil {
			return nil, err
		}
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s:%d: %w", o.BindAddress, o.Port, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if clientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = clientCAs
	}
	return tls.NewListener(lis, cfg), nil
}

// SelfSigned makes a serving certificate for host (a DNS name, with
// "localhost" added) and ips (loopback added), valid for a year, subject
// "<host>@<unix time>" as upstream's self-signed certificates are named.
func SelfSigned(host string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host + "@" + strconv.FormatInt(now.Unix(), 10)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{host, "localhost"},
		IPAddresses:  append(append([]net.IP{}, ips...), net.IPv4(127, 0, 0, 1), net.IPv6loopback),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate for %s: %w", host, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Profiling serves Go's pprof handlers under /debug/pprof/, as upstream's
// --profiling does. The caller decides who may reach it.
func Profiling(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	default:
		pprof.Index(w, r)
	}
}
