package tables

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func init() {
	rsSpecDoc := appsv1.ReplicaSetSpec{}.SwaggerDoc()
	rsStatusDoc := appsv1.ReplicaSetStatus{}.SwaggerDoc()
	register("apps", "v1", "replicasets", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Desired", "integer", rsSpecDoc["replicas"]),
		column("Current", "integer", rsStatusDoc["replicas"]),
		column("Ready", "integer", rsStatusDoc["readyReplicas"]),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
		wide("Selector", "string", rsSpecDoc["selector"]),
	}, func(rs *appsv1.ReplicaSet, now time.Time) (metav1.TableRow, error) {
		names, images := layoutContainerCells(rs.Spec.Template.Spec.Containers)
		return cells(rs.Name, int64(derefInt32(rs.Spec.Replicas)), int64(rs.Status.Replicas), int64(rs.Status.ReadyReplicas),
			since(rs.CreationTimestamp, now), names, images, metav1.FormatLabelSelector(rs.Spec.Selector))
	}))

	deployStatusDoc := appsv1.DeploymentStatus{}.SwaggerDoc()
	register("apps", "v1", "deployments", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Ready", "string", "Number of the pod with ready state"),
		column("Up-to-date", "string", deployStatusDoc["updatedReplicas"]),
		column("Available", "string", deployStatusDoc["availableReplicas"]),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
		wide("Selector", "string", appsv1.DeploymentSpec{}.SwaggerDoc()["selector"]),
	}, func(d *appsv1.Deployment, now time.Time) (metav1.TableRow, error) {
		selectorString := "<invalid>"
		if selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
			selectorString = selector.String()
		}
		names, images := layoutContainerCells(d.Spec.Template.Spec.Containers)
		return cells(d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, derefInt32(d.Spec.Replicas)),
			int64(d.Status.UpdatedReplicas), int64(d.Status.AvailableReplicas), since(d.CreationTimestamp, now),
			names, images, selectorString)
	}))

	dsStatusDoc := appsv1.DaemonSetStatus{}.SwaggerDoc()
	register("apps", "v1", "daemonsets", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Desired", "integer", dsStatusDoc["desiredNumberScheduled"]),
		column("Current", "integer", dsStatusDoc["currentNumberScheduled"]),
		column("Ready", "integer", dsStatusDoc["numberReady"]),
		column("Up-to-date", "integer", dsStatusDoc["updatedNumberScheduled"]),
		column("Available", "integer", dsStatusDoc["numberAvailable"]),
		column("Node Selector", "string", corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
		wide("Selector", "string", appsv1.DaemonSetSpec{}.SwaggerDoc()["selector"]),
	}, func(ds *appsv1.DaemonSet, now time.Time) (metav1.TableRow, error) {
		names, images := layoutContainerCells(ds.Spec.Template.Spec.Containers)
		return cells(ds.Name, int64(ds.Status.DesiredNumberScheduled), int64(ds.Status.CurrentNumberScheduled),
			int64(ds.Status.NumberReady), int64(ds.Status.UpdatedNumberScheduled), int64(ds.Status.NumberAvailable),
			labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector), since(ds.CreationTimestamp, now),
			names, images, metav1.FormatLabelSelector(ds.Spec.Selector))
	}))

	register("apps", "v1", "statefulsets", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Ready", "string", "Number of the pod with ready state"),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
	}, func(ss *appsv1.StatefulSet, now time.Time) (metav1.TableRow, error) {
		names, images := layoutContainerCells(ss.Spec.Template.Spec.Containers)
		return cells(ss.Name, fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, derefInt32(ss.Spec.Replicas)),
			since(ss.CreationTimestamp, now), names, images)
	}))

	register("apps", "v1", "controllerrevisions", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Controller", "string", "Controller of the object"),
		column("Revision", "string", appsv1.ControllerRevision{}.SwaggerDoc()["revision"]),
		ageColumn(),
	}, func(cr *appsv1.ControllerRevision, now time.Time) (metav1.TableRow, error) {
		controllerName := "<none>"
		if ref := metav1.GetControllerOf(cr); ref != nil {
			gv, err := schema.ParseGroupVersion(ref.APIVersion)
			if err != nil {
				return metav1.TableRow{}, err
			}
			controllerName = formatResourceName(gv.WithKind(ref.Kind).GroupKind(), ref.Name)
		}
		return cells(cr.Name, controllerName, cr.Revision, since(cr.CreationTimestamp, now))
	}))
}

// formatResourceName is "kind.group/name" in lower case, e.g. "statefulset.apps/web".
func formatResourceName(kind schema.GroupKind, name string) string {
	if kind.Empty() {
		return name
	}
	return strings.ToLower(kind.String()) + "/" + name
}
