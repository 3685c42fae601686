package strategies

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

type serviceStrategy struct{ withStatus }

func (serviceStrategy) NameValidator() validation.ValidateNameFunc {
	return fastvalidation.NameIsDNSLabel
}

func (serviceStrategy) Default(obj runtime.Object) {
	spec := &obj.(*corev1.Service).Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityNone:
		spec.SessionAffinityConfig = nil
	case corev1.ServiceAffinityClientIP:
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{
				TimeoutSeconds: new(int32(corev1.DefaultClientIPServiceAffinitySeconds)),
			}}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	external := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	if external && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && (external || spec.Type == corev1.ServiceTypeClusterIP) {
		spec.InternalTrafficPolicy = new(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = new(true)
	}
	// clusterIP is clusterIPs[0].
	switch {
	case spec.ClusterIP != "" && len(spec.ClusterIPs) == 0:
		spec.ClusterIPs = []string{spec.ClusterIP}
	case spec.ClusterIP == "" && len(spec.ClusterIPs) > 0:
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	headlessWithoutSelector := spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0
	if spec.Type == corev1.ServiceTypeExternalName || headlessWithoutSelector {
		return
	}
	if spec.IPFamilyPolicy == nil {
		spec.IPFamilyPolicy = new(corev1.IPFamilyPolicySingleStack)
	}
	if len(spec.IPFamilies) == 0 {
		family := corev1.IPv4Protocol
		if ip, err := netip.ParseAddr(spec.ClusterIP); err == nil && ip.Is6() {
			family = corev1.IPv6Protocol
		}
		spec.IPFamilies = []corev1.IPFamily{family}
	}
}

// PrepareForUpdate keeps the status and, as upstream's allocators do, the
// cluster IPs and node ports an update leaves out.
func (serviceStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	svc.Status = oldSvc.Status
	spec, oldSpec := &svc.Spec, &oldSvc.Spec
	if spec.Type == corev1.ServiceTypeExternalName || oldSpec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if spec.ClusterIP == "" && len(spec.ClusterIPs) == 0 {
		spec.ClusterIP, spec.ClusterIPs = oldSpec.ClusterIP, oldSpec.ClusterIPs
	}
	if hasNodePorts(spec.Type) && hasNodePorts(oldSpec.Type) {
		used, byName := map[int32]bool{}, map[string]int32{}
		for _, p := range spec.Ports {
			used[p.NodePort] = true
		}
		for _, p := range oldSpec.Ports {
			byName[p.Name] = p.NodePort
		}
		for i := range spec.Ports {
			if p := &spec.Ports[i]; p.NodePort == 0 && !used[byName[p.Name]] {
				p.NodePort = byName[p.Name]
			}
		}
	}
	if spec.HealthCheckNodePort == 0 && spec.Type == corev1.ServiceTypeLoadBalancer &&
		spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		spec.HealthCheckNodePort = oldSpec.HealthCheckNodePort
	}
}

func hasNodePorts(t corev1.ServiceType) bool {
	return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
}

func (serviceStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validateServiceSpec(&obj.(*corev1.Service).Spec, field.NewPath("spec"))
}

func (serviceStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	spec, oldSpec := &obj.(*corev1.Service).Spec, &old.(*corev1.Service).Spec
	path := field.NewPath("spec")
	errs := validateServiceSpec(spec, path)
	if spec.Type != corev1.ServiceTypeExternalName && oldSpec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, immutable(path.Child("clusterIP"), spec.ClusterIP, oldSpec.ClusterIP)...)
	}
	return errs
}

func (serviceStrategy) ValidateStatusUpdate(_ context.Context, obj, _ runtime.Object) field.ErrorList {
	var errs field.ErrorList
	path := field.NewPath("status", "loadBalancer", "ingress")
	for i, ing := range obj.(*corev1.Service).Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			errs = append(errs, utilvalidation.IsValidIP(path.Index(i).Child("ip"), ing.IP)...)
		}
		if ing.Hostname != "" {
			errs = append(errs, check(path.Index(i).Child("hostname"), ing.Hostname, fastvalidation.IsDNS1123Subdomain)...)
		}
	}
	return errs
}

func (serviceStrategy) Fields(obj runtime.Object) fields.Set {
	svc := obj.(*corev1.Service)
	return fields.Set{"spec.clusterIP": svc.Spec.ClusterIP, "spec.type": string(svc.Spec.Type)}
}

const maxClientIPServiceAffinitySeconds = 86400

func validateServiceSpec(spec *corev1.ServiceSpec, path *field.Path) field.ErrorList {
	errs := oneOf(path.Child("type"), spec.Type, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	headless := spec.ClusterIP == corev1.ClusterIPNone
	if spec.Type == corev1.ServiceTypeExternalName {
		if spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(path.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		if spec.ExternalName == "" {
			errs = append(errs, field.Required(path.Child("externalName"), ""))
		} else {
			errs = append(errs, utilvalidation.IsFullyQualifiedDomainName(path.Child("externalName"), spec.ExternalName)...)
		}
	} else if len(spec.Ports) == 0 && !headless {
		errs = append(errs, field.Required(path.Child("ports"), ""))
	}

	portsPath := path.Child("ports")
	names, ports, nodePorts := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, port := range spec.Ports {
		p := portsPath.Index(i)
		if len(spec.Ports) > 1 || port.Name != "" {
			errs = append(errs, required(p.Child("name"), port.Name, fastvalidation.IsDNS1123Label)...)
		}
		if port.Name != "" && names[port.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), port.Name))
		}
		names[port.Name] = true
		errs = append(errs, portNum(p.Child("port"), port.Port)...)
		errs = append(errs, oneOf(p.Child("protocol"), port.Protocol, supportedProtocols...)...)
		errs = append(errs, portNumOrName(p.Child("targetPort"), port.TargetPort)...)
		key := fmt.Sprintf("%s/%d", port.Protocol, port.Port)
		if ports[key] {
			errs = append(errs, field.Duplicate(p, key))
		}
		ports[key] = true

		if port.NodePort == 0 {
			continue
		}
		if !hasNodePorts(spec.Type) {
			errs = append(errs, field.Forbidden(p.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", spec.Type)))
		}
		errs = append(errs, portNum(p.Child("nodePort"), port.NodePort)...)
		key = fmt.Sprintf("%s/%d", port.Protocol, port.NodePort)
		if nodePorts[key] {
			errs = append(errs, field.Duplicate(p.Child("nodePort"), port.NodePort))
		}
		nodePorts[key] = true
	}

	if len(spec.ClusterIPs) > 0 && spec.ClusterIPs[0] != spec.ClusterIP {
		errs = append(errs, field.Invalid(path.Child("clusterIPs"), spec.ClusterIPs, "first value must match `clusterIP`"))
	}
	for i, ip := range spec.ClusterIPs {
		if ip == corev1.ClusterIPNone && i == 0 && len(spec.ClusterIPs) == 1 {
			continue
		}
		errs = append(errs, utilvalidation.IsValidIP(path.Child("clusterIPs").Index(i), ip)...)
	}
	if spec.ClusterIP != "" && len(spec.ClusterIPs) == 0 && spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, utilvalidation.IsValidIP(path.Child("clusterIP"), spec.ClusterIP)...)
	}
	for i, ip := range spec.ExternalIPs {
		errs = append(errs, utilvalidation.IsValidIP(path.Child("externalIPs").Index(i), ip)...)
	}

	errs = append(errs, oneOf(path.Child("sessionAffinity"), spec.SessionAffinity, corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP)...)
	cfg := spec.SessionAffinityConfig
	switch {
	case spec.SessionAffinity == corev1.ServiceAffinityNone && cfg != nil:
		errs = append(errs, field.Invalid(path.Child("sessionAffinityConfig"), cfg, fmt.Sprintf("must not be set when session affinity is %s", corev1.ServiceAffinityNone)))
	case spec.SessionAffinity == corev1.ServiceAffinityClientIP:
		p := path.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds")
		if cfg == nil || cfg.ClientIP == nil || cfg.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(p, ""))
		} else if t := *cfg.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPServiceAffinitySeconds {
			errs = append(errs, field.Invalid(p, t, fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPServiceAffinitySeconds)))
		}
	}

	if spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, fastvalidation.ValidateLabels(spec.Selector, path.Child("selector"))...)
		if spec.InternalTrafficPolicy == nil {
			errs = append(errs, field.Required(path.Child("internalTrafficPolicy"), ""))
		} else {
			errs = append(errs, oneOf(path.Child("internalTrafficPolicy"), *spec.InternalTrafficPolicy,
				corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
		}
	}
	if hasNodePorts(spec.Type) {
		errs = append(errs, oneOf(path.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy,
			corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
	} else if spec.ExternalTrafficPolicy != "" {
		errs = append(errs, field.Invalid(path.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy,
			"may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
	}
	if spec.IPFamilyPolicy != nil {
		errs = append(errs, oneOf(path.Child("ipFamilyPolicy"), *spec.IPFamilyPolicy, corev1.IPFamilyPolicySingleStack,
			corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)...)
	}
	families := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		errs = append(errs, oneOf(path.Child("ipFamilies").Index(i), f, corev1.IPv4Protocol, corev1.IPv6Protocol)...)
		if families[f] {
			errs = append(errs, field.Duplicate(path.Child("ipFamilies").Index(i), f))
		}
		families[f] = true
	}
	if len(spec.LoadBalancerSourceRanges) > 0 && spec.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(path.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
	}
	for i, cidr := range spec.LoadBalancerSourceRanges {
		errs = append(errs, utilvalidation.IsValidCIDR(path.Child("loadBalancerSourceRanges").Index(i), cidr)...)
	}
	return errs
}

type endpointsStrategy struct{ base }

func (endpointsStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	for i, subset := range obj.(*corev1.Endpoints).Subsets {
		p := field.NewPath("subsets").Index(i)
		for _, addrs := range []struct {
			name string
			list []corev1.EndpointAddress
		}{{"addresses", subset.Addresses}, {"notReadyAddresses", subset.NotReadyAddresses}} {
			for j, a := range addrs.list {
				ap := p.Child(addrs.name).Index(j)
				errs = append(errs, utilvalidation.IsValidIP(ap.Child("ip"), a.IP)...)
				if a.Hostname != "" {
					errs = append(errs, check(ap.Child("hostname"), a.Hostname, fastvalidation.IsDNS1123Label)...)
				}
			}
		}
		for j, port := range subset.Ports {
			pp := p.Child("ports").Index(j)
			if len(subset.Ports) > 1 || port.Name != "" {
				errs = append(errs, required(pp.Child("name"), port.Name, fastvalidation.IsDNS1123Label)...)
			}
			errs = append(errs, portNum(pp.Child("port"), port.Port)...)
			errs = append(errs, oneOf(pp.Child("protocol"), port.Protocol, supportedProtocols...)...)
		}
	}
	return errs
}

func (s endpointsStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func (endpointsStrategy) Default(obj runtime.Object) {
	for _, subset := range obj.(*corev1.Endpoints).Subsets {
		for i := range subset.Ports {
			if subset.Ports[i].Protocol == "" {
				subset.Ports[i].Protocol = corev1.ProtocolTCP
			}
		}
	}
}

type endpointSliceStrategy struct{ base }

func (endpointSliceStrategy) Default(obj runtime.Object) {
	for i := range obj.(*discoveryv1.EndpointSlice).Ports {
		if p := &obj.(*discoveryv1.EndpointSlice).Ports[i]; p.Protocol == nil {
			p.Protocol = new(corev1.ProtocolTCP)
		}
	}
}

func (endpointSliceStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	slice := obj.(*discoveryv1.EndpointSlice)
	errs := oneOf(field.NewPath("addressType"), slice.AddressType,
		discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN)
	for i, ep := range slice.Endpoints {
		p := field.NewPath("endpoints").Index(i)
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(p.Child("addresses"), "must contain at least 1 address"))
		}
		for j, addr := range ep.Addresses {
			ap := p.Child("addresses").Index(j)
			switch slice.AddressType {
			case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
				ip, err := netip.ParseAddr(addr)
				if err != nil || ip.Is4() != (slice.AddressType == discoveryv1.AddressTypeIPv4) {
					errs = append(errs, field.Invalid(ap, addr, fmt.Sprintf("must be a valid %s address", slice.AddressType)))
				}
			case discoveryv1.AddressTypeFQDN:
				errs = append(errs, utilvalidation.IsFullyQualifiedDomainName(ap, addr)...)
			}
		}
		if ep.Hostname != nil {
			errs = append(errs, check(p.Child("hostname"), *ep.Hostname, fastvalidation.IsDNS1123Label)...)
		}
		if ep.NodeName != nil {
			errs = append(errs, check(p.Child("nodeName"), *ep.NodeName, fastvalidation.IsDNS1123Subdomain)...)
		}
	}
	for i, port := range slice.Ports {
		p := field.NewPath("ports").Index(i)
		if port.Name != nil && *port.Name != "" {
			errs = append(errs, check(p.Child("name"), *port.Name, fastvalidation.IsDNS1123Label)...)
		}
		if port.Protocol != nil {
			errs = append(errs, oneOf(p.Child("protocol"), *port.Protocol, supportedProtocols...)...)
		}
		if port.Port != nil {
			errs = append(errs, portNum(p.Child("port"), *port.Port)...)
		}
	}
	return errs
}

func (s endpointSliceStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, immutable(field.NewPath("addressType"),
		obj.(*discoveryv1.EndpointSlice).AddressType, old.(*discoveryv1.EndpointSlice).AddressType)...)
}
