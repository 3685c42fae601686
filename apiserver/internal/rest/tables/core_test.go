package tables

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func running(startedAgo time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(startedAgo)}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, exitCode, signal int32, finishedAgo time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exitCode, Signal: signal, FinishedAt: ago(finishedAgo)}}
}

func containers(names ...string) []corev1.Container {
	var out []corev1.Container
	for _, n := range names {
		out = append(out, corev1.Container{Name: n, Image: n + ":1"})
	}
	return out
}

var podColumns = []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP (wide)", "NODE (wide)", "NOMINATED NODE (wide)", "READINESS GATES (wide)"}

func TestPods(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	checkTable(t, gvr("", "v1", "pods"), podColumns, []rowCase{
		{
			name: "one of two ready with restarts",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("web-1", 51*time.Hour),
				Spec:       corev1.PodSpec{NodeName: "node-1", Containers: containers("app", "sidecar")},
				Status: corev1.PodStatus{
					Phase:  corev1.PodRunning,
					PodIP:  "10.244.1.5",
					PodIPs: []corev1.PodIP{{IP: "10.244.1.5"}, {IP: "fd00::5"}},
					ContainerStatuses: []corev1.ContainerStatus{
						{Name: "app", Ready: true, State: running(time.Hour)},
						{Name: "sidecar", Ready: false, RestartCount: 3, State: running(time.Minute),
							LastTerminationState: terminated("Error", 1, 0, 5*time.Minute)},
					},
				},
			},
			cells: []interface{}{"web-1", "1/2", "Running", "3 (5m ago)", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"},
		},
		{
			name: "pending, not scheduled, podIP only",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 30*time.Second),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status:     corev1.PodStatus{Phase: corev1.PodPending, PodIP: "10.0.0.9", NominatedNodeName: "node-2"},
			},
			cells: []interface{}{"p", "0/1", "Pending", "0", "30s", "10.0.0.9", "<none>", "node-2", "<none>"},
		},
		{
			name: "container creating",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Minute),
				Spec:       corev1.PodSpec{NodeName: "n", Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: waiting("ContainerCreating")},
				}},
			},
			cells: []interface{}{"p", "0/1", "ContainerCreating", "0", "60s", "<none>", "n", "<none>", "<none>"},
		},
		{
			name: "crash loop",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 3*time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", RestartCount: 12, State: waiting("CrashLoopBackOff"),
						LastTerminationState: terminated("Error", 2, 0, 90*time.Second)},
				}},
			},
			cells: []interface{}{"p", "0/1", "CrashLoopBackOff", "12 (90s ago)", "3h", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "restarts without a termination time",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 3*time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, RestartCount: 2, State: running(time.Hour)},
				}},
			},
			cells: []interface{}{"p", "1/1", "Running", "2", "3h", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "init container running",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Minute),
				Spec:       corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: running(10 * time.Second)}},
					ContainerStatuses:     []corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}},
				},
			},
			cells: []interface{}{"p", "0/1", "Init:0/1", "0", "60s", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "second of two init containers",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Minute),
				Spec:       corev1.PodSpec{InitContainers: containers("a", "b"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "a", State: terminated("Completed", 0, 0, 20*time.Second)},
						{Name: "b", State: waiting("PodInitializing")},
					},
				},
			},
			cells: []interface{}{"p", "0/1", "Init:1/2", "0", "60s", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "init container crash loop",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 10*time.Minute),
				Spec:       corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", RestartCount: 4, State: waiting("CrashLoopBackOff"),
						LastTerminationState: terminated("Error", 1, 0, 2*time.Minute)}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}},
				},
			},
			cells: []interface{}{"p", "0/1", "Init:CrashLoopBackOff", "4 (2m ago)", "10m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "init container failed",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 10*time.Minute),
				Spec:       corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: terminated("Error", 1, 0, time.Minute)}},
				},
			},
			cells: []interface{}{"p", "0/1", "Init:Error", "0", "10m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "init container exit code and signal",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 10*time.Minute),
				Spec:       corev1.PodSpec{InitContainers: containers("init"), Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: terminated("", 3, 0, time.Minute)}},
				},
			},
			cells: []interface{}{"p", "0/1", "Init:ExitCode:3", "0", "10m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "sidecar init container counts as a container",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 10*time.Minute),
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: &always}},
					Containers:     containers("app"),
				},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions: []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "proxy", Ready: true, Started: ptr(true), RestartCount: 1,
						State: running(5 * time.Minute), LastTerminationState: terminated("Error", 1, 0, 6*time.Minute)}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: running(9 * time.Minute)}},
				},
			},
			cells: []interface{}{"p", "2/2", "Running", "1 (6m ago)", "10m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "terminated with signal",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: terminated("", 137, 9, time.Minute)},
				}},
			},
			cells: []interface{}{"p", "0/1", "Signal:9", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "oom killed",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: terminated("OOMKilled", 137, 0, time.Minute)},
				}},
			},
			cells: []interface{}{"p", "0/1", "OOMKilled", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "completed",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 2*time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: terminated("Completed", 0, 0, time.Hour)},
				}},
			},
			cells: []interface{}{"p", "0/1", "Completed", "0", "120m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "completed container beside a running one",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", 2*time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app", "job")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
					ContainerStatuses: []corev1.ContainerStatus{
						{Name: "app", Ready: true, State: running(time.Hour)},
						{Name: "job", State: terminated("Completed", 0, 0, time.Hour)},
					}},
			},
			cells: []interface{}{"p", "1/2", "NotReady", "0", "120m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "terminating",
			obj: &corev1.Pod{
				ObjectMeta: func() metav1.ObjectMeta {
					m := objMeta("p", time.Hour)
					m.DeletionTimestamp = agoPtr(-30 * time.Second)
					return m
				}(),
				Spec: corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running(time.Hour)},
				}},
			},
			cells: []interface{}{"p", "1/1", "Terminating", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "deleted on a lost node",
			obj: &corev1.Pod{
				ObjectMeta: func() metav1.ObjectMeta {
					m := objMeta("p", time.Hour)
					m.DeletionTimestamp = agoPtr(0)
					return m
				}(),
				Spec:   corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
			},
			cells: []interface{}{"p", "0/1", "Unknown", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "evicted",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status:     corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
			},
			cells: []interface{}{"p", "0/1", "Evicted", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "scheduling gated",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Hour),
				Spec:       corev1.PodSpec{Containers: containers("app")},
				Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"},
				}},
			},
			cells: []interface{}{"p", "0/1", "SchedulingGated", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "readiness gates",
			obj: &corev1.Pod{
				ObjectMeta: objMeta("p", time.Hour),
				Spec: corev1.PodSpec{Containers: containers("app"), ReadinessGates: []corev1.PodReadinessGate{
					{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"},
				}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
					{Type: "example.com/lb", Status: corev1.ConditionTrue},
					{Type: "example.com/dns", Status: corev1.ConditionFalse},
				}},
			},
			cells: []interface{}{"p", "0/1", "Running", "0", "60m", "<none>", "<none>", "<none>", "1/2"},
		},
	})
}

func TestPodRowConditions(t *testing.T) {
	for phase, want := range map[corev1.PodPhase][]metav1.TableRowCondition{
		corev1.PodSucceeded: {{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "The pod has completed successfully."}},
		corev1.PodFailed:    {{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Failed", Message: "The pod failed."}},
		corev1.PodRunning:   nil,
	} {
		pod := &corev1.Pod{ObjectMeta: objMeta("p", time.Hour), Status: corev1.PodStatus{Phase: phase}}
		table, err := Convert(gvr("", "v1", "pods"), []runtime.Object{pod}, Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, table.Rows[0].Conditions); diff != "" {
			t.Errorf("%s: conditions (-want +got):\n%s", phase, diff)
		}
	}
}

func TestNodes(t *testing.T) {
	ready := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
	}
	info := corev1.NodeSystemInfo{KubeletVersion: "v1.32.0", OSImage: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0-18-amd64", ContainerRuntimeVersion: "containerd://1.7.12"}
	checkTable(t, gvr("", "v1", "nodes"),
		[]string{"NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP (wide)", "EXTERNAL-IP (wide)", "OS-IMAGE (wide)", "KERNEL-VERSION (wide)", "CONTAINER-RUNTIME (wide)"},
		[]rowCase{
			{
				name: "ready control plane",
				obj: &corev1.Node{
					ObjectMeta: metav1.ObjectMeta{Name: "master", CreationTimestamp: ago(8 * 24 * time.Hour), Labels: map[string]string{
						"node-role.kubernetes.io/control-plane": "",
						"node-role.kubernetes.io/worker":        "",
						"kubernetes.io/hostname":                "master",
					}},
					Status: corev1.NodeStatus{Conditions: ready, NodeInfo: info, Addresses: []corev1.NodeAddress{
						{Type: corev1.NodeHostName, Address: "master"},
						{Type: corev1.NodeInternalIP, Address: "192.168.1.10"},
						{Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
					}},
				},
				cells: []interface{}{"master", "Ready", "control-plane,worker", "8d", "v1.32.0", "192.168.1.10", "203.0.113.7", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", "containerd://1.7.12"},
			},
			{
				name: "not ready, cordoned, old role label",
				obj: &corev1.Node{
					ObjectMeta: metav1.ObjectMeta{Name: "n2", CreationTimestamp: ago(3 * time.Hour), Labels: map[string]string{"kubernetes.io/role": "edge"}},
					Spec:       corev1.NodeSpec{Unschedulable: true},
					Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}},
						NodeInfo: info, Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.11"}}},
				},
				cells: []interface{}{"n2", "NotReady,SchedulingDisabled", "edge", "3h", "v1.32.0", "192.168.1.11", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-18-amd64", "containerd://1.7.12"},
			},
			{
				name:  "new node without status",
				obj:   &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n3", CreationTimestamp: ago(5 * time.Second)}},
				cells: []interface{}{"n3", "Unknown", "<none>", "5s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
			},
		})
}

func TestNamespaces(t *testing.T) {
	checkTable(t, gvr("", "v1", "namespaces"), []string{"NAME", "STATUS", "AGE"}, []rowCase{
		{
			name:  "active",
			obj:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", CreationTimestamp: ago(26 * time.Hour)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			cells: []interface{}{"kube-system", "Active", "26h"},
		},
		{
			name:  "terminating",
			obj:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "old", CreationTimestamp: ago(time.Hour)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
			cells: []interface{}{"old", "Terminating", "60m"},
		},
	})
}

func TestServices(t *testing.T) {
	tcp := corev1.ProtocolTCP
	checkTable(t, gvr("", "v1", "services"),
		[]string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR (wide)"},
		[]rowCase{
			{
				name: "node port",
				obj: &corev1.Service{ObjectMeta: objMeta("web", 5*time.Minute), Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.12.34", ClusterIPs: []string{"10.96.12.34"},
					Ports: []corev1.ServicePort{
						{Name: "http", Port: 80, NodePort: 30001, Protocol: tcp},
						{Name: "https", Port: 443, Protocol: tcp},
					},
					Selector: map[string]string{"app": "web", "tier": "front"},
				}},
				cells: []interface{}{"web", "NodePort", "10.96.12.34", "<none>", "80:30001/TCP,443/TCP", "5m", "app=web,tier=front"},
			},
			{
				name: "cluster IP with external IPs",
				obj: &corev1.Service{ObjectMeta: objMeta("kubernetes", 10*24*time.Hour), Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ExternalIPs: []string{"1.2.3.4", "5.6.7.8"},
					Ports: []corev1.ServicePort{{Port: 443, Protocol: tcp}, {Port: 53, Protocol: corev1.ProtocolUDP}},
				}},
				cells: []interface{}{"kubernetes", "ClusterIP", "10.96.0.1", "1.2.3.4,5.6.7.8", "443/TCP,53/UDP", "10d", "<none>"},
			},
			{
				name: "headless without ports",
				obj: &corev1.Service{ObjectMeta: objMeta("db", time.Hour), Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeClusterIP, ClusterIP: "None", ClusterIPs: []string{"None"}, Selector: map[string]string{"app": "db"},
				}},
				cells: []interface{}{"db", "ClusterIP", "None", "<none>", "<none>", "60m", "app=db"},
			},
			{
				name: "load balancer pending",
				obj: &corev1.Service{ObjectMeta: objMeta("lb", time.Hour), Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.50"},
					Ports: []corev1.ServicePort{{Port: 80, NodePort: 31000, Protocol: tcp}},
				}},
				cells: []interface{}{"lb", "LoadBalancer", "10.96.0.50", "<pending>", "80:31000/TCP", "60m", "<none>"},
			},
			{
				name: "load balancer with ingress, not clipped",
				obj: &corev1.Service{ObjectMeta: objMeta("lb", time.Hour),
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.50"}, ExternalIPs: []string{"9.9.9.9"}},
					Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
						{IP: "203.0.113.20"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.20"},
					}}},
				},
				cells: []interface{}{"lb", "LoadBalancer", "10.96.0.50", "203.0.113.20,lb.example.com,9.9.9.9", "<none>", "60m", "<none>"},
			},
			{
				name: "external name",
				obj: &corev1.Service{ObjectMeta: objMeta("ext", time.Hour), Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com",
				}},
				cells: []interface{}{"ext", "ExternalName", "<none>", "db.example.com", "<none>", "60m", "<none>"},
			},
		})
}

func TestEndpoints(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var out []corev1.EndpointAddress
		for _, ip := range ips {
			out = append(out, corev1.EndpointAddress{IP: ip})
		}
		return out
	}
	checkTable(t, gvr("", "v1", "endpoints"), []string{"NAME", "ENDPOINTS", "AGE"}, []rowCase{
		{
			name:  "no subsets",
			obj:   &corev1.Endpoints{ObjectMeta: objMeta("empty", time.Hour)},
			cells: []interface{}{"empty", "<none>", "60m"},
		},
		{
			name: "two addresses",
			obj: &corev1.Endpoints{ObjectMeta: objMeta("web", time.Hour), Subsets: []corev1.EndpointSubset{
				{Addresses: addrs("10.244.1.5", "10.244.2.7"), Ports: []corev1.EndpointPort{{Port: 8080}}},
			}},
			cells: []interface{}{"web", "10.244.1.5:8080,10.244.2.7:8080", "60m"},
		},
		{
			name: "more than three",
			obj: &corev1.Endpoints{ObjectMeta: objMeta("web", time.Hour), Subsets: []corev1.EndpointSubset{
				{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}},
			}},
			cells: []interface{}{"web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "60m"},
		},
		{
			name: "headless without ports, IPv6",
			obj: &corev1.Endpoints{ObjectMeta: objMeta("db", time.Hour), Subsets: []corev1.EndpointSubset{
				{Addresses: addrs("10.0.0.1", "fd00::1")},
			}},
			cells: []interface{}{"db", "10.0.0.1,fd00::1", "60m"},
		},
		{
			name: "IPv6 with port",
			obj: &corev1.Endpoints{ObjectMeta: objMeta("v6", time.Hour), Subsets: []corev1.EndpointSubset{
				{Addresses: addrs("fd00::1"), Ports: []corev1.EndpointPort{{Port: 80}}},
			}},
			cells: []interface{}{"v6", "[fd00::1]:80", "60m"},
		},
	})
}

func TestConfigMapsSecretsServiceAccounts(t *testing.T) {
	checkTable(t, gvr("", "v1", "configmaps"), []string{"NAME", "DATA", "AGE"}, []rowCase{{
		name:  "data and binary data",
		obj:   &corev1.ConfigMap{ObjectMeta: objMeta("cfg", time.Hour), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": {1}}},
		cells: []interface{}{"cfg", int64(3), "60m"},
	}, {
		name:  "empty",
		obj:   &corev1.ConfigMap{ObjectMeta: objMeta("empty", time.Hour)},
		cells: []interface{}{"empty", int64(0), "60m"},
	}})
	checkTable(t, gvr("", "v1", "secrets"), []string{"NAME", "TYPE", "DATA", "AGE"}, []rowCase{{
		name:  "opaque",
		obj:   &corev1.Secret{ObjectMeta: objMeta("s", 2*time.Minute), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}},
		cells: []interface{}{"s", "Opaque", int64(1), "2m"},
	}, {
		name:  "tls",
		obj:   &corev1.Secret{ObjectMeta: objMeta("tls", 2*time.Minute), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
		cells: []interface{}{"tls", "kubernetes.io/tls", int64(2), "2m"},
	}})
	checkTable(t, gvr("", "v1", "serviceaccounts"), []string{"NAME", "SECRETS", "AGE"}, []rowCase{{
		name:  "default",
		obj:   &corev1.ServiceAccount{ObjectMeta: objMeta("default", 24*time.Hour)},
		cells: []interface{}{"default", int64(0), "24h"},
	}, {
		name:  "with secret",
		obj:   &corev1.ServiceAccount{ObjectMeta: objMeta("bot", 24*time.Hour), Secrets: []corev1.ObjectReference{{Name: "bot-token"}}},
		cells: []interface{}{"bot", int64(1), "24h"},
	}})
}

func TestEvents(t *testing.T) {
	checkTable(t, gvr("", "v1", "events"),
		[]string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT (wide)", "SOURCE (wide)", "MESSAGE", "FIRST SEEN (wide)", "COUNT (wide)", "NAME (wide)"},
		[]rowCase{
			{
				name: "core event",
				obj: &corev1.Event{
					ObjectMeta:     objMeta("web-1.17a", time.Hour),
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", FieldPath: "spec.containers{app}"},
					Reason:         "Pulled", Message: "  Successfully pulled image \"nginx\"\n", Type: corev1.EventTypeNormal,
					Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
					FirstTimestamp: ago(10 * time.Minute), LastTimestamp: ago(2 * time.Minute), Count: 4,
				},
				cells: []interface{}{"2m", "Normal", "Pulled", "pod/web-1", "spec.containers{app}", "kubelet, node-1", "Successfully pulled image \"nginx\"", "10m", int64(4), "web-1.17a"},
			},
			{
				name: "new API singleton",
				obj: &corev1.Event{
					ObjectMeta:     objMeta("web-1.17b", time.Hour),
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1"},
					Reason:         "Scheduled", Message: "Successfully assigned default/web-1 to node-1", Type: corev1.EventTypeNormal,
					EventTime:           metav1.NewMicroTime(now.Add(-30 * time.Second)),
					ReportingController: "default-scheduler",
				},
				cells: []interface{}{"30s", "Normal", "Scheduled", "pod/web-1", "", "default-scheduler", "Successfully assigned default/web-1 to node-1", "30s", int64(1), "web-1.17b"},
			},
			{
				name: "series",
				obj: &corev1.Event{
					ObjectMeta:     objMeta("n.1", time.Hour),
					InvolvedObject: corev1.ObjectReference{Kind: "Node"},
					Reason:         "Rebooted", Type: corev1.EventTypeWarning,
					EventTime:           metav1.NewMicroTime(now.Add(-time.Hour)),
					Series:              &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(now.Add(-3 * time.Minute))},
					ReportingController: "kubelet", ReportingInstance: "node-2",
				},
				cells: []interface{}{"3m", "Warning", "Rebooted", "node", "", "kubelet, node-2", "", "60m", int64(7), "n.1"},
			},
			{
				name:  "no timestamps",
				obj:   &corev1.Event{ObjectMeta: objMeta("e", time.Hour), InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: "web"}, Count: 2},
				cells: []interface{}{"<unknown>", "", "", "deployment/web", "", "", "", "<unknown>", int64(2), "e"},
			},
		})
}

func TestReplicationControllers(t *testing.T) {
	checkTable(t, gvr("", "v1", "replicationcontrollers"),
		[]string{"NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS (wide)", "IMAGES (wide)", "SELECTOR (wide)"},
		[]rowCase{
			{
				name: "scaled",
				obj: &corev1.ReplicationController{
					ObjectMeta: objMeta("frontend", 15*time.Minute),
					Spec: corev1.ReplicationControllerSpec{Replicas: ptr(int32(3)), Selector: map[string]string{"app": "frontend"},
						Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
							{Name: "php", Image: "gb-frontend:v4"}, {Name: "log", Image: "busybox"},
						}}}},
					Status: corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 2},
				},
				cells: []interface{}{"frontend", int64(3), int64(3), int64(2), "15m", "php,log", "gb-frontend:v4,busybox", "app=frontend"},
			},
			{
				name:  "no template",
				obj:   &corev1.ReplicationController{ObjectMeta: objMeta("bare", 15*time.Minute)},
				cells: []interface{}{"bare", int64(0), int64(0), int64(0), "15m", "", "", "<none>"},
			},
		})
}

func TestResourceQuotas(t *testing.T) {
	q := resource.MustParse
	checkTable(t, gvr("", "v1", "resourcequotas"), []string{"NAME", "AGE", "REQUEST", "LIMIT"}, []rowCase{
		{
			name: "requests and limits",
			obj: &corev1.ResourceQuota{ObjectMeta: objMeta("compute", time.Hour), Status: corev1.ResourceQuotaStatus{
				Hard: corev1.ResourceList{"pods": q("10"), "requests.cpu": q("1"), "requests.memory": q("1Gi"), "limits.cpu": q("2"), "limits.memory": q("2Gi")},
				Used: corev1.ResourceList{"pods": q("3"), "requests.cpu": q("500m"), "requests.memory": q("256Mi"), "limits.cpu": q("1")},
			}},
			cells: []interface{}{"compute", "60m", "pods: 3/10, requests.cpu: 500m/1, requests.memory: 256Mi/1Gi", "limits.cpu: 1/2, limits.memory: 0/2Gi"},
		},
		{
			name:  "no status",
			obj:   &corev1.ResourceQuota{ObjectMeta: objMeta("new", time.Second)},
			cells: []interface{}{"new", "1s", "", ""},
		},
	})
}

func TestCreatedAtTables(t *testing.T) {
	created := metav1.NewTime(time.Date(2025, 3, 1, 8, 30, 0, 0, time.FixedZone("CET", 3600)))
	for _, resource := range []string{"limitranges"} {
		checkTable(t, gvr("", "v1", resource), []string{"NAME", "CREATED AT"}, []rowCase{{
			name:  resource,
			obj:   &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", CreationTimestamp: created}},
			cells: []interface{}{"limits", "2025-03-01T07:30:00Z"},
		}})
	}
	table, err := Convert(gvr("", "v1", "limitranges"), []runtime.Object{&corev1.LimitRange{}}, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := table.ColumnDefinitions[1].Type, "date"; got != want {
		t.Errorf("CREATED AT type = %q, want %q", got, want)
	}
}

func TestPersistentVolumes(t *testing.T) {
	fs := corev1.PersistentVolumeFilesystem
	checkTable(t, gvr("", "v1", "persistentvolumes"),
		[]string{"NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE", "VOLUMEMODE (wide)"},
		[]rowCase{
			{
				name: "bound",
				obj: &corev1.PersistentVolume{
					ObjectMeta: metav1.ObjectMeta{Name: "pv1", CreationTimestamp: ago(4 * time.Hour)},
					Spec: corev1.PersistentVolumeSpec{
						Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
						AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
						PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
						ClaimRef:                      &corev1.ObjectReference{Namespace: "default", Name: "data"},
						StorageClassName:              "standard",
						VolumeMode:                    &fs,
					},
					Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
				},
				cells: []interface{}{"pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data", "standard", "<unset>", "", "4h", "Filesystem"},
			},
			{
				name: "released, beta class annotation, terminating",
				obj: &corev1.PersistentVolume{
					ObjectMeta: metav1.ObjectMeta{Name: "pv2", CreationTimestamp: ago(4 * time.Hour), DeletionTimestamp: agoPtr(0),
						Annotations: map[string]string{"volume.beta.kubernetes.io/storage-class": "slow"}},
					Spec:   corev1.PersistentVolumeSpec{StorageClassName: "fast", VolumeAttributesClassName: ptr("gold")},
					Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased, Reason: "Recycled"},
				},
				cells: []interface{}{"pv2", "0", "", "", "Terminating", "", "slow", "gold", "Recycled", "4h", "<unset>"},
			},
		})
}

func TestPersistentVolumeClaims(t *testing.T) {
	checkTable(t, gvr("", "v1", "persistentvolumeclaims"),
		[]string{"NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE", "VOLUMEMODE (wide)"},
		[]rowCase{
			{
				name: "bound",
				obj: &corev1.PersistentVolumeClaim{
					ObjectMeta: objMeta("data", 4*time.Hour),
					Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv1", StorageClassName: ptr("standard"),
						Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}}},
					Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
						Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
				},
				cells: []interface{}{"data", "Bound", "pv1", "10Gi", "RWOP", "standard", "<unset>", "4h", "<unset>"},
			},
			{
				name: "pending",
				obj: &corev1.PersistentVolumeClaim{
					ObjectMeta: objMeta("pending", time.Minute),
					Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}},
					Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
				},
				cells: []interface{}{"pending", "Pending", "", "", "", "", "<unset>", "60s", "<unset>"},
			},
		})
}
