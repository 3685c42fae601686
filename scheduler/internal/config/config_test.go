package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"minimal", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n", ""},
		{"unknown field", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nbogus: 1\n", "unknown field"},
		{"wrong kind", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: Pod\n", "kind"},
		{"two profiles", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles: [{schedulerName: a}, {schedulerName: b}]\n", "exactly one"},
		{"bad percentage", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 101\n", "percentageOfNodesToScore"},
		{"bad backoff", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npodInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2\n", "podMaxBackoffSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Profiles[0].SchedulerName != "default-scheduler" || c.PodInitialBackoffSeconds != 1 || c.PodMaxBackoffSeconds != 10 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse() error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestMergePluginSet(t *testing.T) {
	defaults := []Plugin{{Name: "A", Weight: 1}, {Name: "B", Weight: 2}, {Name: "C", Weight: 3}}
	tests := []struct {
		name   string
		custom PluginSet
		want   []Plugin
	}{
		{"none", PluginSet{}, defaults},
		{"disable one", PluginSet{Disabled: []Plugin{{Name: "B"}}}, []Plugin{{Name: "A", Weight: 1}, {Name: "C", Weight: 3}}},
		{"reweight in place", PluginSet{Enabled: []Plugin{{Name: "B", Weight: 9}}}, []Plugin{{Name: "A", Weight: 1}, {Name: "B", Weight: 9}, {Name: "C", Weight: 3}}},
		{"append", PluginSet{Enabled: []Plugin{{Name: "D", Weight: 4}}}, []Plugin{{Name: "A", Weight: 1}, {Name: "B", Weight: 2}, {Name: "C", Weight: 3}, {Name: "D", Weight: 4}}},
		{"disable all", PluginSet{Disabled: []Plugin{{Name: "*"}}, Enabled: []Plugin{{Name: "C", Weight: 5}}}, []Plugin{{Name: "C", Weight: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, MergePluginSet(defaults, tt.custom)); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
		})
	}
}
