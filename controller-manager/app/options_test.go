package app

import (
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
		{spec: []string{"*", "-deployment", "-garbagecollector"}, want: []string{"endpoint", "endpointslice", "namespace", "replicaset", "replicationcontroller", "serviceaccount"}},
		{spec: []string{"replicaset", "namespace"}, want: []string{"namespace", "replicaset"}},
		{spec: []string{"nodelifecycle"}, want: nil},
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
