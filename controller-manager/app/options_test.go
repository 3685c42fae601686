package app

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnabledControllers(t *testing.T) {
	for _, tc := range []struct {
		spec    []string
		want    []string
		wantErr string
	}{
		{spec: []string{"*"}, want: KnownControllers()},
		{spec: []string{"*", "-deployment", "-garbagecollector"}, want: []string{"endpoint", "endpointslice", "namespace", "nodeipam", "nodelifecycle", "podgc", "replicaset", "replicationcontroller", "serviceaccount"}},
		{spec: []string{"replicaset", "namespace"}, want: []string{"namespace", "replicaset"}},
		{spec: []string{"job"}, want: nil},
		{spec: []string{"*", "bogus"}, wantErr: `unknown controller "bogus"`},
	} {
		got, err := EnabledControllers(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.spec, diff)
		}
	}
}

func TestValidate(t *testing.T) {
	o := NewOptions()
	o.Kubeconfig = "/k"
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	o.ClusterCIDR = "10.244.0.0/16"
	o.NodeCIDRMaskSize = 8
	o.ConcurrentDeploymentSyncs = 0
	o.LogLevel = "loud"
	o.Kubeconfig = ""
	err := o.Validate()
	for _, want := range []string{"--kubeconfig", "--node-cidr-mask-size", "--concurrent-deployment-syncs", "--log-level"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to mention %s", err, want)
		}
	}
}

func TestNodeIPAMNeedsClusterCIDR(t *testing.T) {
	o := NewOptions()
	o.Kubeconfig = "/k"
	got, err := o.enabledControllers()
	if err != nil || slices.Contains(got, "nodeipam") {
		t.Errorf("'*' without --cluster-cidr enables %v (err %v); want no nodeipam", got, err)
	}
	o.ClusterCIDR = "10.244.0.0/16"
	if got, _ := o.enabledControllers(); !slices.Contains(got, "nodeipam") || !slices.Contains(got, "garbagecollector") || !slices.Contains(got, "nodelifecycle") {
		t.Errorf("'*' with --cluster-cidr enables %v; want nodeipam, garbagecollector and nodelifecycle among them", got)
	}
	o.ClusterCIDR = ""
	o.Controllers = []string{"nodeipam"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "needs --cluster-cidr") {
		t.Errorf("nodeipam without --cluster-cidr: Validate() = %v, want it refused", err)
	}
	o.ClusterCIDR = "10.0.0.0/8"
	o.NodeCIDRMaskSize = 25
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--node-cidr-mask-size") {
		t.Errorf("a /8 split in /25s: Validate() = %v, want it refused", err)
	}
}

// The help text matches how the health port is served: HTTPS since
// pkg/secureserving, never plain HTTP.
func TestHelpSaysHTTPS(t *testing.T) {
	cmd := NewCommand()
	if strings.Contains(cmd.Long, "plain HTTP") || !strings.Contains(cmd.Long, "HTTPS") {
		t.Errorf("help text says %q; want the health and metrics port described as HTTPS", cmd.Long)
	}
	for _, name := range []string{"bind-address", "secure-port"} {
		if f := cmd.Flags().Lookup(name); f == nil || !strings.Contains(f.Usage, "HTTPS") {
			t.Errorf("--%s usage %v; want it to say HTTPS", name, f)
		}
	}
	if f := cmd.Flags().Lookup("terminated-pod-gc-threshold"); f == nil || f.DefValue != "12500" {
		t.Errorf("--terminated-pod-gc-threshold: %v, want default 12500", f)
	}
}
