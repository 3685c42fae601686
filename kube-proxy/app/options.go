// Package app holds kube-proxy's options and wiring, so that the binary,
// tests and a future all-in-one binary start it the same way.
package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/kube-proxy/internal/proxy/iptables"
	"github.com/coxswain/coxswain/pkg/logging"
)

// Options are kube-proxy's settings.
type Options struct {
	Kubeconfig         string
	HostnameOverride   string
	ClusterCIDR        string
	DetectLocalMode    string
	MinSyncPeriod      time.Duration
	SyncPeriod         time.Duration
	MasqueradeAll      bool
	NodePortAddresses  []string
	DNSBind            string
	DNSPort            int
	DNSInterface       string
	ClusterDomain      string
	DNSUpstream        string
	HealthzBindAddress string
	HealthzPort        int
	MetricsBindAddress string
	MetricsPort        int
	Cleanup            bool
	IptablesLegacy     bool
	LogLevel           string

	// NetNS, when set (in-process tests, the benchmark), is the file of the
	// network namespace (/run/netns/NAME) that is the node: the iptables
	// rules, the DNS interface, the DNS sockets and conntrack are there.
	NetNS string
}

// NewOptions returns the defaults (upstream's where they exist).
func NewOptions() *Options {
	return &Options{
		MinSyncPeriod:      time.Second,
		SyncPeriod:         30 * time.Second,
		DNSBind:            "169.254.20.10",
		DNSPort:            53,
		DNSInterface:       "coxswain-dns",
		ClusterDomain:      "cluster.local",
		HealthzBindAddress: "0.0.0.0",
		HealthzPort:        10256,
		MetricsBindAddress: "127.0.0.1",
		MetricsPort:        10249,
		LogLevel:           "info",
	}
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file of the apiserver (the apiserver writes <data-dir>/kube-proxy.kubeconfig).")
	fs.StringVar(&o.HostnameOverride, "hostname-override", o.HostnameOverride, "Name of this node (default: the hostname); endpoints on it are local for the Local traffic policies.")
	fs.StringVar(&o.ClusterCIDR, "cluster-cidr", o.ClusterCIDR, "Pod range; traffic to a ClusterIP from outside it is masqueraded.")
	fs.StringVar(&o.DetectLocalMode, "detect-local-mode", o.DetectLocalMode, "What makes traffic local (from pods): ClusterCIDR (--cluster-cidr) or NodeCIDR (the pod CIDR of this node's Node object, followed as it changes). Default: ClusterCIDR when --cluster-cidr is set, else NodeCIDR.")
	fs.DurationVar(&o.MinSyncPeriod, "min-sync-period", o.MinSyncPeriod, "Least time between two rule syncs; changes arriving sooner are batched (and synced partially: only the changed Services' chains).")
	fs.DurationVar(&o.MinSyncPeriod, "iptables-min-sync-period", o.MinSyncPeriod, "Upstream's name of --min-sync-period.")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod, "Period of full rule resyncs (every chain rewritten) even without changes.")
	fs.DurationVar(&o.SyncPeriod, "iptables-sync-period", o.SyncPeriod, "Upstream's name of --sync-period.")
	fs.BoolVar(&o.MasqueradeAll, "masquerade-all", o.MasqueradeAll, "SNAT all traffic sent to a ClusterIP.")
	fs.StringSliceVar(&o.NodePortAddresses, "nodeport-addresses", o.NodePortAddresses, "CIDRs of the node addresses NodePorts answer on, or \"primary\": the InternalIP and ExternalIP addresses of this node's Node object, followed as they change (every local address while it has none). Default, as upstream: every local address.")
	fs.StringVar(&o.DNSBind, "dns-bind", o.DNSBind, "Address of the node-local DNS server, put on the --dns-interface dummy interface; empty disables DNS.")
	fs.IntVar(&o.DNSPort, "dns-port", o.DNSPort, "Port of the node-local DNS server (UDP and TCP).")
	fs.StringVar(&o.DNSInterface, "dns-interface", o.DNSInterface, "Dummy interface made to hold --dns-bind (not made for a loopback address).")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", o.ClusterDomain, "Cluster DNS domain.")
	fs.StringVar(&o.DNSUpstream, "dns-upstream", o.DNSUpstream, "host:port answering names outside the cluster domain; without it they are REFUSED.")
	fs.StringVar(&o.HealthzBindAddress, "healthz-bind-address", o.HealthzBindAddress, "Address serving /healthz.")
	fs.IntVar(&o.HealthzPort, "healthz-port", o.HealthzPort, "Port serving /healthz (0 picks a free port).")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address serving /metrics.")
	fs.IntVar(&o.MetricsPort, "metrics-port", o.MetricsPort, "Port serving /metrics (0 picks a free port).")
	fs.BoolVar(&o.Cleanup, "cleanup", o.Cleanup, "Remove every rule and chain kube-proxy made and the --dns-interface, then exit.")
	fs.BoolVar(&o.IptablesLegacy, "iptables-legacy", o.IptablesLegacy, "Use the iptables-legacy binaries instead of iptables (nf_tables on Debian).")
	logging.AddFlags(fs, &o.LogLevel)
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.ClusterCIDR != "" {
		if _, _, err := net.ParseCIDR(o.ClusterCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
		}
	}
	for _, c := range o.NodePortAddresses {
		if c == nodePortsPrimary {
			if len(o.NodePortAddresses) > 1 {
				errs = append(errs, fmt.Errorf("--nodeport-addresses: %q cannot be combined with CIDRs", nodePortsPrimary))
			}
			continue
		}
		if _, _, err := net.ParseCIDR(c); err != nil {
			errs = append(errs, fmt.Errorf("--nodeport-addresses: %w", err))
		}
	}
	switch o.DetectLocalMode {
	case "", localModeClusterCIDR, localModeNodeCIDR:
	default:
		errs = append(errs, fmt.Errorf("--detect-local-mode %q: want %s or %s", o.DetectLocalMode, localModeClusterCIDR, localModeNodeCIDR))
	}
	if o.DetectLocalMode == localModeClusterCIDR && o.ClusterCIDR == "" {
		errs = append(errs, errors.New("--detect-local-mode ClusterCIDR needs --cluster-cidr"))
	}
	if o.MinSyncPeriod < 0 {
		errs = append(errs, errors.New("--min-sync-period must not be negative"))
	}
	if o.SyncPeriod <= 0 {
		errs = append(errs, errors.New("--sync-period must be positive"))
	}
	if o.DNSBind != "" && net.ParseIP(o.DNSBind) == nil {
		errs = append(errs, fmt.Errorf("--dns-bind %q is not an IP address", o.DNSBind))
	}
	if o.DNSUpstream != "" {
		if _, _, err := net.SplitHostPort(o.DNSUpstream); err != nil {
			errs = append(errs, fmt.Errorf("--dns-upstream: %w", err))
		}
	}
	for name, p := range map[string]int{"--healthz-port": o.HealthzPort, "--metrics-port": o.MetricsPort, "--dns-port": o.DNSPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s %d is out of range", name, p))
		}
	}
	if strings.TrimSpace(o.ClusterDomain) == "" {
		errs = append(errs, errors.New("--cluster-domain must not be empty"))
	}
	if _, err := logging.ParseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	return errors.Join(errs...)
}

// The --detect-local-mode values (upstream's names).
const (
	localModeClusterCIDR = "ClusterCIDR"
	localModeNodeCIDR    = "NodeCIDR"
)

// localMode is --detect-local-mode with its default filled in.
func (o *Options) localMode() string {
	switch {
	case o.DetectLocalMode != "":
		return o.DetectLocalMode
	case o.ClusterCIDR != "":
		return localModeClusterCIDR
	}
	return localModeNodeCIDR
}

// nodeName is --hostname-override or the hostname, lower-cased as upstream does.
func (o *Options) nodeName() string {
	if o.HostnameOverride != "" {
		return strings.ToLower(strings.TrimSpace(o.HostnameOverride))
	}
	h, _ := os.Hostname()
	return strings.ToLower(h)
}

func (o *Options) runner() *iptables.Runner {
	return &iptables.Runner{NetNS: o.NetNS, Legacy: o.IptablesLegacy}
}

// nodePortsPrimary is the --nodeport-addresses value that means the Node's
// own addresses, as upstream's.
const nodePortsPrimary = "primary"

// nodePortsOnNodeIPs says whether --nodeport-addresses is "primary".
func (o *Options) nodePortsOnNodeIPs() bool {
	return len(o.NodePortAddresses) == 1 && o.NodePortAddresses[0] == nodePortsPrimary
}

// nodePortsEverywhere says whether NodePorts answer on every local address
// (-m addrtype --dst-type LOCAL): --nodeport-addresses unset or holding
// 0.0.0.0/0, as upstream.
func (o *Options) nodePortsEverywhere() bool {
	if len(o.NodePortAddresses) == 0 {
		return true
	}
	for _, c := range o.NodePortAddresses {
		if _, ipn, err := net.ParseCIDR(c); err == nil && ipn.IP.To4() != nil {
			if ones, _ := ipn.Mask.Size(); ones == 0 {
				return true
			}
		}
	}
	return false
}

// nodePortIPs returns the local addresses inside --nodeport-addresses (nil:
// none given, or every local address).
func (o *Options) nodePortIPs() ([]string, error) {
	if o.nodePortsEverywhere() || o.nodePortsOnNodeIPs() {
		return nil, nil
	}
	var addrs []net.Addr
	err := nsexec.Do(o.NetNS, func() error {
		var err error
		addrs, err = net.InterfaceAddrs()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list local addresses: %w", err)
	}
	var out []string
	for _, c := range o.NodePortAddresses {
		_, cidr, _ := net.ParseCIDR(c)
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && cidr.Contains(ipn.IP) {
				out = append(out, ipn.IP.String())
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no local address is in --nodeport-addresses %v", o.NodePortAddresses)
	}
	return out, nil
}
