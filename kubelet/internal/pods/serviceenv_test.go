package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServiceEnv(t *testing.T) {
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "redis-master"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.11",
			Ports: []corev1.ServicePort{{Port: 6379, Protocol: corev1.ProtocolTCP}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless"}, Spec: corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 1}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "dns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10",
			Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}},
	}
	want := []corev1.EnvVar{
		{Name: "DNS_SERVICE_HOST", Value: "10.96.0.10"},
		{Name: "DNS_SERVICE_PORT", Value: "53"},
		{Name: "DNS_SERVICE_PORT_DNS", Value: "53"},
		{Name: "DNS_PORT", Value: "udp://10.96.0.10:53"},
		{Name: "DNS_PORT_53_UDP", Value: "udp://10.96.0.10:53"},
		{Name: "DNS_PORT_53_UDP_PROTO", Value: "udp"},
		{Name: "DNS_PORT_53_UDP_PORT", Value: "53"},
		{Name: "DNS_PORT_53_UDP_ADDR", Value: "10.96.0.10"},
		{Name: "REDIS_MASTER_SERVICE_HOST", Value: "10.96.0.11"},
		{Name: "REDIS_MASTER_SERVICE_PORT", Value: "6379"},
		{Name: "REDIS_MASTER_PORT", Value: "tcp://10.96.0.11:6379"},
		{Name: "REDIS_MASTER_PORT_6379_TCP", Value: "tcp://10.96.0.11:6379"},
		{Name: "REDIS_MASTER_PORT_6379_TCP_PROTO", Value: "tcp"},
		{Name: "REDIS_MASTER_PORT_6379_TCP_PORT", Value: "6379"},
		{Name: "REDIS_MASTER_PORT_6379_TCP_ADDR", Value: "10.96.0.11"},
	}
	if diff := cmp.Diff(want, ServiceEnv(svcs)); diff != "" {
		t.Fatalf("service env (-want +got):\n%s", diff)
	}
}
