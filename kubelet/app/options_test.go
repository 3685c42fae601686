package app

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseTaints(t *testing.T) {
	got, err := ParseTaints([]string{"dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}, {Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"nokey", "k=v:Sometimes", "=v:NoSchedule"} {
		if _, err := ParseTaints([]string{bad}); err == nil {
			t.Errorf("ParseTaints(%q): no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	o := NewOptions()
	if err := o.Validate(); err == nil {
		t.Error("no --kubeconfig: no error")
	}
	o.Kubeconfig = "k"
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	o.NodeIP = "nope"
	if err := o.Validate(); err == nil {
		t.Error("bad --node-ip: no error")
	}
	o.NodeIP = ""
	o.CgroupRoot = "relative/path"
	if err := o.Validate(); err == nil {
		t.Error("relative --cgroup-root: no error")
	}
}
