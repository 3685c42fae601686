// Package dns is kube-proxy's node-local DNS server: it answers the cluster's
// names (Services, their ports and endpoints, pods, reverse lookups of
// ClusterIPs) from the proxy's informer caches, and forwards other names to
// an upstream server when one is configured.
package dns

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/pkg/informer"
)

// Index names the server needs on its informers' indexers.
const (
	// ClusterIPIndex indexes Services by their ClusterIPs.
	ClusterIPIndex = "clusterIP"
	// ServiceIndex indexes EndpointSlices by "namespace/service".
	ServiceIndex = "service"
	// AddressIndex indexes EndpointSlices by their endpoints' addresses.
	AddressIndex = "address"
)

// ServiceIndexers are the indexers the Service informer needs.
var ServiceIndexers = informer.Indexers{
	ClusterIPIndex: func(obj runtime.Object) ([]string, error) {
		svc, ok := obj.(*corev1.Service)
		if !ok {
			return nil, nil
		}
		var out []string
		for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if net.ParseIP(ip) != nil {
				out = append(out, ip)
			}
		}
		return out, nil
	},
}

// SliceIndexers are the indexers the EndpointSlice informer needs.
var SliceIndexers = informer.Indexers{
	ServiceIndex: func(obj runtime.Object) ([]string, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
			return nil, nil
		}
		return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
	},
	AddressIndex: func(obj runtime.Object) ([]string, error) {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
			return nil, nil
		}
		var out []string
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				if ip := net.ParseIP(a); ip != nil {
					out = append(out, ip.String())
				}
			}
		}
		return out, nil
	},
}

// Options configure a Server.
type Options struct {
	// Domain is the cluster domain (cluster.local).
	Domain string
	// Upstream, host:port, answers names outside the cluster; without it
	// they are REFUSED.
	Upstream string
	// TTL of the answers, seconds (default 5).
	TTL    uint32
	Logger *zap.Logger
}

// Server answers DNS queries.
type Server struct {
	services, slices informer.Indexer
	opts             Options
	zone             string
	logger           *zap.Logger

	mu      sync.Mutex
	servers []*dns.Server
}

// New returns a server over the Services and EndpointSlices of the indexers
// (which carry ServiceIndexers and SliceIndexers).
func New(services, slices informer.Indexer, opts Options) *Server {
	if opts.Domain == "" {
		opts.Domain = "cluster.local"
	}
	if opts.TTL == 0 {
		opts.TTL = 5
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &Server{services: services, slices: slices, opts: opts, zone: dns.Fqdn(strings.ToLower(opts.Domain)), logger: opts.Logger}
}

// Listen serves UDP and TCP on addr (host:port; port 0 picks one free port
// for both) and returns the address.
func (s *Server) Listen(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	var pc net.PacketConn
	var l net.Listener
	for attempt := 0; ; attempt++ {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return "", fmt.Errorf("listen udp: %w", err)
		}
		p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		l, err = net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			break
		}
		_ = pc.Close()
		if port != "0" || attempt > 10 {
			return "", fmt.Errorf("listen tcp: %w", err)
		}
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: l, Handler: s}
	s.mu.Lock()
	s.servers = append(s.servers, udp, tcp)
	s.mu.Unlock()
	for _, srv := range []*dns.Server{udp, tcp} {
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.logger.Error("dns server stopped", zap.Error(err))
			}
		}()
	}
	return pc.LocalAddr().String(), nil
}

// Stop stops serving.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.ShutdownContext(ctx)
		cancel()
	}
	s.servers = nil
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := s.answer(r)
	if err := w.WriteMsg(m); err != nil {
		s.logger.Debug("write dns answer", zap.Error(err))
	}
}

func (s *Server) answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	switch {
	case dns.IsSubDomain(s.zone, name):
		m.Authoritative = true
		s.cluster(m, q, name)
	case dns.IsSubDomain("in-addr.arpa.", name) || dns.IsSubDomain("ip6.arpa.", name):
		if s.reverse(m, q, name) {
			m.Authoritative = true
			return m
		}
		return s.forward(r, m)
	default:
		return s.forward(r, m)
	}
	return m
}

func (s *Server) forward(r, m *dns.Msg) *dns.Msg {
	if s.opts.Upstream == "" {
		m.Rcode = dns.RcodeRefused
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &dns.Client{Net: "udp"}
	resp, _, err := c.ExchangeContext(ctx, r, s.opts.Upstream)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, r, s.opts.Upstream)
	}
	if err != nil {
		s.logger.Debug("forward dns query", zap.String("name", r.Question[0].Name), zap.Error(err))
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	resp.Id = r.Id
	return resp
}

func (s *Server) hdr(name string, typ uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: s.opts.TTL}
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{Hdr: s.hdr(s.zone, dns.TypeSOA), Ns: "ns.dns." + s.zone, Mbox: "hostmaster." + s.zone,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.opts.TTL}
}

// addrRR returns an A or AAAA record of ip if it matches qtype (nil otherwise).
func (s *Server) addrRR(name string, qtype uint16, ip string) dns.RR {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return nil
	}
	if v4 := parsed.To4(); v4 != nil {
		if qtype == dns.TypeA || qtype == dns.TypeANY {
			return &dns.A{Hdr: s.hdr(name, dns.TypeA), A: v4}
		}
		return nil
	}
	if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
		return &dns.AAAA{Hdr: s.hdr(name, dns.TypeAAAA), AAAA: parsed}
	}
	return nil
}

// cluster answers a name in the cluster domain.
func (s *Server) cluster(m *dns.Msg, q dns.Question, name string) {
	rel := strings.TrimSuffix(strings.TrimSuffix(name, s.zone), ".")
	var labels []string
	if rel != "" {
		labels = strings.Split(rel, ".")
	}
	// labels are read right to left: [..., ns, "svc"|"pod"].
	exists := false
	n := len(labels)
	switch {
	case n == 0:
		exists = true
		if q.Qtype == dns.TypeSOA {
			m.Answer = append(m.Answer, s.soa())
		}
	case labels[n-1] == "svc" && n <= 2, labels[n-1] == "pod" && n <= 2:
		exists = true // svc.<domain>, <ns>.svc.<domain>: empty non-terminals
	case labels[n-1] == "svc" && n == 3:
		exists = s.service(m, q, name, labels[1], labels[0])
	case labels[n-1] == "svc" && n == 4:
		exists = s.endpoint(m, q, name, labels[2], labels[1], labels[0])
	case labels[n-1] == "svc" && n == 5 && strings.HasPrefix(labels[0], "_") && strings.HasPrefix(labels[1], "_"):
		exists = s.srv(m, q, name, labels[3], labels[2], labels[0][1:], labels[1][1:])
	case labels[n-1] == "pod" && n == 3:
		ip := net.ParseIP(strings.ReplaceAll(labels[0], "-", "."))
		if ip == nil {
			ip = net.ParseIP(strings.ReplaceAll(labels[0], "-", ":"))
		}
		if ip != nil {
			exists = true
			if rr := s.addrRR(name, q.Qtype, ip.String()); rr != nil {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, s.soa())
	}
}

func (s *Server) getService(ns, name string) *corev1.Service {
	obj, ok, err := s.services.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	svc, _ := obj.(*corev1.Service)
	return svc
}

func headless(svc *corev1.Service) bool { return svc.Spec.ClusterIP == corev1.ClusterIPNone }

// endpoints calls f for each ready endpoint address of ns/name.
func (s *Server) endpoints(ns, name string, f func(s *discoveryv1.EndpointSlice, e *discoveryv1.Endpoint, addr string)) {
	objs, err := s.slices.ByIndex(ServiceIndex, ns+"/"+name)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, obj := range objs {
		sl, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		for i := range sl.Endpoints {
			e := &sl.Endpoints[i]
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if !seen[a] {
					seen[a] = true
					f(sl, e, a)
				}
			}
		}
	}
}

// endpointHost is the DNS label of a headless endpoint: its hostname, or its dashed IP.
func endpointHost(e *discoveryv1.Endpoint, addr string) string {
	if e.Hostname != nil && *e.Hostname != "" {
		return strings.ToLower(*e.Hostname)
	}
	return strings.NewReplacer(".", "-", ":", "-").Replace(addr)
}

func (s *Server) service(m *dns.Msg, q dns.Question, name, ns, svcName string) bool {
	svc := s.getService(ns, svcName)
	if svc == nil {
		return false
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		if q.Qtype != dns.TypeSRV {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: s.hdr(name, dns.TypeCNAME), Target: dns.Fqdn(svc.Spec.ExternalName)})
		}
	case headless(svc):
		s.endpoints(ns, svcName, func(_ *discoveryv1.EndpointSlice, _ *discoveryv1.Endpoint, addr string) {
			if rr := s.addrRR(name, q.Qtype, addr); rr != nil {
				m.Answer = append(m.Answer, rr)
			}
		})
	default:
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if rr := s.addrRR(name, q.Qtype, ip); rr != nil {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	return true
}

func (s *Server) endpoint(m *dns.Msg, q dns.Question, name, ns, svcName, host string) bool {
	svc := s.getService(ns, svcName)
	if svc == nil {
		return false
	}
	found := false
	s.endpoints(ns, svcName, func(_ *discoveryv1.EndpointSlice, e *discoveryv1.Endpoint, addr string) {
		if endpointHost(e, addr) != host {
			return
		}
		found = true
		if rr := s.addrRR(name, q.Qtype, addr); rr != nil {
			m.Answer = append(m.Answer, rr)
		}
	})
	return found
}

func (s *Server) srv(m *dns.Msg, q dns.Question, name, ns, svcName, port, proto string) bool {
	svc := s.getService(ns, svcName)
	if svc == nil {
		return false
	}
	svcFQDN := svcName + "." + ns + ".svc." + s.zone
	found := false
	for _, p := range svc.Spec.Ports {
		pr := p.Protocol
		if pr == "" {
			pr = corev1.ProtocolTCP
		}
		if p.Name == "" || strings.ToLower(p.Name) != port || strings.ToLower(string(pr)) != proto {
			continue
		}
		found = true
		if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
			continue
		}
		if !headless(svc) {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: s.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(p.Port), Target: svcFQDN})
			for _, ip := range svc.Spec.ClusterIPs {
				for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
					if rr := s.addrRR(svcFQDN, t, ip); rr != nil {
						m.Extra = append(m.Extra, rr)
					}
				}
			}
			continue
		}
		s.endpoints(ns, svcName, func(sl *discoveryv1.EndpointSlice, e *discoveryv1.Endpoint, addr string) {
			for _, ep := range sl.Ports {
				if ep.Name == nil || *ep.Name != p.Name || ep.Port == nil {
					continue
				}
				target := endpointHost(e, addr) + "." + svcFQDN
				m.Answer = append(m.Answer, &dns.SRV{Hdr: s.hdr(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(*ep.Port), Target: target})
				for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
					if rr := s.addrRR(target, t, addr); rr != nil {
						m.Extra = append(m.Extra, rr)
					}
				}
			}
		})
	}
	return found
}

// reverse answers a PTR query for a ClusterIP or an endpoint (a pod IP
// behind a Service: <hostname or dashed IP>.<service>.<ns>.svc.<domain>, as
// CoreDNS answers); false if the address is not the cluster's.
func (s *Server) reverse(m *dns.Msg, q dns.Question, name string) bool {
	ip := reverseIP(name)
	if ip == nil {
		return false
	}
	var targets []string
	if objs, err := s.services.ByIndex(ClusterIPIndex, ip.String()); err == nil {
		for _, obj := range objs {
			if svc, ok := obj.(*corev1.Service); ok {
				targets = append(targets, svc.Name+"."+svc.Namespace+".svc."+s.zone)
			}
		}
	}
	if len(targets) == 0 {
		objs, _ := s.slices.ByIndex(AddressIndex, ip.String())
		for _, obj := range objs {
			sl, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			for i := range sl.Endpoints {
				e := &sl.Endpoints[i]
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				for _, a := range e.Addresses {
					if p := net.ParseIP(a); p == nil || !p.Equal(ip) {
						continue
					}
					t := endpointHost(e, a) + "." + sl.Labels[discoveryv1.LabelServiceName] + "." + sl.Namespace + ".svc." + s.zone
					if !slices.Contains(targets, t) {
						targets = append(targets, t)
					}
				}
			}
		}
	}
	if len(targets) == 0 {
		return false
	}
	if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
		for _, t := range targets {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: s.hdr(name, dns.TypePTR), Ptr: t})
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, s.soa())
	}
	return true
}

// reverseIP parses an in-addr.arpa or ip6.arpa name.
func reverseIP(name string) net.IP {
	name = strings.TrimSuffix(name, ".")
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa"):
		parts := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa"), ".")
		if len(parts) != 4 {
			return nil
		}
		return net.ParseIP(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	case strings.HasSuffix(name, ".ip6.arpa"):
		nibbles := strings.Split(strings.TrimSuffix(name, ".ip6.arpa"), ".")
		if len(nibbles) != 32 {
			return nil
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(nibbles[i])
			if i%4 == 0 && i != 0 {
				b.WriteByte(':')
			}
		}
		return net.ParseIP(b.String())
	}
	return nil
}
