package strategies

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestDefaultPod(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 80}},
			Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
		}},
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
		Volumes: []corev1.Volume{
			{Name: "empty"},
			{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
		},
	}}
	DefaultPod(pod)

	want := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}},
			LivenessProbe: &corev1.Probe{
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			},
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullAlways,
		}},
		InitContainers: []corev1.Container{{
			Name: "init", Image: "busybox:1.36",
			TerminationMessagePath:   "/dev/termination-log",
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}},
		Volumes: []corev1.Volume{
			{Name: "empty", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, DefaultMode: new(int32(0644))}}},
			{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "s", DefaultMode: new(int32(0644))}}},
		},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: new(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 "default-scheduler",
		EnableServiceLinks:            new(true),
	}
	if diff := cmp.Diff(want, pod.Spec); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}

	// Defaulting is idempotent.
	again := pod.DeepCopy()
	DefaultPod(again)
	if diff := cmp.Diff(pod, again); diff != "" {
		t.Errorf("second DefaultPod changed the pod (-first +second):\n%s", diff)
	}
}

func TestDefaultPodHostNetworkPorts(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{
		Name: "a", Image: "a", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}
	DefaultPod(pod)
	if got := pod.Spec.Containers[0].Ports[0].HostPort; got != 8080 {
		t.Errorf("hostPort = %d, want 8080", got)
	}
}

func TestImagePullPolicy(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"localhost:5000/nginx", corev1.PullAlways},
		{"localhost:5000/nginx:1.0", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef", corev1.PullAlways},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			c := corev1.Container{Image: tt.image}
			defaultContainer(&c)
			if c.ImagePullPolicy != tt.want {
				t.Errorf("imagePullPolicy = %s, want %s", c.ImagePullPolicy, tt.want)
			}
		})
	}
}

func resources(req, lim string) corev1.ResourceRequirements {
	list := func(s string) corev1.ResourceList {
		if s == "" {
			return nil
		}
		cpu, mem, _ := strings.Cut(s, "/")
		l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	return corev1.ResourceRequirements{Requests: list(req), Limits: list(lim)}
}

func TestComputePodQOS(t *testing.T) {
	tests := []struct {
		name      string
		resources []corev1.ResourceRequirements
		want      corev1.PodQOSClass
	}{
		{"none", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"requests only", []corev1.ResourceRequirements{resources("100m", "")}, corev1.PodQOSBurstable},
		{"equal cpu and memory", []corev1.ResourceRequirements{resources("1/1Gi", "1/1Gi")}, corev1.PodQOSGuaranteed},
		{"cpu only", []corev1.ResourceRequirements{resources("1", "1")}, corev1.PodQOSBurstable},
		{"one container without", []corev1.ResourceRequirements{resources("1/1Gi", "1/1Gi"), {}}, corev1.PodQOSBurstable},
		{"requests below limits", []corev1.ResourceRequirements{resources("500m/1Gi", "1/1Gi")}, corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{}
			for _, r := range tt.resources {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Resources: r})
			}
			if got := ComputePodQOS(pod); got != tt.want {
				t.Errorf("ComputePodQOS = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPodPrepareForCreate(t *testing.T) {
	pod := &corev1.Pod{
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Resources: resources("1/1Gi", "1/1Gi")}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	podStrategy{}.PrepareForCreate(ctx, pod)
	want := corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSGuaranteed}
	if diff := cmp.Diff(want, pod.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// validPod returns a defaulted pod that validates.
func validPod() *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "nginx",
				Ports:        []corev1.ContainerPort{{Name: "http", ContainerPort: 80}},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data"}},
		},
	}
	DefaultPod(pod)
	return pod
}

func TestValidatePod(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.PodSpec)
		want   []string
	}{
		{"valid", func(*corev1.PodSpec) {}, nil},
		{"no containers", func(s *corev1.PodSpec) { s.Containers = nil }, []string{"spec.containers: Required value"}},
		{"bad container name", func(s *corev1.PodSpec) { s.Containers[0].Name = "App" }, []string{"spec.containers[0].name: Invalid value"}},
		{"duplicate name with init container", func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{s.Containers[0]}
			s.InitContainers[0].VolumeMounts = nil
			s.InitContainers[0].Ports = nil
		}, []string{"spec.containers[0].name: Duplicate value"}},
		{"no image", func(s *corev1.PodSpec) { s.Containers[0].Image = "" }, []string{"spec.containers[0].image: Required value"}},
		{"bad port", func(s *corev1.PodSpec) { s.Containers[0].Ports[0].ContainerPort = 70000 }, []string{"spec.containers[0].ports[0].containerPort: Invalid value"}},
		{"duplicate port name", func(s *corev1.PodSpec) {
			s.Containers[0].Ports = append(s.Containers[0].Ports, corev1.ContainerPort{Name: "http", ContainerPort: 81, Protocol: "TCP"})
		}, []string{"spec.containers[0].ports[1].name: Duplicate value"}},
		{"bad protocol", func(s *corev1.PodSpec) { s.Containers[0].Ports[0].Protocol = "ICMP" }, []string{"spec.containers[0].ports[0].protocol: Unsupported value"}},
		{"bad restartPolicy", func(s *corev1.PodSpec) { s.RestartPolicy = "Sometimes" }, []string{"spec.restartPolicy: Unsupported value"}},
		{"bad dnsPolicy", func(s *corev1.PodSpec) { s.DNSPolicy = "Google" }, []string{"spec.dnsPolicy: Unsupported value"}},
		{"duplicate volume", func(s *corev1.PodSpec) { s.Volumes = append(s.Volumes, s.Volumes[0]) }, []string{"spec.volumes[1].name: Duplicate value"}},
		{"volume without source", func(s *corev1.PodSpec) { s.Volumes[0].EmptyDir = nil }, []string{"spec.volumes[0]: Required value"}},
		{"volume with two sources", func(s *corev1.PodSpec) {
			s.Volumes[0].HostPath = &corev1.HostPathVolumeSource{Path: "/x"}
		}, []string{"spec.volumes[0].emptyDir: Forbidden"}},
		{"mount of unknown volume", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].Name = "nope" }, []string{"spec.containers[0].volumeMounts[0].name: Not found"}},
		{"requests over limits", func(s *corev1.PodSpec) { s.Containers[0].Resources = resources("2", "1") }, []string{"spec.containers[0].resources.requests: Invalid value"}},
		{"bad env name", func(s *corev1.PodSpec) { s.Containers[0].Env = []corev1.EnvVar{{Name: "1A"}} }, []string{"spec.containers[0].env[0].name: Invalid value"}},
		{"env value and valueFrom", func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}
		}, []string{"spec.containers[0].env[0].valueFrom: Invalid value"}},
		{"bad fieldRef", func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.bogus"}}}}
		}, []string{"spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value"}},
		{"probe without handler", func(s *corev1.PodSpec) {
			s.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 10}
		}, []string{"spec.containers[0].readinessProbe: Required value"}},
		{"liveness successThreshold", func(s *corev1.PodSpec) {
			s.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2, ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
		}, []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value"}},
		{"probe on init container", func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "init", Image: "x", ImagePullPolicy: "Always", TerminationMessagePolicy: "File",
				ReadinessProbe: &corev1.Probe{}}}
		}, []string{"spec.initContainers[0].readinessProbe: Forbidden"}},
		{"toleration Exists with value", func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}, []string{"spec.tolerations[0].operator: Invalid value"}},
		{"bad nodeSelector", func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"a b": "c"} }, []string{"spec.nodeSelector: Invalid value"}},
		{"activeDeadlineSeconds", func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = new(int64(0)) }, []string{"spec.activeDeadlineSeconds: Invalid value"}},
		{"dnsPolicy None without config", func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSNone }, []string{"spec.dnsConfig: Required value"}},
		{"hostNetwork port mismatch", func(s *corev1.PodSpec) {
			s.HostNetwork = true
			s.Containers[0].Ports[0].HostPort = 8080
		}, []string{"spec.containers[0].ports[0].containerPort: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := validPod()
			tt.mutate(&pod.Spec)
			checkErrs(t, podStrategy{}.Validate(ctx, pod), tt.want)
		})
	}
}

func TestValidatePodSpecPath(t *testing.T) {
	errs := ValidatePodSpec(&corev1.PodSpec{RestartPolicy: "Always", DNSPolicy: "ClusterFirst"}, field.NewPath("spec", "template", "spec"))
	checkErrs(t, errs, []string{"spec.template.spec.containers: Required value"})
}

func TestValidatePodUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.PodSpec)
		want   []string
	}{
		{"image", func(s *corev1.PodSpec) { s.Containers[0].Image = "nginx:2" }, nil},
		{"activeDeadlineSeconds set", func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = new(int64(10)) }, nil},
		{"toleration added", func(s *corev1.PodSpec) {
			s.Tolerations = append(s.Tolerations, corev1.Toleration{Key: "b", Operator: "Exists"})
		}, nil},
		{"toleration removed", func(s *corev1.PodSpec) { s.Tolerations = nil }, []string{"spec.tolerations: Forbidden"}},
		{"nodeName", func(s *corev1.PodSpec) { s.NodeName = "other" }, []string{"spec: Forbidden"}},
		{"ports", func(s *corev1.PodSpec) { s.Containers[0].Ports[0].ContainerPort = 81 }, []string{"spec: Forbidden"}},
		{"container added", func(s *corev1.PodSpec) {
			s.Containers = append(s.Containers, corev1.Container{Name: "b", Image: "b", ImagePullPolicy: "Always", TerminationMessagePolicy: "File"})
		}, []string{"spec.containers: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPod()
			old.Spec.NodeName = "node1"
			old.Spec.Tolerations = []corev1.Toleration{{Key: "a", Operator: "Exists"}}
			pod := old.DeepCopy()
			tt.mutate(&pod.Spec)
			errs := podStrategy{}.ValidateUpdate(ctx, pod, old)
			checkErrs(t, errs, tt.want)
			if len(errs) > 0 && errs[0].Field == "spec" && !strings.HasPrefix(errs[0].Detail, podUpdateForbiddenMsg) {
				t.Errorf("detail = %q, want prefix %q", errs[0].Detail, podUpdateForbiddenMsg)
			}
		})
	}
}

func TestPodFields(t *testing.T) {
	pod := validPod()
	pod.Spec.NodeName = "n1"
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.0.0.2"}}}
	got := podStrategy{}.Fields(pod)
	for k, want := range map[string]string{
		"spec.nodeName": "n1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
		"spec.hostNetwork": "false", "status.phase": "Running", "status.podIP": "10.0.0.2", "spec.serviceAccountName": "",
	} {
		if got[k] != want {
			t.Errorf("Fields()[%q] = %q, want %q", k, got[k], want)
		}
	}
}

func TestPodStatusUpdateKeepsQOS(t *testing.T) {
	old := validPod()
	old.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort}
	pod := old.DeepCopy()
	pod.Spec.NodeName = "sneaky"
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	podStrategy{}.PrepareForStatusUpdate(ctx, pod, old)
	if pod.Spec.NodeName != "" || pod.Status.Phase != corev1.PodRunning || pod.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("got nodeName %q, phase %s, qos %s; want \"\", Running, BestEffort", pod.Spec.NodeName, pod.Status.Phase, pod.Status.QOSClass)
	}
}
