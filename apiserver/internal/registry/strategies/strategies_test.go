package strategies

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

var ctx = context.Background()

// errStrings renders errors as "field: type" for comparisons.
func errStrings(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s: %s", e.Field, e.Type))
	}
	return out
}

func checkErrs(t *testing.T, errs field.ErrorList, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, errStrings(errs)); diff != "" {
		t.Errorf("errors (-want +got):\n%s\ngot: %v", diff, errs)
	}
}

// TestEveryServedResource runs every method of every strategy on empty
// objects of the resource's kind: each resource has a strategy, and each
// strategy takes its kind.
func TestEveryServedResource(t *testing.T) {
	for _, r := range scheme.Resources() {
		t.Run(r.GVR.String(), func(t *testing.T) {
			s, ok := For(r.GVR)
			if !ok {
				t.Fatalf("For(%v): no strategy", r.GVR)
			}
			obj, err := r.New()
			if err != nil {
				t.Fatal(err)
			}
			old, _ := r.New()
			if s.NameValidator() == nil {
				t.Error("NameValidator() = nil")
			}
			s.Default(obj)
			s.PrepareForCreate(ctx, obj)
			s.Validate(ctx, obj)
			s.PrepareForUpdate(ctx, obj, old)
			s.ValidateUpdate(ctx, obj, old)
			s.PrepareForStatusUpdate(ctx, obj, old)
			s.ValidateStatusUpdate(ctx, obj, old)
			s.SpecChanged(obj, old)
			if s.Fields(obj) == nil {
				t.Error("Fields() = nil, want a set")
			}
		})
	}
	if _, ok := For(core("bogus")); ok {
		t.Error("For(bogus) found a strategy")
	}
}

func TestNameValidators(t *testing.T) {
	tests := []struct {
		resource string
		name     string
		valid    bool
	}{
		{"namespaces", "a.b", false},
		{"namespaces", "ab", true},
		{"services", "a.b", false},
		{"configmaps", "a.b", true},
		{"pods", "A", false},
		{"clusterroles", "system:controller:foo", true},
		{"clusterroles", "a/b", false},
	}
	for _, tt := range tests {
		t.Run(tt.resource+"/"+tt.name, func(t *testing.T) {
			gvr := core(tt.resource)
			if tt.resource == "clusterroles" {
				gvr.Group = "rbac.authorization.k8s.io"
			}
			s, _ := For(gvr)
			if got := len(s.NameValidator()(tt.name, false)) == 0; got != tt.valid {
				t.Errorf("valid = %v, want %v", got, tt.valid)
			}
		})
	}
}

func TestStatusHandling(t *testing.T) {
	s := deploymentStrategy{}
	old := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", ResourceVersion: "1", Labels: map[string]string{"a": "1"}},
		Spec:       appsv1.DeploymentSpec{Replicas: new(int32(1))},
		Status:     appsv1.DeploymentStatus{Replicas: 1},
	}

	t.Run("create resets status", func(t *testing.T) {
		d := old.DeepCopy()
		s.PrepareForCreate(ctx, d)
		if diff := cmp.Diff(appsv1.DeploymentStatus{}, d.Status); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	})
	t.Run("update keeps status", func(t *testing.T) {
		d := old.DeepCopy()
		d.Spec.Replicas = new(int32(3))
		d.Status.Replicas = 5
		s.PrepareForUpdate(ctx, d, old)
		if d.Status.Replicas != 1 || *d.Spec.Replicas != 3 {
			t.Errorf("got status.replicas %d, spec.replicas %d; want 1, 3", d.Status.Replicas, *d.Spec.Replicas)
		}
		if !s.SpecChanged(d, old) {
			t.Error("SpecChanged = false, want true")
		}
	})
	t.Run("status update keeps all but status", func(t *testing.T) {
		d := old.DeepCopy()
		d.ResourceVersion = "2"
		d.Labels = map[string]string{"b": "2"}
		d.Spec.Replicas = new(int32(3))
		d.Status.Replicas = 5
		s.PrepareForStatusUpdate(ctx, d, old)
		want := old.DeepCopy()
		want.ResourceVersion = "2"
		want.Status.Replicas = 5
		if diff := cmp.Diff(want, d); diff != "" {
			t.Errorf("object (-want +got):\n%s", diff)
		}
	})
	t.Run("spec unchanged", func(t *testing.T) {
		d := old.DeepCopy()
		d.Status.Replicas = 7
		if s.SpecChanged(d, old) {
			t.Error("SpecChanged = true, want false")
		}
		if (configMapStrategy{}).SpecChanged(&corev1.ConfigMap{Data: map[string]string{"a": "b"}}, &corev1.ConfigMap{}) {
			t.Error("ConfigMap SpecChanged = true, want false")
		}
	})
}
