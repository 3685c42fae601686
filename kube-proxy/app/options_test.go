package app

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string // "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"cluster cidr", func(o *Options) { o.ClusterCIDR = "10.244.0.0" }, "--cluster-cidr"},
		{"nodeport addresses", func(o *Options) { o.NodePortAddresses = []string{"nope"} }, "--nodeport-addresses"},
		{"nodeport addresses primary with CIDRs", func(o *Options) { o.NodePortAddresses = []string{"primary", "10.0.0.0/8"} }, "cannot be combined"},
		{"dns bind", func(o *Options) { o.DNSBind = "localhost" }, "--dns-bind"},
		{"dns upstream", func(o *Options) { o.DNSUpstream = "8.8.8.8" }, "--dns-upstream"},
		{"port", func(o *Options) { o.HealthzPort = 70000 }, "--healthz-port"},
		{"domain", func(o *Options) { o.ClusterDomain = " " }, "--cluster-domain"},
		{"local mode", func(o *Options) { o.DetectLocalMode = "InterfaceNamePrefix" }, "--detect-local-mode"},
		{"local mode needs cidr", func(o *Options) { o.DetectLocalMode = "ClusterCIDR" }, "--cluster-cidr"},
		{"node cidr", func(o *Options) { o.DetectLocalMode = "NodeCIDR"; o.ClusterCIDR = "10.244.0.0/16" }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			tc.edit(o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestLocalMode(t *testing.T) {
	for _, tc := range []struct{ mode, cidr, want string }{
		{"", "", localModeNodeCIDR},
		{"", "10.244.0.0/16", localModeClusterCIDR},
		{localModeNodeCIDR, "10.244.0.0/16", localModeNodeCIDR},
		{localModeClusterCIDR, "10.244.0.0/16", localModeClusterCIDR},
	} {
		o := NewOptions()
		o.DetectLocalMode, o.ClusterCIDR = tc.mode, tc.cidr
		if got := o.localMode(); got != tc.want {
			t.Errorf("--detect-local-mode %q --cluster-cidr %q: got %s, want %s", tc.mode, tc.cidr, got, tc.want)
		}
	}
}

func TestNodePortsEverywhere(t *testing.T) {
	for _, tc := range []struct {
		cidrs []string
		want  bool
	}{{nil, true}, {[]string{"10.0.0.0/8"}, false}, {[]string{"10.0.0.0/8", "0.0.0.0/0"}, true}, {[]string{"primary"}, false}} {
		o := NewOptions()
		o.NodePortAddresses = tc.cidrs
		if got := o.nodePortsEverywhere(); got != tc.want {
			t.Errorf("--nodeport-addresses %v: got %v, want %v", tc.cidrs, got, tc.want)
		}
		if got, want := o.nodePortsOnNodeIPs(), len(tc.cidrs) == 1 && tc.cidrs[0] == "primary"; got != want {
			t.Errorf("--nodeport-addresses %v: on the Node's IPs %v, want %v", tc.cidrs, got, want)
		}
		if ips, err := o.nodePortIPs(); tc.want && (ips != nil || err != nil) {
			t.Errorf("--nodeport-addresses %v: got %v, %v, want every local address (nil)", tc.cidrs, ips, err)
		}
	}
}

func TestFlagDefaults(t *testing.T) {
	cmd := NewCommand()
	for flag, want := range map[string]string{
		"dns-bind": "169.254.20.10", "cluster-domain": "cluster.local", "healthz-port": "10256",
		"metrics-port": "10249", "min-sync-period": "1s", "cleanup": "false", "masquerade-all": "false",
		"sync-period": "30s", "iptables-sync-period": "30s", "iptables-min-sync-period": "1s", "dns-interface": "coxswain-dns",
	} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Errorf("no --%s flag", flag)
			continue
		}
		if f.DefValue != want {
			t.Errorf("--%s default: got %s, want %s", flag, f.DefValue, want)
		}
	}
}
