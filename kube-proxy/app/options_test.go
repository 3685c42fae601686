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
		{"dns bind", func(o *Options) { o.DNSBind = "localhost" }, "--dns-bind"},
		{"dns upstream", func(o *Options) { o.DNSUpstream = "8.8.8.8" }, "--dns-upstream"},
		{"port", func(o *Options) { o.HealthzPort = 70000 }, "--healthz-port"},
		{"domain", func(o *Options) { o.ClusterDomain = " " }, "--cluster-domain"},
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
