package serviceaccount

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/apiserver/internal/admission"
)

func TestAdmit(t *testing.T) {
	create := admission.Attributes{Operation: admission.Create, Version: "v1", Resource: "pods", Namespace: "ns"}
	tests := []struct {
		name       string
		attrs      admission.Attributes
		pod        corev1.Pod
		wantName   string
		wantLegacy string
	}{
		{name: "none: default", attrs: create, wantName: "default", wantLegacy: "default"},
		{name: "own kept", attrs: create, pod: corev1.Pod{Spec: corev1.PodSpec{ServiceAccountName: "robot"}}, wantName: "robot", wantLegacy: "robot"},
		{name: "deprecated alias honoured", attrs: create, pod: corev1.Pod{Spec: corev1.PodSpec{DeprecatedServiceAccount: "legacy"}}, wantName: "legacy", wantLegacy: "legacy"},
		{
			name: "mirror pod untouched", attrs: create,
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "x"}}},
		},
		{name: "update untouched", attrs: admission.Attributes{Operation: admission.Update, Version: "v1", Resource: "pods"}},
		{name: "subresource untouched", attrs: admission.Attributes{Operation: admission.Create, Version: "v1", Resource: "pods", Subresource: "binding"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod.DeepCopy()
			if err := (Plugin{}).Admit(context.Background(), tc.attrs, pod); err != nil {
				t.Fatalf("Admit: %v", err)
			}
			if pod.Spec.ServiceAccountName != tc.wantName || pod.Spec.DeprecatedServiceAccount != tc.wantLegacy {
				t.Errorf("serviceAccountName %q, serviceAccount %q; want %q, %q",
					pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount, tc.wantName, tc.wantLegacy)
			}
		})
	}
}
