package tables

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

func init() {
	jobSpecDoc := batchv1.JobSpec{}.SwaggerDoc()
	register("batch", "v1", "jobs", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", "string", "Status of the job."),
		column("Completions", "string", batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
		column("Duration", "string", "Time required to complete the job."),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
		wide("Selector", "string", jobSpecDoc["selector"]),
	}, jobRow))

	cronSpecDoc := batchv1.CronJobSpec{}.SwaggerDoc()
	cronStatusDoc := batchv1.CronJobStatus{}.SwaggerDoc()
	register("batch", "v1", "cronjobs", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Schedule", "string", cronSpecDoc["schedule"]),
		column("Timezone", "string", cronSpecDoc["timeZone"]),
		column("Suspend", "boolean", cronSpecDoc["suspend"]),
		column("Active", "integer", cronStatusDoc["active"]),
		column("Last Schedule", "string", cronStatusDoc["lastScheduleTime"]),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
		wide("Selector", "string", jobSpecDoc["selector"]),
	}, func(cj *batchv1.CronJob, now time.Time) (metav1.TableRow, error) {
		lastScheduleTime := "<none>"
		if cj.Status.LastScheduleTime != nil {
			lastScheduleTime = since(*cj.Status.LastScheduleTime, now)
		}
		timeZone := "<none>"
		if cj.Spec.TimeZone != nil {
			timeZone = *cj.Spec.TimeZone
		}
		names, images := layoutContainerCells(cj.Spec.JobTemplate.Spec.Template.Spec.Containers)
		return cells(cj.Name, cj.Spec.Schedule, timeZone, printBoolPtr(cj.Spec.Suspend), int64(len(cj.Status.Active)),
			lastScheduleTime, since(cj.CreationTimestamp, now),
			names, images, metav1.FormatLabelSelector(cj.Spec.JobTemplate.Spec.Selector))
	}))

	hpaSpecDoc := autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()
	register("autoscaling", "v2", "horizontalpodautoscalers", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Reference", "string", hpaSpecDoc["scaleTargetRef"]),
		column("Targets", "string", hpaSpecDoc["metrics"]),
		column("MinPods", "string", hpaSpecDoc["minReplicas"]),
		column("MaxPods", "string", hpaSpecDoc["maxReplicas"]),
		column("Replicas", "string", autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]),
		ageColumn(),
	}, func(hpa *autoscalingv2.HorizontalPodAutoscaler, now time.Time) (metav1.TableRow, error) {
		reference := hpa.Spec.ScaleTargetRef.Kind + "/" + hpa.Spec.ScaleTargetRef.Name
		minPods := "<unset>"
		if hpa.Spec.MinReplicas != nil {
			minPods = strconv.Itoa(int(*hpa.Spec.MinReplicas))
		}
		return cells(hpa.Name, reference, formatHPAMetrics(hpa.Spec.Metrics, hpa.Status.CurrentMetrics), minPods,
			int64(hpa.Spec.MaxReplicas), int64(hpa.Status.CurrentReplicas), since(hpa.CreationTimestamp, now))
	}))

	register("coordination.k8s.io", "v1", "leases", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
		ageColumn(),
	}, func(l *coordinationv1.Lease, now time.Time) (metav1.TableRow, error) {
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		return cells(l.Name, holder, since(l.CreationTimestamp, now))
	}))

	sliceDoc := discoveryv1.EndpointSlice{}.SwaggerDoc()
	register("discovery.k8s.io", "v1", "endpointslices", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("AddressType", "string", sliceDoc["addressType"]),
		column("Ports", "string", sliceDoc["ports"]),
		column("Endpoints", "string", sliceDoc["endpoints"]),
		ageColumn(),
	}, func(es *discoveryv1.EndpointSlice, now time.Time) (metav1.TableRow, error) {
		return cells(es.Name, string(es.AddressType), formatDiscoveryPorts(es.Ports), formatDiscoveryEndpoints(es.Endpoints),
			since(es.CreationTimestamp, now))
	}))

	register("policy", "v1", "poddisruptionbudgets", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Min Available", "string", "The minimum number of pods that must be available."),
		column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
		column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
		ageColumn(),
	}, func(pdb *policyv1.PodDisruptionBudget, now time.Time) (metav1.TableRow, error) {
		minAvailable, maxUnavailable := "N/A", "N/A"
		if pdb.Spec.MinAvailable != nil {
			minAvailable = pdb.Spec.MinAvailable.String()
		}
		if pdb.Spec.MaxUnavailable != nil {
			maxUnavailable = pdb.Spec.MaxUnavailable.String()
		}
		return cells(pdb.Name, minAvailable, maxUnavailable, int64(pdb.Status.DisruptionsAllowed), since(pdb.CreationTimestamp, now))
	}))

	pcDoc := schedulingv1.PriorityClass{}.SwaggerDoc()
	register("scheduling.k8s.io", "v1", "priorityclasses", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Value", "integer", pcDoc["value"]),
		column("Global-Default", "boolean", pcDoc["globalDefault"]),
		ageColumn(),
		column("PreemptionPolicy", "string", pcDoc["preemptionPolicy"]),
	}, func(pc *schedulingv1.PriorityClass, now time.Time) (metav1.TableRow, error) {
		preemptionPolicy := ""
		if pc.PreemptionPolicy != nil {
			preemptionPolicy = string(*pc.PreemptionPolicy)
		}
		return cells(pc.Name, int64(pc.Value), pc.GlobalDefault, since(pc.CreationTimestamp, now), preemptionPolicy)
	}))

	// Upstream has no printer for roles: the default NAME CREATED AT table.
	register("rbac.authorization.k8s.io", "v1", "roles", createdAtPrinter)
	register("rbac.authorization.k8s.io", "v1", "clusterroles", createdAtPrinter)

	register("rbac.authorization.k8s.io", "v1", "rolebindings", handler(
		bindingColumns("roleBinding", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"]),
		func(rb *rbacv1.RoleBinding, now time.Time) (metav1.TableRow, error) {
			return bindingRow(rb.Name, rb.RoleRef, rb.Subjects, rb.CreationTimestamp, now)
		}))
	register("rbac.authorization.k8s.io", "v1", "clusterrolebindings", handler(
		bindingColumns("clusterRoleBinding", rbacv1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"]),
		func(crb *rbacv1.ClusterRoleBinding, now time.Time) (metav1.TableRow, error) {
			return bindingRow(crb.Name, crb.RoleRef, crb.Subjects, crb.CreationTimestamp, now)
		}))
}

func hasJobCondition(conditions []batchv1.JobCondition, conditionType batchv1.JobConditionType) bool {
	for _, condition := range conditions {
		if condition.Type == conditionType {
			return condition.Status == corev1.ConditionTrue
		}
	}
	return false
}

func jobRow(job *batchv1.Job, now time.Time) (metav1.TableRow, error) {
	var completions string
	if job.Spec.Completions != nil {
		completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
	} else if parallelism := derefInt32(job.Spec.Parallelism); parallelism > 1 {
		completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, parallelism)
	} else {
		completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
	}

	var jobDuration string
	switch {
	case job.Status.StartTime == nil:
	case job.Status.CompletionTime == nil:
		jobDuration = duration.HumanDuration(now.Sub(job.Status.StartTime.Time))
	default:
		jobDuration = duration.HumanDuration(job.Status.CompletionTime.Sub(job.Status.StartTime.Time))
	}

	var status string
	switch {
	case hasJobCondition(job.Status.Conditions, batchv1.JobComplete):
		status = "Complete"
	case hasJobCondition(job.Status.Conditions, batchv1.JobFailed):
		status = "Failed"
	case job.DeletionTimestamp != nil:
		status = "Terminating"
	case hasJobCondition(job.Status.Conditions, batchv1.JobSuspended):
		status = "Suspended"
	case hasJobCondition(job.Status.Conditions, batchv1.JobFailureTarget):
		status = "FailureTarget"
	default:
		status = "Running"
	}

	names, images := layoutContainerCells(job.Spec.Template.Spec.Containers)
	return cells(job.Name, status, completions, jobDuration, since(job.CreationTimestamp, now),
		names, images, metav1.FormatLabelSelector(job.Spec.Selector))
}

// formatHPAMetrics renders up to two metrics as "current/target".
func formatHPAMetrics(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	var list []string
	const max = 2
	count := 0
	for i, spec := range specs {
		switch spec.Type {
		case autoscalingv2.ExternalMetricSourceType:
			if spec.External.Target.AverageValue != nil {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].External != nil && statuses[i].External.Current.AverageValue != nil {
					current = statuses[i].External.Current.AverageValue.String()
				}
				list = append(list, fmt.Sprintf("%s/%s (avg)", current, spec.External.Target.AverageValue.String()))
			} else {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].External != nil {
					current = statuses[i].External.Current.Value.String()
				}
				list = append(list, fmt.Sprintf("%s/%s", current, spec.External.Target.Value.String()))
			}
		case autoscalingv2.PodsMetricSourceType:
			current := "<unknown>"
			if len(statuses) > i && statuses[i].Pods != nil {
				current = statuses[i].Pods.Current.AverageValue.String()
			}
			list = append(list, fmt.Sprintf("%s/%s", current, spec.Pods.Target.AverageValue.String()))
		case autoscalingv2.ObjectMetricSourceType:
			if spec.Object.Target.AverageValue != nil {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].Object != nil && statuses[i].Object.Current.AverageValue != nil {
					current = statuses[i].Object.Current.AverageValue.String()
				}
				list = append(list, fmt.Sprintf("%s/%s (avg)", current, spec.Object.Target.AverageValue.String()))
			} else {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].Object != nil {
					current = statuses[i].Object.Current.Value.String()
				}
				list = append(list, fmt.Sprintf("%s/%s", current, spec.Object.Target.Value.String()))
			}
		case autoscalingv2.ResourceMetricSourceType:
			if spec.Resource.Target.AverageValue != nil {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].Resource != nil {
					current = statuses[i].Resource.Current.AverageValue.String()
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.Resource.Name.String(), current, spec.Resource.Target.AverageValue.String()))
			} else {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].Resource != nil && statuses[i].Resource.Current.AverageUtilization != nil {
					current = fmt.Sprintf("%d%%", *statuses[i].Resource.Current.AverageUtilization)
				}
				target := "<auto>"
				if spec.Resource.Target.AverageUtilization != nil {
					target = fmt.Sprintf("%d%%", *spec.Resource.Target.AverageUtilization)
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.Resource.Name.String(), current, target))
			}
		case autoscalingv2.ContainerResourceMetricSourceType:
			if spec.ContainerResource.Target.AverageValue != nil {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].ContainerResource != nil {
					current = statuses[i].ContainerResource.Current.AverageValue.String()
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.ContainerResource.Name.String(), current, spec.ContainerResource.Target.AverageValue.String()))
			} else {
				current := "<unknown>"
				if len(statuses) > i && statuses[i].ContainerResource != nil && statuses[i].ContainerResource.Current.AverageUtilization != nil {
					current = fmt.Sprintf("%d%%", *statuses[i].ContainerResource.Current.AverageUtilization)
				}
				target := "<auto>"
				if spec.ContainerResource.Target.AverageUtilization != nil {
					target = fmt.Sprintf("%d%%", *spec.ContainerResource.Target.AverageUtilization)
				}
				list = append(list, fmt.Sprintf("%s: %s/%s", spec.ContainerResource.Name.String(), current, target))
			}
		default:
			list = append(list, "<unknown type>")
		}
		count++
	}

	if count > max {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:max], ", "), count-max)
	}
	return strings.Join(list, ", ")
}

func formatDiscoveryPorts(ports []discoveryv1.EndpointPort) string {
	var list []string
	const max = 3
	more := false
	count := 0
	for _, port := range ports {
		if len(list) < max {
			portNum := "*"
			if port.Port != nil {
				portNum = strconv.Itoa(int(*port.Port))
			} else if port.Name != nil {
				portNum = *port.Name
			}
			list = append(list, portNum)
		} else if len(list) == max {
			more = true
		}
		count++
	}
	return listWithMoreString(list, more, count, max)
}

func formatDiscoveryEndpoints(endpoints []discoveryv1.Endpoint) string {
	var list []string
	const max = 3
	more := false
	count := 0
	for _, endpoint := range endpoints {
		for _, address := range endpoint.Addresses {
			if len(list) < max {
				list = append(list, address)
			} else if len(list) == max {
				more = true
			}
			count++
		}
	}
	return listWithMoreString(list, more, count, max)
}

func listWithMoreString(list []string, more bool, count, max int) string {
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		ret = "<unset>"
	}
	return ret
}

func bindingColumns(kind, roleRefDoc string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Role", "string", roleRefDoc),
		ageColumn(),
		wide("Users", "string", "Users in the "+kind),
		wide("Groups", "string", "Groups in the "+kind),
		wide("ServiceAccounts", "string", "ServiceAccounts in the "+kind),
	}
}

func bindingRow(name string, roleRef rbacv1.RoleRef, subjects []rbacv1.Subject, created metav1.Time, now time.Time) (metav1.TableRow, error) {
	var users, groups, sas []string
	for _, subject := range subjects {
		switch subject.Kind {
		case rbacv1.ServiceAccountKind:
			sas = append(sas, subject.Namespace+"/"+subject.Name)
		case rbacv1.UserKind:
			users = append(users, subject.Name)
		case rbacv1.GroupKind:
			groups = append(groups, subject.Name)
		}
	}
	return cells(name, roleRef.Kind+"/"+roleRef.Name, since(created, now),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "))
}
