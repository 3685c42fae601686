package strategies

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
}

var appLabels = map[string]string{"app": "a"}

func TestDefaultDeployment(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: template(appLabels)}}
	deploymentStrategy{}.Default(d)
	want := appsv1.DeploymentSpec{
		Replicas: new(int32(1)),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: new(intstr.FromString("25%")), MaxSurge: new(intstr.FromString("25%"))}},
		RevisionHistoryLimit:    new(int32(10)),
		ProgressDeadlineSeconds: new(int32(600)),
	}
	got := d.Spec
	got.Template = corev1.PodTemplateSpec{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
	if p := d.Spec.Template.Spec; p.RestartPolicy != corev1.RestartPolicyAlways || p.SchedulerName != corev1.DefaultSchedulerName || p.EnableServiceLinks != nil {
		t.Errorf("template not defaulted as a pod template: %+v", p)
	}
}

func TestDefaultWorkloads(t *testing.T) {
	t.Run("replicationcontroller", func(t *testing.T) {
		tmpl := template(appLabels)
		rc := &corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Template: &tmpl}}
		replicationControllerStrategy{}.Default(rc)
		if *rc.Spec.Replicas != 1 || !cmp.Equal(rc.Spec.Selector, appLabels) || !cmp.Equal(rc.Labels, appLabels) {
			t.Errorf("got replicas %d, selector %v, labels %v; want 1 and %v", *rc.Spec.Replicas, rc.Spec.Selector, rc.Labels, appLabels)
		}
	})
	t.Run("daemonset", func(t *testing.T) {
		ds := &appsv1.DaemonSet{}
		daemonSetStrategy{}.Default(ds)
		want := appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: &appsv1.RollingUpdateDaemonSet{
			MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(0))}}
		if diff := cmp.Diff(want, ds.Spec.UpdateStrategy); diff != "" {
			t.Errorf("updateStrategy (-want +got):\n%s", diff)
		}
		if *ds.Spec.RevisionHistoryLimit != 10 {
			t.Errorf("revisionHistoryLimit = %d, want 10", *ds.Spec.RevisionHistoryLimit)
		}
	})
	t.Run("statefulset", func(t *testing.T) {
		ss := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{}}}}
		statefulSetStrategy{}.Default(ss)
		s := ss.Spec
		if *s.Replicas != 1 || s.PodManagementPolicy != appsv1.OrderedReadyPodManagement || *s.UpdateStrategy.RollingUpdate.Partition != 0 ||
			*s.RevisionHistoryLimit != 10 || *s.VolumeClaimTemplates[0].Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
			t.Errorf("statefulset spec not defaulted: %+v", s)
		}
	})
}

func validDeployment() *appsv1.Deployment {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: appLabels},
		Template: template(appLabels),
	}}
	deploymentStrategy{}.Default(d)
	return d
}

func TestValidateDeployment(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.DeploymentSpec)
		want   []string
	}{
		{"valid", func(*appsv1.DeploymentSpec) {}, nil},
		{"no selector", func(s *appsv1.DeploymentSpec) { s.Selector = nil }, []string{"spec.selector: Required value"}},
		{"selector mismatch", func(s *appsv1.DeploymentSpec) { s.Selector.MatchLabels = map[string]string{"app": "b"} },
			[]string{"spec.template.metadata.labels: Invalid value"}},
		{"negative replicas", func(s *appsv1.DeploymentSpec) { s.Replicas = new(int32(-1)) }, []string{"spec.replicas: Invalid value"}},
		{"no containers", func(s *appsv1.DeploymentSpec) { s.Template.Spec.Containers = nil }, []string{"spec.template.spec.containers: Required value"}},
		{"restartPolicy", func(s *appsv1.DeploymentSpec) { s.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{"spec.template.spec.restartPolicy: Unsupported value"}},
		{"surge and unavailable zero", func(s *appsv1.DeploymentSpec) {
			s.Strategy.RollingUpdate.MaxSurge, s.Strategy.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(0)), new(intstr.FromString("0%"))
		}, []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value"}},
		{"recreate with rollingUpdate", func(s *appsv1.DeploymentSpec) { s.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			[]string{"spec.strategy.rollingUpdate: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDeployment()
			tt.mutate(&d.Spec)
			checkErrs(t, deploymentStrategy{}.Validate(ctx, d), tt.want)
		})
	}
}

func TestWorkloadSelectorImmutable(t *testing.T) {
	old := validDeployment()
	d := old.DeepCopy()
	d.Spec.Selector.MatchLabels = map[string]string{"app": "a", "tier": "web"}
	d.Spec.Template.Labels = d.Spec.Selector.MatchLabels
	checkErrs(t, deploymentStrategy{}.ValidateUpdate(ctx, d, old), []string{"spec.selector: Invalid value"})

	rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: appLabels}, Template: template(appLabels)}}
	replicaSetStrategy{}.Default(rs)
	newRS := rs.DeepCopy()
	newRS.Spec.Selector = d.Spec.Selector
	newRS.Spec.Template.Labels = d.Spec.Template.Labels
	checkErrs(t, replicaSetStrategy{}.ValidateUpdate(ctx, newRS, rs), []string{"spec.selector: Invalid value"})
}

func TestValidateDaemonSetStrategy(t *testing.T) {
	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: appLabels}, Template: template(appLabels)}}
	daemonSetStrategy{}.Default(ds)
	checkErrs(t, daemonSetStrategy{}.Validate(ctx, ds), nil)
	ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge = new(intstr.FromInt32(1))
	checkErrs(t, daemonSetStrategy{}.Validate(ctx, ds), []string{"spec.updateStrategy.rollingUpdate.maxSurge: Invalid value"})
}

func TestStatefulSetUpdate(t *testing.T) {
	old := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{ServiceName: "s", Selector: &metav1.LabelSelector{MatchLabels: appLabels}, Template: template(appLabels)}}
	statefulSetStrategy{}.Default(old)
	checkErrs(t, statefulSetStrategy{}.Validate(ctx, old), nil)

	ss := old.DeepCopy()
	ss.Spec.Replicas = new(int32(3))
	ss.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	checkErrs(t, statefulSetStrategy{}.ValidateUpdate(ctx, ss, old), nil)
	ss.Spec.ServiceName = "other"
	checkErrs(t, statefulSetStrategy{}.ValidateUpdate(ctx, ss, old), []string{"spec: Forbidden"})
}

func TestValidateReplicationController(t *testing.T) {
	tmpl := template(appLabels)
	rc := &corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "b"}, Template: &tmpl}}
	replicationControllerStrategy{}.Default(rc)
	checkErrs(t, replicationControllerStrategy{}.Validate(ctx, rc), []string{"spec.template.metadata.labels: Invalid value"})
	if got := (replicationControllerStrategy{}).Fields(rc)["status.replicas"]; got != "0" {
		t.Errorf("status.replicas field = %q, want 0", got)
	}
}
