package strategies

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestHPA(t *testing.T) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
		MaxReplicas:    5,
	}}
	hpaStrategy{}.Default(hpa)
	want := []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(80))}}}}
	if diff := cmp.Diff(want, hpa.Spec.Metrics); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if *hpa.Spec.MinReplicas != 1 {
		t.Errorf("minReplicas = %d, want 1", *hpa.Spec.MinReplicas)
	}
	checkErrs(t, hpaStrategy{}.Validate(ctx, hpa), nil)
	hpa.Spec.MaxReplicas = 0
	checkErrs(t, hpaStrategy{}.Validate(ctx, hpa), []string{"spec.maxReplicas: Invalid value", "spec.maxReplicas: Invalid value"})
}

func TestPDB(t *testing.T) {
	pdb := &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: new(intstr.FromString("50%")), MaxUnavailable: new(intstr.FromString("150%"))}}
	checkErrs(t, pdbStrategy{}.Validate(ctx, pdb), []string{"spec: Invalid value", "spec.maxUnavailable: Invalid value"})
}

func TestPriorityClass(t *testing.T) {
	s := priorityClassStrategy{}
	tests := []struct {
		name  string
		value int32
		want  []string
	}{
		{"high", 1000000000, nil},
		{"too-high", 1000000001, []string{"value: Forbidden"}},
		{"system-node-critical", 2000001000, nil},
		{"system-custom", 10, []string{"metadata.name: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: tt.name}, Value: tt.value}
			s.Default(pc)
			if *pc.PreemptionPolicy != corev1.PreemptLowerPriority {
				t.Errorf("preemptionPolicy = %s, want PreemptLowerPriority", *pc.PreemptionPolicy)
			}
			checkErrs(t, s.Validate(ctx, pc), tt.want)
		})
	}
	old := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Value: 1}
	s.Default(old)
	pc := old.DeepCopy()
	pc.Value = 2
	checkErrs(t, s.ValidateUpdate(ctx, pc, old), []string{"value: Forbidden"})
}

func TestRBAC(t *testing.T) {
	role := &rbacv1.Role{Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
	}}
	checkErrs(t, roleStrategy{}.Validate(ctx, role), []string{"rules[1].verbs: Required value", "rules[2].nonResourceURLs: Invalid value"})

	crb := &rbacv1.ClusterRoleBinding{
		RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}, {Kind: "ServiceAccount", Name: "sa"}},
	}
	clusterRoleBindingStrategy{}.Default(crb)
	if crb.RoleRef.APIGroup != rbacv1.GroupName || crb.Subjects[0].APIGroup != rbacv1.GroupName || crb.Subjects[1].APIGroup != "" {
		t.Errorf("binding not defaulted: %+v", crb)
	}
	checkErrs(t, clusterRoleBindingStrategy{}.Validate(ctx, crb), []string{"subjects[1].namespace: Required value"})

	old := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "a"}}
	rb := old.DeepCopy()
	rb.RoleRef.Name = "b"
	checkErrs(t, roleBindingStrategy{}.ValidateUpdate(ctx, rb, old), []string{"roleRef: Invalid value"})
}
