package validation

import (
	"testing"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
)

const (
	benchLabelKey   = "app.kubernetes.io/name"
	benchLabelValue = "frontend-v1.2_canary"
)

var sink int

// BenchmarkLabel compares a typical label key and value check.
func BenchmarkLabel(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += len(IsQualifiedName(benchLabelKey)) + len(IsValidLabelValue(benchLabelValue))
		}
	})
	b.Run("apimachinery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += len(utilvalidation.IsQualifiedName(benchLabelKey)) + len(utilvalidation.IsValidLabelValue(benchLabelValue))
		}
	})
}

// BenchmarkName compares a generated pod name and its generateName.
func BenchmarkName(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += len(NameIsDNSSubdomain("web-7d9f8c6b5-", true)) + len(NameIsDNSSubdomain("web-7d9f8c6b5-x2x9q", false))
		}
	})
	b.Run("apimachinery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += len(apivalidation.NameIsDNSSubdomain("web-7d9f8c6b5-", true)) + len(apivalidation.NameIsDNSSubdomain("web-7d9f8c6b5-x2x9q", false))
		}
	})
}

// BenchmarkObjectMeta compares create-time validation of a typical
// ReplicaSet-owned pod's metadata.
func BenchmarkObjectMeta(b *testing.B) {
	m := &metav1.ObjectMeta{
		Name: "web-7d9f8c6b5-x2x9q", GenerateName: "web-7d9f8c6b5-", Namespace: "default",
		Labels: map[string]string{"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-prod",
			"pod-template-hash": "7d9f8c6b5", "tier": "frontend"},
		Annotations: map[string]string{"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8c6b5",
			UID: "2b6c1f8e-0d8e-4c55-9b1e-0f7e3a3c9d11", Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1"}},
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += len(ValidateObjectMetaAccessor(m, true, NameIsDNSSubdomain, fp))
		}
	})
	b.Run("apimachinery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += len(apivalidation.ValidateObjectMetaAccessor(m, true, apivalidation.NameIsDNSSubdomain, fp))
		}
	})
}
