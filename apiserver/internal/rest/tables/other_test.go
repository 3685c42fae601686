package tables

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func template(names ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers(names...)}}
}

var appSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}

func TestDeployments(t *testing.T) {
	checkTable(t, gvr("apps", "v1", "deployments"),
		[]string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS (wide)", "IMAGES (wide)", "SELECTOR (wide)"},
		[]rowCase{
			{
				name: "rolling",
				obj: &appsv1.Deployment{ObjectMeta: objMeta("web", 20*time.Minute),
					Spec:   appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Selector: appSelector, Template: template("nginx", "exporter")},
					Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2}},
				cells: []interface{}{"web", "2/3", int64(1), int64(2), "20m", "nginx,exporter", "nginx:1,exporter:1", "app=web"},
			},
			{
				name: "set-based selector",
				obj: &appsv1.Deployment{ObjectMeta: objMeta("api", time.Hour),
					Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(0)), Template: template("api"), Selector: &metav1.LabelSelector{
						MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}},
					}}},
				cells: []interface{}{"api", "0/0", int64(0), int64(0), "60m", "api", "api:1", "tier in (a,b)"},
			},
		})
}

func TestReplicaSets(t *testing.T) {
	checkTable(t, gvr("apps", "v1", "replicasets"),
		[]string{"NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS (wide)", "IMAGES (wide)", "SELECTOR (wide)"},
		[]rowCase{{
			name: "scaled",
			obj: &appsv1.ReplicaSet{ObjectMeta: objMeta("web-5d4f8", 20*time.Minute),
				Spec:   appsv1.ReplicaSetSpec{Replicas: ptr(int32(3)), Selector: appSelector, Template: template("nginx")},
				Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 3}},
			cells: []interface{}{"web-5d4f8", int64(3), int64(3), int64(3), "20m", "nginx", "nginx:1", "app=web"},
		}})
}

func TestDaemonSets(t *testing.T) {
	checkTable(t, gvr("apps", "v1", "daemonsets"),
		[]string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE", "CONTAINERS (wide)", "IMAGES (wide)", "SELECTOR (wide)"},
		[]rowCase{{
			name: "with node selector",
			obj: &appsv1.DaemonSet{ObjectMeta: objMeta("proxy", 3*24*time.Hour),
				Spec: appsv1.DaemonSetSpec{Selector: appSelector, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"kubernetes.io/os": "linux"}, Containers: containers("proxy"),
				}}},
				Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2, UpdatedNumberScheduled: 3, NumberAvailable: 2}},
			cells: []interface{}{"proxy", int64(3), int64(3), int64(2), int64(3), int64(2), "kubernetes.io/os=linux", "3d", "proxy", "proxy:1", "app=web"},
		}, {
			name:  "no node selector",
			obj:   &appsv1.DaemonSet{ObjectMeta: objMeta("agent", time.Hour), Spec: appsv1.DaemonSetSpec{Selector: appSelector, Template: template("a")}},
			cells: []interface{}{"agent", int64(0), int64(0), int64(0), int64(0), int64(0), "<none>", "60m", "a", "a:1", "app=web"},
		}})
}

func TestStatefulSets(t *testing.T) {
	checkTable(t, gvr("apps", "v1", "statefulsets"), []string{"NAME", "READY", "AGE", "CONTAINERS (wide)", "IMAGES (wide)"}, []rowCase{{
		name: "scaling",
		obj: &appsv1.StatefulSet{ObjectMeta: objMeta("db", 2*time.Hour),
			Spec:   appsv1.StatefulSetSpec{Replicas: ptr(int32(3)), Template: template("postgres")},
			Status: appsv1.StatefulSetStatus{ReadyReplicas: 1}},
		cells: []interface{}{"db", "1/3", "120m", "postgres", "postgres:1"},
	}})
}

func TestControllerRevisions(t *testing.T) {
	owned := objMeta("db-7f9", time.Hour)
	owned.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "Pod", Name: "not-controller"},
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", Controller: ptr(true)},
	}
	core := objMeta("r", time.Hour)
	core.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "p", Controller: ptr(true)}}
	checkTable(t, gvr("apps", "v1", "controllerrevisions"), []string{"NAME", "CONTROLLER", "REVISION", "AGE"}, []rowCase{
		{name: "statefulset", obj: &appsv1.ControllerRevision{ObjectMeta: owned, Revision: 2}, cells: []interface{}{"db-7f9", "statefulset.apps/db", int64(2), "60m"}},
		{name: "core owner", obj: &appsv1.ControllerRevision{ObjectMeta: core, Revision: 1}, cells: []interface{}{"r", "pod/p", int64(1), "60m"}},
		{name: "orphan", obj: &appsv1.ControllerRevision{ObjectMeta: objMeta("o", time.Hour), Revision: 5}, cells: []interface{}{"o", "<none>", int64(5), "60m"}},
	})
}

func jobCond(t batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: s}
}

func TestJobs(t *testing.T) {
	cols := []string{"NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS (wide)", "IMAGES (wide)", "SELECTOR (wide)"}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "abc"}}
	job := func(name string, spec batchv1.JobSpec, status batchv1.JobStatus) *batchv1.Job {
		spec.Template = template("pi")
		spec.Selector = sel
		return &batchv1.Job{ObjectMeta: objMeta(name, time.Hour), Spec: spec, Status: status}
	}
	checkTable(t, gvr("batch", "v1", "jobs"), cols, []rowCase{
		{
			name: "complete",
			obj: job("pi", batchv1.JobSpec{Completions: ptr(int32(1)), Parallelism: ptr(int32(1))}, batchv1.JobStatus{
				Succeeded: 1, StartTime: agoPtr(50 * time.Minute), CompletionTime: agoPtr(50*time.Minute - 47*time.Second),
				Conditions: []batchv1.JobCondition{jobCond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), jobCond(batchv1.JobComplete, corev1.ConditionTrue)},
			}),
			cells: []interface{}{"pi", "Complete", "1/1", "47s", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name:  "running, work queue with parallelism",
			obj:   job("q", batchv1.JobSpec{Parallelism: ptr(int32(3))}, batchv1.JobStatus{Succeeded: 1, StartTime: agoPtr(5 * time.Minute)}),
			cells: []interface{}{"q", "Running", "1/1 of 3", "5m", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name:  "not started",
			obj:   job("new", batchv1.JobSpec{Completions: ptr(int32(5))}, batchv1.JobStatus{}),
			cells: []interface{}{"new", "Running", "0/5", "", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "failed",
			obj: job("f", batchv1.JobSpec{Completions: ptr(int32(1))}, batchv1.JobStatus{StartTime: agoPtr(time.Hour), CompletionTime: agoPtr(30 * time.Minute),
				Conditions: []batchv1.JobCondition{jobCond(batchv1.JobFailureTarget, corev1.ConditionTrue), jobCond(batchv1.JobFailed, corev1.ConditionTrue)}}),
			cells: []interface{}{"f", "Failed", "0/1", "30m", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "suspended",
			obj: job("s", batchv1.JobSpec{Completions: ptr(int32(1)), Suspend: ptr(true)}, batchv1.JobStatus{
				Conditions: []batchv1.JobCondition{jobCond(batchv1.JobSuspended, corev1.ConditionTrue)}}),
			cells: []interface{}{"s", "Suspended", "0/1", "", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "failure target",
			obj: job("ft", batchv1.JobSpec{Completions: ptr(int32(1))}, batchv1.JobStatus{
				Conditions: []batchv1.JobCondition{jobCond(batchv1.JobFailureTarget, corev1.ConditionTrue)}}),
			cells: []interface{}{"ft", "FailureTarget", "0/1", "", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "terminating",
			obj: func() *batchv1.Job {
				j := job("t", batchv1.JobSpec{Completions: ptr(int32(1))}, batchv1.JobStatus{
					Conditions: []batchv1.JobCondition{jobCond(batchv1.JobSuspended, corev1.ConditionTrue)}})
				j.DeletionTimestamp = agoPtr(0)
				return j
			}(),
			cells: []interface{}{"t", "Terminating", "0/1", "", "60m", "pi", "pi:1", "batch.kubernetes.io/controller-uid=abc"},
		},
	})
}

func TestCronJobs(t *testing.T) {
	cols := []string{"NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE", "CONTAINERS (wide)", "IMAGES (wide)", "SELECTOR (wide)"}
	checkTable(t, gvr("batch", "v1", "cronjobs"), cols, []rowCase{
		{
			name: "scheduled",
			obj: &batchv1.CronJob{ObjectMeta: objMeta("hello", 3*time.Hour),
				Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *", TimeZone: ptr("Etc/UTC"), Suspend: ptr(false),
					JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("hello")}}},
				Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "hello-1"}}, LastScheduleTime: agoPtr(4 * time.Minute)}},
			cells: []interface{}{"hello", "*/5 * * * *", "Etc/UTC", "False", int64(1), "4m", "3h", "hello", "hello:1", "<none>"},
		},
		{
			name: "never scheduled",
			obj: &batchv1.CronJob{ObjectMeta: objMeta("nightly", 3*time.Hour),
				Spec: batchv1.CronJobSpec{Schedule: "0 0 * * *", Suspend: ptr(true),
					JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("b")}}}},
			cells: []interface{}{"nightly", "0 0 * * *", "<none>", "True", int64(0), "<none>", "3h", "b", "b:1", "<none>"},
		},
		{
			name:  "suspend unset",
			obj:   &batchv1.CronJob{ObjectMeta: objMeta("x", time.Hour), Spec: batchv1.CronJobSpec{Schedule: "@hourly"}},
			cells: []interface{}{"x", "@hourly", "<none>", "<unset>", int64(0), "<none>", "60m", "", "", "<none>"},
		},
	})
}

func TestHorizontalPodAutoscalers(t *testing.T) {
	q := resource.MustParse
	cpu := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(80))}}}
	mem := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(q("500Mi"))}}}
	pods := autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: "rps"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr(q("1k"))}}}
	ref := autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"}

	checkTable(t, gvr("autoscaling", "v2", "horizontalpodautoscalers"),
		[]string{"NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"},
		[]rowCase{
			{
				name: "cpu with current value",
				obj: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: objMeta("web", time.Hour),
					Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MinReplicas: ptr(int32(2)), MaxReplicas: 10, Metrics: []autoscalingv2.MetricSpec{cpu}},
					Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3, CurrentMetrics: []autoscalingv2.MetricStatus{{
						Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
							Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr(int32(50))}}}}}},
				cells: []interface{}{"web", "Deployment/web", "cpu: 50%/80%", "2", int64(10), int64(3), "60m"},
			},
			{
				name: "unknown current, no metrics status",
				obj: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: objMeta("web", time.Hour),
					Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 5, Metrics: []autoscalingv2.MetricSpec{cpu, mem}}},
				cells: []interface{}{"web", "Deployment/web", "cpu: <unknown>/80%, memory: <unknown>/500Mi", "<unset>", int64(5), int64(0), "60m"},
			},
			{
				name: "more than two",
				obj: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: objMeta("web", time.Hour),
					Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 5, Metrics: []autoscalingv2.MetricSpec{pods, cpu, mem}}},
				cells: []interface{}{"web", "Deployment/web", "<unknown>/1k, cpu: <unknown>/80% + 1 more...", "<unset>", int64(5), int64(0), "60m"},
			},
			{
				name: "no metrics",
				obj: &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: objMeta("web", time.Hour),
					Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 5}},
				cells: []interface{}{"web", "Deployment/web", "<none>", "<unset>", int64(5), int64(0), "60m"},
			},
		})
}

func TestLeases(t *testing.T) {
	checkTable(t, gvr("coordination.k8s.io", "v1", "leases"), []string{"NAME", "HOLDER", "AGE"}, []rowCase{
		{name: "held", obj: &coordinationv1.Lease{ObjectMeta: objMeta("kube-scheduler", time.Hour), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("master_1234")}},
			cells: []interface{}{"kube-scheduler", "master_1234", "60m"}},
		{name: "free", obj: &coordinationv1.Lease{ObjectMeta: objMeta("x", time.Hour)}, cells: []interface{}{"x", "", "60m"}},
	})
}

func TestEndpointSlices(t *testing.T) {
	ep := func(addrs ...string) discoveryv1.Endpoint { return discoveryv1.Endpoint{Addresses: addrs} }
	checkTable(t, gvr("discovery.k8s.io", "v1", "endpointslices"), []string{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}, []rowCase{
		{
			name: "ports and endpoints",
			obj: &discoveryv1.EndpointSlice{ObjectMeta: objMeta("web-abc", time.Hour), AddressType: discoveryv1.AddressTypeIPv4,
				Ports:     []discoveryv1.EndpointPort{{Port: ptr(int32(80))}, {Name: ptr("metrics")}, {}},
				Endpoints: []discoveryv1.Endpoint{ep("10.0.0.1"), ep("10.0.0.2", "10.0.0.3"), ep("10.0.0.4")}},
			cells: []interface{}{"web-abc", "IPv4", "80,metrics,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "60m"},
		},
		{
			name:  "empty",
			obj:   &discoveryv1.EndpointSlice{ObjectMeta: objMeta("empty", time.Hour), AddressType: discoveryv1.AddressTypeIPv6},
			cells: []interface{}{"empty", "IPv6", "<unset>", "<unset>", "60m"},
		},
	})
}

func TestPodDisruptionBudgets(t *testing.T) {
	min := intstr.FromInt32(2)
	max := intstr.FromString("25%")
	checkTable(t, gvr("policy", "v1", "poddisruptionbudgets"), []string{"NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"}, []rowCase{
		{name: "min", obj: &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("a", time.Hour), Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &min},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1}}, cells: []interface{}{"a", "2", "N/A", int64(1), "60m"}},
		{name: "max", obj: &policyv1.PodDisruptionBudget{ObjectMeta: objMeta("b", time.Hour), Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &max}},
			cells: []interface{}{"b", "N/A", "25%", int64(0), "60m"}},
	})
}

func TestPriorityClasses(t *testing.T) {
	never := corev1.PreemptNever
	checkTable(t, gvr("scheduling.k8s.io", "v1", "priorityclasses"), []string{"NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"}, []rowCase{
		{name: "system", obj: &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical", CreationTimestamp: ago(time.Hour)},
			Value: 2000001000, PreemptionPolicy: ptr(corev1.PreemptLowerPriority)},
			cells: []interface{}{"system-node-critical", int64(2000001000), false, "60m", "PreemptLowerPriority"}},
		{name: "default", obj: &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "low", CreationTimestamp: ago(time.Hour)},
			Value: -5, GlobalDefault: true, PreemptionPolicy: &never},
			cells: []interface{}{"low", int64(-5), true, "60m", "Never"}},
		{name: "unset policy", obj: &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "x", CreationTimestamp: ago(time.Hour)}},
			cells: []interface{}{"x", int64(0), false, "60m", ""}},
	})
}

func TestRBAC(t *testing.T) {
	created := metav1.NewTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	checkTable(t, gvr("rbac.authorization.k8s.io", "v1", "roles"), []string{"NAME", "CREATED AT"}, []rowCase{{
		name: "role", obj: &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default", CreationTimestamp: created}},
		cells: []interface{}{"reader", "2025-01-02T03:04:05Z"},
	}})
	checkTable(t, gvr("rbac.authorization.k8s.io", "v1", "clusterroles"), []string{"NAME", "CREATED AT"}, []rowCase{{
		name: "cluster role", obj: &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin", CreationTimestamp: created}},
		cells: []interface{}{"admin", "2025-01-02T03:04:05Z"},
	}})

	subjects := []rbacv1.Subject{
		{Kind: "User", Name: "alice"}, {Kind: "User", Name: "bob"},
		{Kind: "Group", Name: "system:masters"},
		{Kind: "ServiceAccount", Namespace: "kube-system", Name: "deployer"},
	}
	bindingCols := []string{"NAME", "ROLE", "AGE", "USERS (wide)", "GROUPS (wide)", "SERVICEACCOUNTS (wide)"}
	checkTable(t, gvr("rbac.authorization.k8s.io", "v1", "rolebindings"), bindingCols, []rowCase{{
		name: "role binding",
		obj: &rbacv1.RoleBinding{ObjectMeta: objMeta("read", time.Hour), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
			Subjects: subjects},
		cells: []interface{}{"read", "Role/reader", "60m", "alice, bob", "system:masters", "kube-system/deployer"},
	}, {
		name:  "no subjects",
		obj:   &rbacv1.RoleBinding{ObjectMeta: objMeta("none", time.Hour), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}},
		cells: []interface{}{"none", "ClusterRole/view", "60m", "", "", ""},
	}})
	checkTable(t, gvr("rbac.authorization.k8s.io", "v1", "clusterrolebindings"), bindingCols, []rowCase{{
		name: "cluster role binding",
		obj: &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "admins", CreationTimestamp: ago(time.Hour)},
			RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: subjects[2:]},
		cells: []interface{}{"admins", "ClusterRole/cluster-admin", "60m", "", "system:masters", "kube-system/deployer"},
	}})
}
