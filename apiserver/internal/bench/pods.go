package bench

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// typicalPod is a pod as a Deployment would make it: labels, annotations,
// an application container and a sidecar with env, ports, resources,
// volume mounts and probes; about 2 KiB in protobuf.
func typicalPod() *corev1.Pod {
	probe := func(path string, port int32, delay int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}},
			InitialDelaySeconds: delay, PeriodSeconds: 10, TimeoutSeconds: 2, FailureThreshold: 3, SuccessThreshold: 1,
		}
	}
	res := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{
				"app.kubernetes.io/name": "checkout", "app.kubernetes.io/component": "api",
				"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/version": "2.14.3",
				"pod-template-hash": "7d9f8c6b5d", "tier": "backend",
			},
			Annotations: map[string]string{
				"prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics",
				"kubectl.kubernetes.io/default-container": "checkout",
				"checksum/config":                         "3f1a9c0e5b7d2468ace13579bdf02468ace13579bdf02468ace13579bdf02468",
			},
		},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-config"}}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			Containers: []corev1.Container{
				{
					Name: "checkout", Image: "registry.example.com/shop/checkout:2.14.3",
					Args: []string{"--config=/etc/checkout/config.yaml", "--listen=:8080", "--metrics=:9090"},
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
						{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
					},
					Env: []corev1.EnvVar{
						{Name: "LOG_LEVEL", Value: "info"},
						{Name: "DATABASE_URL", Value: "postgres://checkout@db.shop.svc.cluster.local:5432/checkout?sslmode=require"},
						{Name: "CACHE_ADDR", Value: "redis.shop.svc.cluster.local:6379"},
						{Name: "PAYMENTS_URL", Value: "https://payments.shop.svc.cluster.local:8443/v2"},
						{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://otel-collector.observability.svc.cluster.local:4317"},
						fieldEnv("POD_NAME", "metadata.name"),
						fieldEnv("POD_NAMESPACE", "metadata.namespace"),
						fieldEnv("POD_IP", "status.podIP"),
					},
					Resources: res("500m", "512Mi"),
					VolumeMounts: []corev1.VolumeMount{
						{Name: "config", MountPath: "/etc/checkout", ReadOnly: true},
						{Name: "tmp", MountPath: "/tmp"},
					},
					LivenessProbe:  probe("/healthz", 8080, 10),
					ReadinessProbe: probe("/readyz", 8080, 2),
				},
				{
					Name: "envoy", Image: "registry.example.com/proxy/envoy:1.31.2",
					Args:  []string{"--config-path", "/etc/envoy/envoy.yaml", "--log-level", "warn"},
					Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001, Protocol: corev1.ProtocolTCP}},
					Env: []corev1.EnvVar{
						{Name: "ENVOY_UID", Value: "1337"},
						fieldEnv("NODE_NAME", "spec.nodeName"),
					},
					Resources:      res("100m", "128Mi"),
					VolumeMounts:   []corev1.VolumeMount{{Name: "tmp", MountPath: "/var/run/envoy"}},
					ReadinessProbe: probe("/ready", 15021, 1),
				},
			},
			TerminationGracePeriodSeconds: new(int64(30)),
			ServiceAccountName:            "checkout",
			NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
			},
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true), RunAsUser: new(int64(10001)), FSGroup: new(int64(10001))},
		},
	}
}

// smallPod is a one-container pod of about 1 KiB in protobuf, labelled
// group=<i%1000>.
func smallPod(i int) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("scale-%06d", i),
			Labels: map[string]string{
				"app": "scale", "group": fmt.Sprint(i % 1000), "pod-template-hash": "5c8f7d9b6d",
			},
			Annotations: map[string]string{"note": strings.Repeat("x", 570)},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example.com/bench/app:1.0.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}, {Name: "GREETING", Value: strings.Repeat("hello ", 20)}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
				},
			}},
		},
	}
}
