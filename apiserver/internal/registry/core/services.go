// Package core holds what the core kinds add to the generic registry:
// Service IP and NodePort allocation, graceful pod deletion, namespace
// termination and the pods/binding and pods/eviction subresources.
package core

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
)

const (
	ipPrefix   = "/registry/ranges/serviceips/"
	portPrefix = "/registry/ranges/servicenodeports/"
)

// PortRange is an inclusive range of node ports.
type PortRange struct{ Base, Size int }

// ParsePortRange parses "30000-32767".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || a < 1 || b > 65535 || b < a {
		return PortRange{}, fmt.Errorf("invalid port range %q: want BASE-MAX within 1-65535", s)
	}
	return PortRange{Base: a, Size: b - a + 1}, nil
}

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Base, r.Base+r.Size-1) }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int) bool { return p >= r.Base && p < r.Base+r.Size }

// ServiceAllocator assigns ClusterIPs and NodePorts. Each allocation is an
// etcd key written in the same transaction as the Service, so two Services
// never share one, even across restarts and concurrent creates.
type ServiceAllocator struct {
	Store *etcd.Store
	CIDR  *net.IPNet
	Ports PortRange
}

// NewServiceAllocator parses the ranges.
func NewServiceAllocator(st *etcd.Store, cidr string, ports string) (*ServiceAllocator, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("service cluster IP range: %w", err)
	}
	if n.IP.To4() == nil {
		return nil, fmt.Errorf("service cluster IP range %s: only IPv4 is supported", cidr)
	}
	ones, bits := n.Mask.Size()
	if bits-ones < 2 || bits-ones > 24 {
		return nil, fmt.Errorf("service cluster IP range %s: prefix length must be between /8 and /30", cidr)
	}
	pr, err := ParsePortRange(ports)
	if err != nil {
		return nil, err
	}
	return &ServiceAllocator{Store: st, CIDR: n, Ports: pr}, nil
}

func (a *ServiceAllocator) size() int {
	ones, bits := a.CIDR.Mask.Size()
	return 1 << (bits - ones)
}

// IPAt returns the i-th address of the range.
func (a *ServiceAllocator) IPAt(i int) net.IP {
	base := new(big.Int).SetBytes(a.CIDR.IP.To4())
	return net.IP(new(big.Int).Add(base, big.NewInt(int64(i))).FillBytes(make([]byte, 4)))
}

func (a *ServiceAllocator) offset(ip net.IP) int {
	return int(new(big.Int).Sub(new(big.Int).SetBytes(ip.To4()), new(big.Int).SetBytes(a.CIDR.IP.To4())).Int64())
}

// FirstIP is the address of the kubernetes Service.
func (a *ServiceAllocator) FirstIP() net.IP { return a.IPAt(1) }

func needsClusterIP(s *corev1.Service) bool {
	return s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// Held returns the reservation keys a stored Service holds.
func (a *ServiceAllocator) Held(obj runtime.Object) []string {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return nil
	}
	var out []string
	if needsClusterIP(s) && s.Spec.ClusterIP != "" {
		out = append(out, ipPrefix+s.Spec.ClusterIP)
	}
	seen := map[int32]bool{}
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 && !seen[p.NodePort] {
			seen[p.NodePort] = true
			out = append(out, portPrefix+strconv.Itoa(int(p.NodePort)))
		}
	}
	return out
}

// Assign allocates a ClusterIP and NodePorts where the Service asks for
// them (keeping those of old), validating requested ones.
func (a *ServiceAllocator) Assign(ctx context.Context, obj, old runtime.Object) ([]string, error) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var prev *corev1.Service
	if o, ok := old.(*corev1.Service); ok {
		prev = o
	}
	var errs field.ErrorList
	if needsClusterIP(s) {
		if s.Spec.ClusterIP == "" && prev != nil && needsClusterIP(prev) {
			s.Spec.ClusterIP = prev.Spec.ClusterIP
		}
		if s.Spec.ClusterIP == "" {
			ip, err := a.freeIP(ctx)
			if err != nil {
				return nil, err
			}
			s.Spec.ClusterIP = ip
		} else {
			ip := net.ParseIP(s.Spec.ClusterIP)
			if ip == nil || !a.CIDR.Contains(ip) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), s.Spec.ClusterIP,
					fmt.Sprintf("failed to allocate IP %s: provided IP is not in the valid range. The range of valid IPs is %s", s.Spec.ClusterIP, a.CIDR)))
			} else if off := a.offset(ip); off == 0 || off == a.size()-1 {
				errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), s.Spec.ClusterIP,
					fmt.Sprintf("failed to allocate IP %s: provided IP is not in the valid range. The range of valid IPs is %s", s.Spec.ClusterIP, a.CIDR)))
			}
		}
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	} else if s.Spec.Type == corev1.ServiceTypeExternalName {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
	} else {
		s.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	}
	if needsNodePorts(s) {
		prevPorts := map[string]int32{}
		if prev != nil {
			for _, p := range prev.Spec.Ports {
				prevPorts[string(p.Protocol)+"/"+strconv.Itoa(int(p.Port))] = p.NodePort
			}
		}
		used := map[int32]bool{}
		for i := range s.Spec.Ports {
			p := &s.Spec.Ports[i]
			if p.NodePort == 0 {
				p.NodePort = prevPorts[string(p.Protocol)+"/"+strconv.Itoa(int(p.Port))]
			}
			if p.NodePort == 0 {
				continue
			}
			if !a.Ports.Contains(int(p.NodePort)) {
				errs = append(errs, field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort,
					fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", a.Ports)))
			}
			used[p.NodePort] = true
		}
		for i := range s.Spec.Ports {
			p := &s.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			port, err := a.freePort(ctx, used)
			if err != nil {
				return nil, err
			}
			p.NodePort = port
			used[port] = true
		}
	} else {
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = 0
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), s.Name, errs)
	}
	return a.Held(s), nil
}

// ReservedError explains which requested allocation was taken; nil when
// the taken one was chosen by the allocator (the caller retries).
func (a *ServiceAllocator) ReservedError(requested, assigned runtime.Object, key string) error {
	req, _ := requested.(*corev1.Service)
	s, _ := assigned.(*corev1.Service)
	if s == nil || req == nil {
		return nil
	}
	gk := corev1.SchemeGroupVersion.WithKind("Service").GroupKind()
	switch {
	case strings.HasPrefix(key, ipPrefix):
		ip := strings.TrimPrefix(key, ipPrefix)
		if req.Spec.ClusterIP != ip {
			return nil
		}
		return apierrors.NewInvalid(gk, s.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), ip, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip)),
		})
	case strings.HasPrefix(key, portPrefix):
		port := strings.TrimPrefix(key, portPrefix)
		for i, p := range req.Spec.Ports {
			if p.NodePort != 0 && strconv.Itoa(int(p.NodePort)) == port {
				return apierrors.NewInvalid(gk, s.Name, field.ErrorList{
					field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort, "provided port is already allocated"),
				})
			}
		}
	}
	return nil
}

func (a *ServiceAllocator) freeIP(ctx context.Context) (string, error) {
	keys, err := a.Store.ListKeys(ctx, ipPrefix)
	if err != nil {
		return "", err
	}
	used := make(map[string]bool, len(keys))
	for _, k := range keys {
		used[strings.TrimPrefix(k, ipPrefix)] = true
	}
	size := a.size()
	// Skip the network address, the first IP (the kubernetes Service takes
	// it explicitly) and the broadcast address.
	start := 2 + rand.IntN(max(size-3, 1))
	for i := 0; i < size; i++ {
		off := 2 + (start-2+i)%(size-3)
		ip := a.IPAt(off).String()
		if !used[ip] {
			return ip, nil
		}
	}
	return "", apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range %s is full", a.CIDR))
}

func (a *ServiceAllocator) freePort(ctx context.Context, taken map[int32]bool) (int32, error) {
	keys, err := a.Store.ListKeys(ctx, portPrefix)
	if err != nil {
		return 0, err
	}
	used := make(map[int]bool, len(keys))
	for _, k := range keys {
		if n, err := strconv.Atoi(strings.TrimPrefix(k, portPrefix)); err == nil {
			used[n] = true
		}
	}
	start := rand.IntN(a.Ports.Size)
	for i := 0; i < a.Ports.Size; i++ {
		p := a.Ports.Base + (start+i)%a.Ports.Size
		if !used[p] && !taken[int32(p)] {
			return int32(p), nil
		}
	}
	return 0, apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range %s is full", a.Ports))
}
