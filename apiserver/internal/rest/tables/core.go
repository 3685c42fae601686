package tables

import (
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	loadBalancerWidth = 16
	// labelNodeRolePrefix marks a node role label, node-role.kubernetes.io/<role>="".
	labelNodeRolePrefix = "node-role.kubernetes.io/"
	// nodeLabelRole is the older kubernetes.io/role=<role> label.
	nodeLabelRole = "kubernetes.io/role"
	// nodeUnreachablePodReason is the pod status reason set for pods on lost nodes.
	nodeUnreachablePodReason = "NodeLost"
	// betaStorageClassAnnotation takes precedence over storageClassName.
	betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"
)

func init() {
	podSpecDoc := corev1.PodSpec{}.SwaggerDoc()
	podStatusDoc := corev1.PodStatus{}.SwaggerDoc()
	register("", "v1", "pods", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
		column("Status", "string", "The aggregate status of the containers in this pod."),
		column("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
		ageColumn(),
		wide("IP", "string", podStatusDoc["podIP"]),
		wide("Node", "string", podSpecDoc["nodeName"]),
		wide("Nominated Node", "string", podStatusDoc["nominatedNodeName"]),
		wide("Readiness Gates", "string", podSpecDoc["readinessGates"]),
	}, podRow))

	nodeStatusDoc := corev1.NodeStatus{}.SwaggerDoc()
	nodeInfoDoc := corev1.NodeSystemInfo{}.SwaggerDoc()
	register("", "v1", "nodes", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", "string", "The status of the node"),
		column("Roles", "string", "The roles of the node"),
		ageColumn(),
		column("Version", "string", nodeInfoDoc["kubeletVersion"]),
		wide("Internal-IP", "string", nodeStatusDoc["addresses"]),
		wide("External-IP", "string", nodeStatusDoc["addresses"]),
		wide("OS-Image", "string", nodeInfoDoc["osImage"]),
		wide("Kernel-Version", "string", nodeInfoDoc["kernelVersion"]),
		wide("Container-Runtime", "string", nodeInfoDoc["containerRuntimeVersion"]),
	}, nodeRow))

	register("", "v1", "namespaces", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", "string", "The status of the namespace"),
		ageColumn(),
	}, func(ns *corev1.Namespace, now time.Time) (metav1.TableRow, error) {
		return cells(ns.Name, string(ns.Status.Phase), since(ns.CreationTimestamp, now))
	}))

	serviceSpecDoc := corev1.ServiceSpec{}.SwaggerDoc()
	register("", "v1", "services", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Type", "string", serviceSpecDoc["type"]),
		column("Cluster-IP", "string", serviceSpecDoc["clusterIP"]),
		column("External-IP", "string", serviceSpecDoc["externalIPs"]),
		column("Port(s)", "string", serviceSpecDoc["ports"]),
		ageColumn(),
		wide("Selector", "string", serviceSpecDoc["selector"]),
	}, serviceRow))

	register("", "v1", "endpoints", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
		ageColumn(),
	}, func(ep *corev1.Endpoints, now time.Time) (metav1.TableRow, error) {
		return cells(ep.Name, formatEndpoints(ep), since(ep.CreationTimestamp, now))
	}))

	register("", "v1", "configmaps", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
		ageColumn(),
	}, func(cm *corev1.ConfigMap, now time.Time) (metav1.TableRow, error) {
		return cells(cm.Name, int64(len(cm.Data)+len(cm.BinaryData)), since(cm.CreationTimestamp, now))
	}))

	secretDoc := corev1.Secret{}.SwaggerDoc()
	register("", "v1", "secrets", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Type", "string", secretDoc["type"]),
		column("Data", "string", secretDoc["data"]),
		ageColumn(),
	}, func(s *corev1.Secret, now time.Time) (metav1.TableRow, error) {
		return cells(s.Name, string(s.Type), int64(len(s.Data)), since(s.CreationTimestamp, now))
	}))

	register("", "v1", "serviceaccounts", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
		ageColumn(),
	}, func(sa *corev1.ServiceAccount, now time.Time) (metav1.TableRow, error) {
		return cells(sa.Name, int64(len(sa.Secrets)), since(sa.CreationTimestamp, now))
	}))

	eventDoc := corev1.Event{}.SwaggerDoc()
	register("", "v1", "events", handler([]metav1.TableColumnDefinition{
		column("Last Seen", "string", eventDoc["lastTimestamp"]),
		column("Type", "string", eventDoc["type"]),
		column("Reason", "string", eventDoc["reason"]),
		column("Object", "string", eventDoc["involvedObject"]),
		wide("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]),
		wide("Source", "string", eventDoc["source"]),
		column("Message", "string", eventDoc["message"]),
		wide("First Seen", "string", eventDoc["firstTimestamp"]),
		wide("Count", "string", eventDoc["count"]),
		{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: objectMetaDoc["name"]},
	}, eventRow))

	rcSpecDoc := corev1.ReplicationControllerSpec{}.SwaggerDoc()
	rcStatusDoc := corev1.ReplicationControllerStatus{}.SwaggerDoc()
	register("", "v1", "replicationcontrollers", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Desired", "integer", rcSpecDoc["replicas"]),
		column("Current", "integer", rcStatusDoc["replicas"]),
		column("Ready", "integer", rcStatusDoc["readyReplicas"]),
		ageColumn(),
		wide("Containers", "string", containersDoc),
		wide("Images", "string", imagesDoc),
		wide("Selector", "string", rcSpecDoc["selector"]),
	}, func(rc *corev1.ReplicationController, now time.Time) (metav1.TableRow, error) {
		var containers []corev1.Container
		if rc.Spec.Template != nil {
			containers = rc.Spec.Template.Spec.Containers
		}
		names, images := layoutContainerCells(containers)
		return cells(rc.Name, int64(derefInt32(rc.Spec.Replicas)), int64(rc.Status.Replicas), int64(rc.Status.ReadyReplicas),
			since(rc.CreationTimestamp, now), names, images, labels.FormatLabels(rc.Spec.Selector))
	}))

	// kubectl 1.32 prints NAME AGE REQUEST LIMIT (later releases moved AGE last).
	register("", "v1", "resourcequotas", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		ageColumn(),
		column("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
		column("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
	}, resourceQuotaRow))

	// Upstream has no printer for limit ranges: the apiserver's default
	// table convertor serves NAME CREATED AT.
	register("", "v1", "limitranges", createdAtPrinter)

	pvSpecDoc := corev1.PersistentVolumeSpec{}.SwaggerDoc()
	pvStatusDoc := corev1.PersistentVolumeStatus{}.SwaggerDoc()
	register("", "v1", "persistentvolumes", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Capacity", "string", pvSpecDoc["capacity"]),
		column("Access Modes", "string", pvSpecDoc["accessModes"]),
		column("Reclaim Policy", "string", pvSpecDoc["persistentVolumeReclaimPolicy"]),
		column("Status", "string", pvStatusDoc["phase"]),
		column("Claim", "string", pvSpecDoc["claimRef"]),
		column("StorageClass", "string", "StorageClass of the pv"),
		column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
		column("Reason", "string", pvStatusDoc["reason"]),
		ageColumn(),
		wide("VolumeMode", "string", pvSpecDoc["volumeMode"]),
	}, persistentVolumeRow))

	pvcSpecDoc := corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()
	pvcStatusDoc := corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()
	register("", "v1", "persistentvolumeclaims", handler([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", "string", pvcStatusDoc["phase"]),
		column("Volume", "string", pvcSpecDoc["volumeName"]),
		column("Capacity", "string", pvcStatusDoc["capacity"]),
		column("Access Modes", "string", pvcStatusDoc["accessModes"]),
		column("StorageClass", "string", "StorageClass of the pvc"),
		column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
		ageColumn(),
		wide("VolumeMode", "string", pvcSpecDoc["volumeMode"]),
	}, persistentVolumeClaimRow))
}

// createdAtPrinter is upstream's default table convertor, for built-in
// resources without a printer: NAME and CREATED AT (RFC 3339, UTC).
var createdAtPrinter = printer{
	columns: []metav1.TableColumnDefinition{
		nameColumn(),
		{Name: "Created At", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
	},
	row: func(obj runtime.Object, _ time.Time) (metav1.TableRow, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return metav1.TableRow{}, fmt.Errorf("tables: %T has no object metadata: %w", obj, err)
		}
		return cells(m.GetName(), m.GetCreationTimestamp().Time.UTC().Format(time.RFC3339))
	},
}

var (
	podSuccessConditions = []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodSucceeded), Message: "The pod has completed successfully."}}
	podFailedConditions  = []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodFailed), Message: "The pod failed."}}
)

func isRestartableInitContainer(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func podRow(pod *corev1.Pod, now time.Time) (metav1.TableRow, error) {
	restarts := 0
	restartableInitContainerRestarts := 0
	totalContainers := len(pod.Spec.Containers)
	readyContainers := 0
	var lastRestartDate, lastRestartableInitContainerRestartDate time.Time

	podPhase := pod.Status.Phase
	reason := string(podPhase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	// A pod carrying {type: PodScheduled, reason: SchedulingGated} is SchedulingGated.
	for _, condition := range pod.Status.Conditions {
		if condition.Type == corev1.PodScheduled && condition.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	var row metav1.TableRow
	switch podPhase {
	case corev1.PodSucceeded:
		row.Conditions = podSuccessConditions
	case corev1.PodFailed:
		row.Conditions = podFailedConditions
	}

	initContainers := make(map[string]*corev1.Container, len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		initContainers[pod.Spec.InitContainers[i].Name] = &pod.Spec.InitContainers[i]
		if isRestartableInitContainer(&pod.Spec.InitContainers[i]) {
			totalContainers++
		}
	}

	initializing := false
	for i := range pod.Status.InitContainerStatuses {
		container := &pod.Status.InitContainerStatuses[i]
		restarts += int(container.RestartCount)
		if t := container.LastTerminationState.Terminated; t != nil && lastRestartDate.Before(t.FinishedAt.Time) {
			lastRestartDate = t.FinishedAt.Time
		}
		restartable := isRestartableInitContainer(initContainers[container.Name])
		if restartable {
			restartableInitContainerRestarts += int(container.RestartCount)
			if t := container.LastTerminationState.Terminated; t != nil && lastRestartableInitContainerRestartDate.Before(t.FinishedAt.Time) {
				lastRestartableInitContainerRestartDate = t.FinishedAt.Time
			}
		}
		switch {
		case container.State.Terminated != nil && container.State.Terminated.ExitCode == 0:
			continue
		case restartable && container.Started != nil && *container.Started:
			if container.Ready {
				readyContainers++
			}
			continue
		case container.State.Terminated != nil:
			// initialization failed
			if len(container.State.Terminated.Reason) == 0 {
				if container.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Init:Signal:%d", container.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("Init:ExitCode:%d", container.State.Terminated.ExitCode)
				}
			} else {
				reason = "Init:" + container.State.Terminated.Reason
			}
			initializing = true
		case container.State.Waiting != nil && len(container.State.Waiting.Reason) > 0 && container.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + container.State.Waiting.Reason
			initializing = true
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
			initializing = true
		}
		break
	}

	if !initializing || isPodInitializedConditionTrue(&pod.Status) {
		restarts = restartableInitContainerRestarts
		lastRestartDate = lastRestartableInitContainerRestartDate
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			container := &pod.Status.ContainerStatuses[i]
			restarts += int(container.RestartCount)
			if t := container.LastTerminationState.Terminated; t != nil && lastRestartDate.Before(t.FinishedAt.Time) {
				lastRestartDate = t.FinishedAt.Time
			}
			switch {
			case container.State.Waiting != nil && container.State.Waiting.Reason != "":
				reason = container.State.Waiting.Reason
			case container.State.Terminated != nil && container.State.Terminated.Reason != "":
				reason = container.State.Terminated.Reason
			case container.State.Terminated != nil && container.State.Terminated.Reason == "":
				if container.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Signal:%d", container.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("ExitCode:%d", container.State.Terminated.ExitCode)
				}
			case container.Ready && container.State.Running != nil:
				hasRunning = true
				readyContainers++
			}
		}
		// Back to "Running" if a container still reports running.
		if reason == "Completed" && hasRunning {
			if hasPodReadyCondition(pod.Status.Conditions) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	if pod.DeletionTimestamp != nil && pod.Status.Reason == nodeUnreachablePodReason {
		reason = "Unknown"
	} else if pod.DeletionTimestamp != nil && podPhase != corev1.PodFailed && podPhase != corev1.PodSucceeded {
		reason = "Terminating"
	}

	restartsStr := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestartDate.IsZero() {
		restartsStr = fmt.Sprintf("%d (%s ago)", restarts, since(metav1.NewTime(lastRestartDate), now))
	}

	podIP := ""
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	} else {
		podIP = pod.Status.PodIP
	}
	if podIP == "" {
		podIP = "<none>"
	}
	nodeName := pod.Spec.NodeName
	if nodeName == "" {
		nodeName = "<none>"
	}
	nominatedNodeName := pod.Status.NominatedNodeName
	if nominatedNodeName == "" {
		nominatedNodeName = "<none>"
	}
	readinessGates := "<none>"
	if len(pod.Spec.ReadinessGates) > 0 {
		trueConditions := 0
		for _, gate := range pod.Spec.ReadinessGates {
			for _, condition := range pod.Status.Conditions {
				if condition.Type == gate.ConditionType {
					if condition.Status == corev1.ConditionTrue {
						trueConditions++
					}
					break
				}
			}
		}
		readinessGates = fmt.Sprintf("%d/%d", trueConditions, len(pod.Spec.ReadinessGates))
	}

	row.Cells = []interface{}{
		pod.Name, fmt.Sprintf("%d/%d", readyContainers, totalContainers), reason, restartsStr, since(pod.CreationTimestamp, now),
		podIP, nodeName, nominatedNodeName, readinessGates,
	}
	return row, nil
}

func hasPodReadyCondition(conditions []corev1.PodCondition) bool {
	for _, condition := range conditions {
		if condition.Type == corev1.PodReady && condition.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func isPodInitializedConditionTrue(status *corev1.PodStatus) bool {
	for _, condition := range status.Conditions {
		if condition.Type == corev1.PodInitialized {
			return condition.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeRow(node *corev1.Node, now time.Time) (metav1.TableRow, error) {
	var status []string
	for i := range node.Status.Conditions {
		// Upstream looks the Ready condition up in a map: the last one wins.
		cond := &node.Status.Conditions[i]
		if cond.Type != corev1.NodeReady {
			continue
		}
		if cond.Status == corev1.ConditionTrue {
			status = []string{string(cond.Type)}
		} else {
			status = []string{"Not" + string(cond.Type)}
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	roles := strings.Join(findNodeRoles(node), ",")
	if len(roles) == 0 {
		roles = "<none>"
	}

	info := node.Status.NodeInfo
	osImage, kernelVersion, crVersion := info.OSImage, info.KernelVersion, info.ContainerRuntimeVersion
	if osImage == "" {
		osImage = "<unknown>"
	}
	if kernelVersion == "" {
		kernelVersion = "<unknown>"
	}
	if crVersion == "" {
		crVersion = "<unknown>"
	}
	return cells(node.Name, strings.Join(status, ","), roles, since(node.CreationTimestamp, now), info.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP), nodeAddress(node, corev1.NodeExternalIP), osImage, kernelVersion, crVersion)
}

// nodeAddress returns the node's first address of type t, or "<none>".
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, address := range node.Status.Addresses {
		if address.Type == t {
			return address.Address
		}
	}
	return "<none>"
}

// findNodeRoles returns the sorted roles of a node from its
// node-role.kubernetes.io/<role> and kubernetes.io/role=<role> labels.
func findNodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); len(role) > 0 {
				roles.Insert(role)
			}
		case k == nodeLabelRole && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

func serviceRow(svc *corev1.Service, now time.Time) (metav1.TableRow, error) {
	internalIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		internalIP = svc.Spec.ClusterIPs[0]
	} else if svc.Spec.ClusterIP != "" {
		internalIP = svc.Spec.ClusterIP
	}
	svcPorts := makePortString(svc.Spec.Ports)
	if len(svcPorts) == 0 {
		svcPorts = "<none>"
	}
	// The server always builds the wide table, so the load balancer
	// addresses are never clipped.
	return cells(svc.Name, string(svc.Spec.Type), internalIP, serviceExternalIP(svc, true), svcPorts,
		since(svc.CreationTimestamp, now), labels.FormatLabels(svc.Spec.Selector))
}

func serviceExternalIP(svc *corev1.Service, wide bool) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		lbIPs := loadBalancerStatusStringer(svc.Status.LoadBalancer, wide)
		if len(svc.Spec.ExternalIPs) > 0 {
			var results []string
			if len(lbIPs) > 0 {
				results = append(results, strings.Split(lbIPs, ",")...)
			}
			results = append(results, svc.Spec.ExternalIPs...)
			return strings.Join(results, ",")
		}
		if len(lbIPs) > 0 {
			return lbIPs
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

func loadBalancerStatusStringer(s corev1.LoadBalancerStatus, wide bool) string {
	result := sets.New[string]()
	for _, ingress := range s.Ingress {
		if ingress.IP != "" {
			result.Insert(ingress.IP)
		} else if ingress.Hostname != "" {
			result.Insert(ingress.Hostname)
		}
	}
	r := strings.Join(sets.List(result), ",")
	if !wide && len(r) > loadBalancerWidth {
		r = r[0:(loadBalancerWidth-3)] + "..."
	}
	return r
}

func makePortString(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i := range ports {
		port := &ports[i]
		if port.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", port.Port, port.NodePort, port.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", port.Port, port.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

// formatEndpoints lists up to three ip:port pairs, then "+ N more...".
func formatEndpoints(endpoints *corev1.Endpoints) string {
	if len(endpoints.Subsets) == 0 {
		return "<none>"
	}
	var list []string
	const max = 3
	more := false
	count := 0
	for i := range endpoints.Subsets {
		ss := &endpoints.Subsets[i]
		if len(ss.Ports) == 0 {
			// Headless services may have no ports.
			count += len(ss.Addresses)
			for j := range ss.Addresses {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, ss.Addresses[j].IP)
			}
			continue
		}
		for p := range ss.Ports {
			port := &ss.Ports[p]
			count += len(ss.Addresses)
			for j := range ss.Addresses {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, net.JoinHostPort(ss.Addresses[j].IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	return ret
}

func eventRow(ev *corev1.Event, now time.Time) (metav1.TableRow, error) {
	firstTimestamp := since(ev.FirstTimestamp, now)
	if ev.FirstTimestamp.IsZero() {
		firstTimestamp = sinceMicro(ev.EventTime, now)
	}
	lastTimestamp := since(ev.LastTimestamp, now)
	if ev.LastTimestamp.IsZero() {
		lastTimestamp = firstTimestamp
	}
	count := ev.Count
	if ev.Series != nil {
		lastTimestamp = sinceMicro(ev.Series.LastObservedTime, now)
		count = ev.Series.Count
	} else if count == 0 {
		// Singleton events of the new API carry no count.
		count = 1
	}
	target := strings.ToLower(ev.InvolvedObject.Kind)
	if len(ev.InvolvedObject.Name) > 0 {
		target += "/" + ev.InvolvedObject.Name
	}
	return cells(lastTimestamp, ev.Type, ev.Reason, target, ev.InvolvedObject.FieldPath,
		formatEventSource(ev.Source, ev.ReportingController, ev.ReportingInstance),
		strings.TrimSpace(ev.Message), firstTimestamp, int64(count), ev.Name)
}

// formatEventSource is "component, host", falling back to the reporting
// controller and instance of the new events API.
func formatEventSource(es corev1.EventSource, reportingController, reportingInstance string) string {
	component := firstNonEmpty(es.Component, reportingController)
	instance := firstNonEmpty(es.Host, reportingInstance)
	if len(instance) == 0 {
		return component
	}
	return component + ", " + instance
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if len(s) > 0 {
			return s
		}
	}
	return ""
}

func resourceQuotaRow(rq *corev1.ResourceQuota, now time.Time) (metav1.TableRow, error) {
	resources := make([]string, 0, len(rq.Status.Hard))
	for resource := range rq.Status.Hard {
		resources = append(resources, string(resource))
	}
	sort.Strings(resources)

	var requestColumn, limitColumn bytes.Buffer
	for _, resource := range resources {
		w := &requestColumn
		if pieces := strings.Split(resource, "."); len(pieces) > 1 && pieces[0] == "limits" {
			w = &limitColumn
		}
		used := rq.Status.Used[corev1.ResourceName(resource)]
		hard := rq.Status.Hard[corev1.ResourceName(resource)]
		fmt.Fprintf(w, "%s: %s/%s, ", resource, used.String(), hard.String())
	}
	return cells(rq.Name, since(rq.CreationTimestamp, now),
		strings.TrimSuffix(requestColumn.String(), ", "), strings.TrimSuffix(limitColumn.String(), ", "))
}

// accessModesString is upstream's GetAccessModesAsString: RWO, ROX, RWX,
// RWOP in that order, each at most once.
func accessModesString(modes []corev1.PersistentVolumeAccessMode) string {
	has := func(m corev1.PersistentVolumeAccessMode) bool {
		for _, mode := range modes {
			if mode == m {
				return true
			}
		}
		return false
	}
	var out []string
	if has(corev1.ReadWriteOnce) {
		out = append(out, "RWO")
	}
	if has(corev1.ReadOnlyMany) {
		out = append(out, "ROX")
	}
	if has(corev1.ReadWriteMany) {
		out = append(out, "RWX")
	}
	if has(corev1.ReadWriteOncePod) {
		out = append(out, "RWOP")
	}
	return strings.Join(out, ",")
}

func persistentVolumeRow(pv *corev1.PersistentVolume, now time.Time) (metav1.TableRow, error) {
	claim := ""
	if pv.Spec.ClaimRef != nil {
		claim = pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
	}
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	class, ok := pv.Annotations[betaStorageClassAnnotation]
	if !ok {
		class = pv.Spec.StorageClassName
	}
	volumeAttributesClass := "<unset>"
	if pv.Spec.VolumeAttributesClassName != nil {
		volumeAttributesClass = *pv.Spec.VolumeAttributesClassName
	}
	volumeMode := "<unset>"
	if pv.Spec.VolumeMode != nil {
		volumeMode = string(*pv.Spec.VolumeMode)
	}
	return cells(pv.Name, capacity.String(), accessModesString(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy),
		phase, claim, class, volumeAttributesClass, pv.Status.Reason, since(pv.CreationTimestamp, now), volumeMode)
}

func persistentVolumeClaimRow(pvc *corev1.PersistentVolumeClaim, now time.Time) (metav1.TableRow, error) {
	phase := string(pvc.Status.Phase)
	if pvc.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, accessModes := "", ""
	if pvc.Spec.VolumeName != "" {
		accessModes = accessModesString(pvc.Status.AccessModes)
		storage := pvc.Status.Capacity[corev1.ResourceStorage]
		capacity = storage.String()
	}
	class, ok := pvc.Annotations[betaStorageClassAnnotation]
	if !ok {
		class = ""
		if pvc.Spec.StorageClassName != nil {
			class = *pvc.Spec.StorageClassName
		}
	}
	volumeAttributesClass := "<unset>"
	if pvc.Spec.VolumeAttributesClassName != nil {
		volumeAttributesClass = *pvc.Spec.VolumeAttributesClassName
	}
	volumeMode := "<unset>"
	if pvc.Spec.VolumeMode != nil {
		volumeMode = string(*pvc.Spec.VolumeMode)
	}
	return cells(pvc.Name, phase, pvc.Spec.VolumeName, capacity, accessModes, class, volumeAttributesClass,
		since(pvc.CreationTimestamp, now), volumeMode)
}

// layoutContainerCells joins the containers' names and images with commas.
func layoutContainerCells(containers []corev1.Container) (names string, images string) {
	var namesBuffer, imagesBuffer bytes.Buffer
	for i, container := range containers {
		if i > 0 {
			namesBuffer.WriteByte(',')
			imagesBuffer.WriteByte(',')
		}
		namesBuffer.WriteString(container.Name)
		imagesBuffer.WriteString(container.Image)
	}
	return namesBuffer.String(), imagesBuffer.String()
}
