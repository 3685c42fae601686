package app

import (
	"strings"
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

func TestLogRotationFlags(t *testing.T) {
	o := NewOptions()
	o.Kubeconfig = "k"
	if r, err := o.logRotation(); err != nil || r.MaxSize != 10<<20 || r.MaxFiles != 5 {
		t.Errorf("defaults: %+v, %v; want 10Mi and 5 files as upstream", r, err)
	}
	for _, bad := range []func(*Options){
		func(o *Options) { o.ContainerLogMaxSize = "ten megs" },
		func(o *Options) { o.ContainerLogMaxSize = "-1Mi" },
		func(o *Options) { o.ContainerLogMaxFiles = 1 },
	} {
		o := NewOptions()
		o.Kubeconfig = "k"
		bad(o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--container-log-max-") {
			t.Errorf("%q/%d: error %v, want one naming the flag", o.ContainerLogMaxSize, o.ContainerLogMaxFiles, err)
		}
	}
}
