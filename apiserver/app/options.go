// Package app holds kube-apiserver's options and wiring, so that the binary,
// tests and a future all-in-one binary start it the same way.
package app

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/coxswain/coxswain/apiserver/internal/admission/defaulttolerationseconds"
	"github.com/coxswain/coxswain/apiserver/internal/registry/core"
	"github.com/coxswain/coxswain/apiserver/internal/serviceaccount"
)

// Options are kube-apiserver's settings.
type Options struct {
	DataDir                string
	EtcdServers            []string
	EmbeddedEtcdPort       int
	BindAddress            string
	SecurePort             int
	TLSCertFile            string
	TLSPrivateKeyFile      string
	ClientCAFile           string
	ServiceClusterIPRange  string
	ServiceNodePortRange   string
	LogLevel               string
	EtcdCompactionInterval time.Duration
	WatchCacheSize         int
	ShutdownGracePeriod    time.Duration
	// KubeletClientCertificate and KubeletClientKey authenticate the
	// apiserver to kubelets (generated with the PKI when not given).
	KubeletClientCertificate string
	KubeletClientKey         string
	// AdvertiseAddress is written into the kubeconfigs (default: the bind
	// address, or 127.0.0.1 when binding all addresses).
	AdvertiseAddress string
	// EnableAdmissionPlugins and DisableAdmissionPlugins adjust the
	// admission plugins on by default (all implemented ones).
	EnableAdmissionPlugins  []string
	DisableAdmissionPlugins []string
	// DefaultNotReadyTolerationSeconds and
	// DefaultUnreachableTolerationSeconds are the tolerationSeconds of
	// the tolerations DefaultTolerationSeconds adds to pods.
	DefaultNotReadyTolerationSeconds    int64
	DefaultUnreachableTolerationSeconds int64
	// ServiceAccountKeyFiles verify service-account tokens (PEM public or
	// private keys, certificates), besides the signing key's public key.
	ServiceAccountKeyFiles []string
	// ServiceAccountSigningKeyFile signs service-account tokens; empty:
	// <data-dir>/pki/sa.key, generated on first start.
	ServiceAccountSigningKeyFile string
	// ServiceAccountIssuers: the first is the iss of issued tokens; tokens
	// of any of them are accepted.
	ServiceAccountIssuers []string
	// APIAudiences are the audiences tokens must be for to authenticate
	// (default: the issuers), and those of a TokenRequest naming none.
	APIAudiences []string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		DataDir:                "/var/lib/coxswain/apiserver",
		EmbeddedEtcdPort:       2379,
		BindAddress:            "0.0.0.0",
		SecurePort:             6443,
		ServiceClusterIPRange:  "10.96.0.0/12",
		ServiceNodePortRange:   "30000-32767",
		LogLevel:               "info",
		EtcdCompactionInterval: 5 * time.Minute,
		WatchCacheSize:         10000,
		ShutdownGracePeriod:    10 * time.Second,

		DefaultNotReadyTolerationSeconds:    defaulttolerationseconds.DefaultSeconds,
		DefaultUnreachableTolerationSeconds: defaulttolerationseconds.DefaultSeconds,

		ServiceAccountIssuers: []string{serviceaccount.DefaultIssuer},
	}
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory for the embedded etcd's data, the generated PKI (pki/) and the kubeconfigs.")
	fs.StringSliceVar(&o.EtcdServers, "etcd-servers", o.EtcdServers, "Comma-separated etcd client URLs. Empty starts an embedded etcd in <data-dir>/etcd.")
	fs.IntVar(&o.EmbeddedEtcdPort, "embedded-etcd-port", o.EmbeddedEtcdPort, "Loopback client port of the embedded etcd (0 picks a free port).")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address to serve the API on.")
	fs.IntVar(&o.SecurePort, "secure-port", o.SecurePort, "Port serving gRPC and HTTPS with TLS (0 picks a free port).")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "Serving certificate. Empty generates one under <data-dir>/pki.")
	fs.StringVar(&o.TLSPrivateKeyFile, "tls-private-key-file", o.TLSPrivateKeyFile, "Key of --tls-cert-file.")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile, "CA bundle that signs client certificates. Empty uses the generated CA.")
	fs.StringVar(&o.ServiceClusterIPRange, "service-cluster-ip-range", o.ServiceClusterIPRange, "CIDR from which Service ClusterIPs are allocated.")
	fs.StringVar(&o.ServiceNodePortRange, "service-node-port-range", o.ServiceNodePortRange, "Port range reserved for NodePort Services, inclusive.")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "Log level: debug, info, warn or error.")
	fs.DurationVar(&o.EtcdCompactionInterval, "etcd-compaction-interval", o.EtcdCompactionInterval, "How often etcd history is compacted (0 disables).")
	fs.IntVar(&o.WatchCacheSize, "watch-cache-size", o.WatchCacheSize, "Recent events kept per resource for watches from an older resourceVersion.")
	fs.DurationVar(&o.ShutdownGracePeriod, "shutdown-grace-period", o.ShutdownGracePeriod, "How long in-flight requests may take to finish at shutdown.")
	fs.StringVar(&o.KubeletClientCertificate, "kubelet-client-certificate", o.KubeletClientCertificate, "Client certificate for the kubelet API (pods/log). Empty: one issued from the generated CA.")
	fs.StringVar(&o.KubeletClientKey, "kubelet-client-key", o.KubeletClientKey, "Key of --kubelet-client-certificate.")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "Address written into the generated kubeconfigs (default: bind address, or 127.0.0.1).")
	fs.StringSliceVar(&o.EnableAdmissionPlugins, "enable-admission-plugins", o.EnableAdmissionPlugins, fmt.Sprintf("Admission plugins to enable besides the default ones. Implemented, all on by default, in this order: %s.", strings.Join(AdmissionPlugins(), ", ")))
	fs.StringSliceVar(&o.DisableAdmissionPlugins, "disable-admission-plugins", o.DisableAdmissionPlugins, "Admission plugins to turn off, even if on by default.")
	fs.Int64Var(&o.DefaultNotReadyTolerationSeconds, "default-not-ready-toleration-seconds", o.DefaultNotReadyTolerationSeconds, "The tolerationSeconds of the toleration for notReady:NoExecute that is added by default to every pod that does not already have such a toleration.")
	fs.StringSliceVar(&o.ServiceAccountKeyFiles, "service-account-key-file", o.ServiceAccountKeyFiles, "PEM files of keys (public or private, RSA or ECDSA) that verify service-account tokens, besides the signing key. May be repeated.")
	fs.StringVar(&o.ServiceAccountSigningKeyFile, "service-account-signing-key-file", o.ServiceAccountSigningKeyFile, "Private key (RSA or ECDSA, PEM) that signs service-account tokens. Empty: <data-dir>/pki/sa.key, generated on first start.")
	fs.StringSliceVar(&o.ServiceAccountIssuers, "service-account-issuer", o.ServiceAccountIssuers, "Issuer (iss) of service-account tokens. May be repeated: the first issues, all are accepted.")
	fs.StringSliceVar(&o.APIAudiences, "api-audiences", o.APIAudiences, "Audiences a service-account token must be for to authenticate to the API. Empty: the --service-account-issuer values.")
	fs.Int64Var(&o.DefaultUnreachableTolerationSeconds, "default-unreachable-toleration-seconds", o.DefaultUnreachableTolerationSeconds, "The tolerationSeconds of the toleration for unreachable:NoExecute that is added by default to every pod that does not already have such a toleration.")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	if net.ParseIP(o.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address %q is not an IP address", o.BindAddress))
	}
	if o.SecurePort < 0 || o.SecurePort > 65535 {
		errs = append(errs, fmt.Errorf("--secure-port %d is out of range", o.SecurePort))
	}
	if (o.TLSCertFile == "") != (o.TLSPrivateKeyFile == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-private-key-file go together"))
	}
	if _, _, err := net.ParseCIDR(o.ServiceClusterIPRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-cluster-ip-range: %w", err))
	}
	if _, err := core.ParsePortRange(o.ServiceNodePortRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-node-port-range: %w", err))
	}
	switch strings.ToLower(o.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel))
	}
	if o.EtcdCompactionInterval < 0 {
		errs = append(errs, errors.New("--etcd-compaction-interval must not be negative"))
	}
	if o.WatchCacheSize < 10 {
		errs = append(errs, errors.New("--watch-cache-size must be at least 10"))
	}
	if o.AdvertiseAddress != "" && net.ParseIP(o.AdvertiseAddress) == nil {
		errs = append(errs, fmt.Errorf("--advertise-address %q is not an IP address", o.AdvertiseAddress))
	}
	if len(o.ServiceAccountIssuers) == 0 || o.ServiceAccountIssuers[0] == "" {
		errs = append(errs, errors.New("--service-account-issuer must not be empty"))
	}
	if _, err := o.admissionPlugins(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
