package defaulttolerationseconds

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
)

func tol(key string, effect corev1.TaintEffect, secs *int64) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect, TolerationSeconds: secs}
}

func TestAdmit(t *testing.T) {
	notReady := tol(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, new(int64(300)))
	unreachable := tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, new(int64(60)))
	podAttrs := admission.Attributes{Operation: admission.Create, Version: "v1", Resource: "pods", Namespace: "ns", Name: "p"}
	tests := []struct {
		name  string
		attrs admission.Attributes
		have  []corev1.Toleration
		want  []corev1.Toleration
	}{
		{name: "none: both added", attrs: podAttrs, want: []corev1.Toleration{notReady, unreachable}},
		{
			name: "own unreachable kept, not-ready added", attrs: podAttrs,
			have: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, new(int64(5)))},
			want: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, new(int64(5))), notReady},
		},
		{
			name: "own not-ready forever kept, unreachable added", attrs: podAttrs,
			have: []corev1.Toleration{tol(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, nil)},
			want: []corev1.Toleration{tol(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, nil), unreachable},
		},
		{
			name: "any effect tolerates NoExecute", attrs: podAttrs,
			have: []corev1.Toleration{tol(corev1.TaintNodeNotReady, "", nil), tol(corev1.TaintNodeUnreachable, "", nil)},
			want: []corev1.Toleration{tol(corev1.TaintNodeNotReady, "", nil), tol(corev1.TaintNodeUnreachable, "", nil)},
		},
		{
			name: "empty key tolerates everything", attrs: podAttrs,
			have: []corev1.Toleration{tol("", "", nil)},
			want: []corev1.Toleration{tol("", "", nil)},
		},
		{
			name: "NoSchedule does not count", attrs: podAttrs,
			have: []corev1.Toleration{tol(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, nil)},
			want: []corev1.Toleration{tol(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule, nil), notReady, unreachable},
		},
		{
			name: "update too", attrs: admission.Attributes{Operation: admission.Update, Version: "v1", Resource: "pods"},
			want: []corev1.Toleration{notReady, unreachable},
		},
		{name: "status subresource untouched", attrs: admission.Attributes{Operation: admission.Update, Version: "v1", Resource: "pods", Subresource: "status"}},
		{name: "delete untouched", attrs: admission.Attributes{Operation: admission.Delete, Version: "v1", Resource: "pods"}},
		{name: "other group untouched", attrs: admission.Attributes{Operation: admission.Create, Group: "example.com", Version: "v1", Resource: "pods"}},
	}
	p := New(300, 60)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tc.have}}
			if err := p.Admit(context.Background(), tc.attrs, pod); err != nil {
				t.Fatalf("Admit: %v", err)
			}
			if diff := cmp.Diff(tc.want, pod.Spec.Tolerations); diff != "" {
				t.Errorf("tolerations (-want +got):\n%s", diff)
			}
		})
	}
}

// Each pod gets its own tolerationSeconds: changing one pod's must not
// change the next one's.
func TestTolerationSecondsNotShared(t *testing.T) {
	p := New(300, 300)
	attrs := admission.Attributes{Operation: admission.Create, Version: "v1", Resource: "pods"}
	a, b := &corev1.Pod{}, &corev1.Pod{}
	if err := p.Admit(context.Background(), attrs, a); err != nil {
		t.Fatal(err)
	}
	*a.Spec.Tolerations[0].TolerationSeconds = 1
	if err := p.Admit(context.Background(), attrs, b); err != nil {
		t.Fatal(err)
	}
	if got := *b.Spec.Tolerations[0].TolerationSeconds; got != 300 {
		t.Errorf("second pod's tolerationSeconds = %d, want 300", got)
	}
}
