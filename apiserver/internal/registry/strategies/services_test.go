package strategies

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDefaultService(t *testing.T) {
	tests := []struct {
		name string
		spec corev1.ServiceSpec
		want corev1.ServiceSpec
	}{
		{
			name: "cluster IP",
			spec: corev1.ServiceSpec{Selector: map[string]string{"app": "a"}, Ports: []corev1.ServicePort{{Port: 80}}},
			want: corev1.ServiceSpec{
				Selector:              map[string]string{"app": "a"},
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)}},
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        new(corev1.IPFamilyPolicySingleStack),
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "node port",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "a"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
			want: corev1.ServiceSpec{
				Type:                  corev1.ServiceTypeNodePort,
				Selector:              map[string]string{"app": "a"},
				Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
				SessionAffinity:       corev1.ServiceAffinityNone,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
				InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
				IPFamilyPolicy:        new(corev1.IPFamilyPolicySingleStack),
				IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			},
		},
		{
			name: "headless without selector",
			spec: corev1.ServiceSpec{ClusterIP: "None"},
			want: corev1.ServiceSpec{
				ClusterIP: "None", ClusterIPs: []string{"None"},
				Type:                  corev1.ServiceTypeClusterIP,
				SessionAffinity:       corev1.ServiceAffinityNone,
				InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
			},
		},
		{
			name: "client IP affinity",
			spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", SessionAffinity: corev1.ServiceAffinityClientIP},
			want: corev1.ServiceSpec{
				Type: corev1.ServiceTypeExternalName, ExternalName: "example.com",
				SessionAffinity: corev1.ServiceAffinityClientIP,
				SessionAffinityConfig: &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{
					TimeoutSeconds: new(int32(10800))}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: tt.spec}
			serviceStrategy{}.Default(svc)
			if diff := cmp.Diff(tt.want, svc.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func validService() *corev1.Service {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "a"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
	}}
	serviceStrategy{}.Default(svc)
	return svc
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.ServiceSpec)
		want   []string
	}{
		{"valid", func(*corev1.ServiceSpec) {}, nil},
		{"no ports", func(s *corev1.ServiceSpec) { s.Ports = nil }, []string{"spec.ports: Required value"}},
		{"headless without ports", func(s *corev1.ServiceSpec) { s.Ports, s.ClusterIP = nil, "None" }, nil},
		{"bad port", func(s *corev1.ServiceSpec) { s.Ports[0].Port = 0 }, []string{"spec.ports[0].port: Invalid value"}},
		{"bad protocol", func(s *corev1.ServiceSpec) { s.Ports[0].Protocol = "HTTP" }, []string{"spec.ports[0].protocol: Unsupported value"}},
		{"unnamed second port", func(s *corev1.ServiceSpec) {
			s.Ports = append(s.Ports, corev1.ServicePort{Port: 443, Protocol: "TCP", TargetPort: intstr.FromInt32(443)})
		}, []string{"spec.ports[1].name: Required value"}},
		{"duplicate port name", func(s *corev1.ServiceSpec) {
			s.Ports = append(s.Ports, corev1.ServicePort{Name: "http", Port: 443, Protocol: "TCP", TargetPort: intstr.FromInt32(443)})
		}, []string{"spec.ports[1].name: Duplicate value"}},
		{"bad targetPort", func(s *corev1.ServiceSpec) { s.Ports[0].TargetPort = intstr.FromString("Not_Valid") }, []string{"spec.ports[0].targetPort: Invalid value"}},
		{"nodePort on ClusterIP", func(s *corev1.ServiceSpec) { s.Ports[0].NodePort = 30080 }, []string{"spec.ports[0].nodePort: Forbidden"}},
		{"bad type", func(s *corev1.ServiceSpec) { s.Type = "Magic" }, []string{"spec.type: Unsupported value"}},
		{"bad clusterIP", func(s *corev1.ServiceSpec) { s.ClusterIP, s.ClusterIPs = "10.0.0.300", []string{"10.0.0.300"} }, []string{"spec.clusterIPs[0]: Invalid value"}},
		{"bad sessionAffinity", func(s *corev1.ServiceSpec) { s.SessionAffinity = "Cookie" }, []string{"spec.sessionAffinity: Unsupported value"}},
		{"bad selector", func(s *corev1.ServiceSpec) { s.Selector = map[string]string{"app": "not valid"} }, []string{"spec.selector: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := validService()
			tt.mutate(&svc.Spec)
			checkErrs(t, serviceStrategy{}.Validate(ctx, svc), tt.want)
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	old := validService()
	old.Spec.ClusterIP, old.Spec.ClusterIPs = "10.96.0.10", []string{"10.96.0.10"}

	t.Run("clusterIP immutable", func(t *testing.T) {
		svc := old.DeepCopy()
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"}
		checkErrs(t, serviceStrategy{}.ValidateUpdate(ctx, svc, old), []string{"spec.clusterIP: Invalid value"})
	})
	t.Run("allocated values kept", func(t *testing.T) {
		old := old.DeepCopy()
		old.Spec.Type = corev1.ServiceTypeNodePort
		old.Spec.Ports[0].NodePort = 30080
		svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: old.Spec.Selector,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		serviceStrategy{}.Default(svc)
		serviceStrategy{}.PrepareForUpdate(ctx, svc, old)
		if svc.Spec.ClusterIP != "10.96.0.10" || svc.Spec.Ports[0].NodePort != 30080 {
			t.Errorf("got clusterIP %q, nodePort %d; want 10.96.0.10, 30080", svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort)
		}
		checkErrs(t, serviceStrategy{}.ValidateUpdate(ctx, svc, old), nil)
	})
}

func TestValidateEndpointSlice(t *testing.T) {
	tests := []struct {
		name  string
		slice discoveryv1.EndpointSlice
		want  []string
	}{
		{"valid", discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}}}, nil},
		{"bad address type", discoveryv1.EndpointSlice{AddressType: "IPX"}, []string{"addressType: Unsupported value"}},
		{"bad address", discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}}}, []string{"endpoints[0].addresses[0]: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, endpointSliceStrategy{}.Validate(ctx, &tt.slice), tt.want)
		})
	}
}
