package app

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAdmissionPlugins(t *testing.T) {
	tests := []struct {
		name            string
		enable, disable []string
		want            []string
		wantErr         bool
	}{
		{name: "defaults: all, in order", want: []string{"ServiceAccount", "DefaultTolerationSeconds"}},
		{name: "enable a default one", enable: []string{"DefaultTolerationSeconds"}, want: []string{"ServiceAccount", "DefaultTolerationSeconds"}},
		{name: "disable one", disable: []string{"ServiceAccount"}, want: []string{"DefaultTolerationSeconds"}},
		{name: "disable all", disable: []string{"ServiceAccount", "DefaultTolerationSeconds"}, want: []string{}},
		{name: "unknown", enable: []string{"NodeRestriction"}, wantErr: true},
		{name: "both", enable: []string{"ServiceAccount"}, disable: []string{"ServiceAccount"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			o.EnableAdmissionPlugins, o.DisableAdmissionPlugins = tc.enable, tc.disable
			got, err := o.admissionPlugins()
			if (err != nil) != tc.wantErr {
				t.Fatalf("admissionPlugins error = %v, want error %v", err, tc.wantErr)
			}
			if (o.Validate() != nil) != tc.wantErr {
				t.Errorf("Validate = %v, want error %v", o.Validate(), tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plugins (-want +got):\n%s", diff)
			}
			chain, err := o.admissionChain()
			if err != nil || len(chain) != len(tc.want) {
				t.Errorf("admissionChain = %d plugins, %v; want %d", len(chain), err, len(tc.want))
			}
		})
	}
	o := NewOptions()
	if o.DefaultNotReadyTolerationSeconds != 300 || o.DefaultUnreachableTolerationSeconds != 300 {
		t.Errorf("default toleration seconds %d/%d, want 300/300", o.DefaultNotReadyTolerationSeconds, o.DefaultUnreachableTolerationSeconds)
	}
}
