// Package iptables programs Services as iptables rules the way upstream
// kube-proxy's iptables mode does: the whole desired nat and filter state is
// built in memory from Services and EndpointSlices and written with one
// iptables-restore --noflush transaction per table.
package iptables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Chains written by the proxy.
const (
	ChainServices         = "KUBE-SERVICES"
	ChainExternalServices = "KUBE-EXTERNAL-SERVICES"
	ChainNodePorts        = "KUBE-NODEPORTS"
	ChainPostrouting      = "KUBE-POSTROUTING"
	ChainMarkMasq         = "KUBE-MARK-MASQ"
	ChainForward          = "KUBE-FORWARD"

	svcChainPrefix   = "KUBE-SVC-"
	svlChainPrefix   = "KUBE-SVL-"
	extChainPrefix   = "KUBE-EXT-"
	sepChainPrefix   = "KUBE-SEP-"
	defaultMasqMark  = "0x4000"
	defaultAffinityS = 10800
)

// Table names.
const (
	TableNAT    = "nat"
	TableFilter = "filter"
)

// isOwnedChain says whether chain is one of the per-service chains the proxy
// creates and deletes.
func isOwnedChain(chain string) bool {
	for _, p := range []string{svcChainPrefix, svlChainPrefix, extChainPrefix, sepChainPrefix} {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// portProtoHash is upstream's: base32 of sha256(servicePortName+protocol), 16 chars.
func portProtoHash(servicePortName, protocol string) string {
	hash := sha256.Sum256([]byte(servicePortName + protocol))
	return base32.StdEncoding.EncodeToString(hash[:])[:16]
}

func serviceChainName(spn, protocol string) string {
	return svcChainPrefix + portProtoHash(spn, protocol)
}
func localChainName(spn, protocol string) string {
	return svlChainPrefix + portProtoHash(spn, protocol)
}
func externalChainName(spn, protocol string) string {
	return extChainPrefix + portProtoHash(spn, protocol)
}

func endpointChainName(spn, protocol, endpoint string) string {
	hash := sha256.Sum256([]byte(spn + protocol + endpoint))
	return sepChainPrefix + base32.StdEncoding.EncodeToString(hash[:])[:16]
}

// Config is what the rules depend on besides the objects.
type Config struct {
	// NodeName is this node (for the Local traffic policies).
	NodeName string
	// ClusterCIDR is the pod range: traffic to a ClusterIP from outside it is masqueraded.
	ClusterCIDR string
	// MasqueradeAll masquerades all traffic to ClusterIPs.
	MasqueradeAll bool
	// NodePortAddresses, when set, are the node IPs NodePorts answer on;
	// otherwise every local address does.
	NodePortAddresses []string
	// Zone is the node's topology.kubernetes.io/zone label, for the zone
	// hints of EndpointSlices ("" ignores them).
	Zone string
}

// equal says whether c and o make the same rules.
func (c Config) equal(o Config) bool {
	return c.NodeName == o.NodeName && c.ClusterCIDR == o.ClusterCIDR && c.MasqueradeAll == o.MasqueradeAll &&
		c.Zone == o.Zone && slices.Equal(c.NodePortAddresses, o.NodePortAddresses)
}

// Endpoint is one backend of a service port.
type Endpoint struct {
	IP          string
	Port        int32
	NodeName    string
	Hostname    string
	Ready       bool
	Serving     bool
	Terminating bool
	// ZoneHints and NodeHints are the EndpointSlice's topology hints:
	// the zones and nodes this endpoint should serve.
	ZoneHints, NodeHints []string

	addr string // String(), computed once by ServicePorts
}

func (e Endpoint) String() string {
	if e.addr != "" {
		return e.addr
	}
	return net.JoinHostPort(e.IP, strconv.Itoa(int(e.Port)))
}

// ServicePort is one port of a Service with its endpoints.
type ServicePort struct {
	Namespace, Name, PortName string
	Protocol                  corev1.Protocol
	ClusterIPs                []string
	Port                      int32
	NodePort                  int32
	ExternalIPs               []string
	AffinitySeconds           int32 // 0: no ClientIP affinity
	ExternalLocal             bool
	InternalLocal             bool
	Endpoints                 []Endpoint
}

// String is upstream's ServicePortName: "ns/name:port" ("ns/name" for an unnamed port).
func (sp *ServicePort) String() string {
	if sp.PortName == "" {
		return sp.Namespace + "/" + sp.Name
	}
	return sp.Namespace + "/" + sp.Name + ":" + sp.PortName
}

// ServicePorts joins Services with their EndpointSlices. Services without a
// ClusterIP (headless, ExternalName) are skipped. The rules are iptables'
// (IPv4) alone: IPv6 addresses and EndpointSlices are left out, and so are
// IPv6-only Services. The result is sorted.
func ServicePorts(services []*corev1.Service, slices []*discoveryv1.EndpointSlice) []*ServicePort {
	type key struct{ ns, svc, port string }
	eps := make(map[key][]Endpoint, len(slices))
	seen := make(map[key]map[string]bool, len(slices))
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		for _, p := range s.Ports {
			if p.Port == nil {
				continue
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			k := key{s.Namespace, svc, name}
			for _, e := range s.Endpoints {
				if len(e.Addresses) == 0 {
					continue
				}
				ep := Endpoint{
					IP:          e.Addresses[0],
					Port:        *p.Port,
					Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
					Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
				}
				ep.addr = ep.String()
				ep.Serving = ep.Ready
				if e.Conditions.Serving != nil {
					ep.Serving = *e.Conditions.Serving
				}
				if e.NodeName != nil {
					ep.NodeName = *e.NodeName
				}
				if e.Hostname != nil {
					ep.Hostname = *e.Hostname
				}
				if h := e.Hints; h != nil {
					for _, z := range h.ForZones {
						ep.ZoneHints = append(ep.ZoneHints, z.Name)
					}
					for _, n := range h.ForNodes {
						ep.NodeHints = append(ep.NodeHints, n.Name)
					}
				}
				if seen[k] == nil {
					seen[k] = map[string]bool{}
				}
				if seen[k][ep.String()] {
					continue
				}
				seen[k][ep.String()] = true
				eps[k] = append(eps[k], ep)
			}
		}
	}
	var out []*ServicePort
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 {
			ips = []string{svc.Spec.ClusterIP}
		}
		if ips = ipv4Only(ips); len(ips) == 0 {
			continue
		}
		for _, p := range svc.Spec.Ports {
			sp := &ServicePort{
				Namespace:     svc.Namespace,
				Name:          svc.Name,
				PortName:      p.Name,
				Protocol:      p.Protocol,
				ClusterIPs:    ips,
				Port:          p.Port,
				ExternalIPs:   ipv4Only(svc.Spec.ExternalIPs),
				ExternalLocal: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
				InternalLocal: svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal,
			}
			if sp.Protocol == "" {
				sp.Protocol = corev1.ProtocolTCP
			}
			if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
				sp.NodePort = p.NodePort
			}
			if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
				sp.AffinitySeconds = defaultAffinityS
				if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
					sp.AffinitySeconds = *c.ClientIP.TimeoutSeconds
				}
			}
			sp.Endpoints = append([]Endpoint(nil), eps[key{svc.Namespace, svc.Name, p.Name}]...)
			sort.Slice(sp.Endpoints, func(i, j int) bool { return sp.Endpoints[i].addr < sp.Endpoints[j].addr })
			out = append(out, sp)
		}
	}
	keys := make(map[*ServicePort]string, len(out))
	for _, sp := range out {
		keys[sp] = sp.String()
	}
	sort.Slice(out, func(i, j int) bool {
		ki, kj := keys[out[i]], keys[out[j]]
		return ki < kj || (ki == kj && out[i].Protocol < out[j].Protocol)
	})
	return out
}

// Topology modes: which hints restrict a Service's cluster endpoints.
const (
	topologyNone = iota
	topologyNode
	topologyZone
)

// topologyMode is upstream's topologyModeFromHints: an EndpointSlice
// controller that asks for it (trafficDistribution PreferSameNode or
// PreferSameZone, topology-mode Auto) puts hints on every endpoint; the
// proxy then uses only the ready endpoints meant for its node, else those
// for its zone, provided every ready endpoint has such a hint and one of
// them is for this node (zone). Otherwise every endpoint is used.
func topologyMode(eps []Endpoint, node, zone string) int {
	allNode, forNode, allZone, forZone := true, false, true, false
	for _, e := range eps {
		if !e.Ready || e.Terminating {
			continue
		}
		if len(e.NodeHints) == 0 {
			allNode = false
		} else if node != "" && slices.Contains(e.NodeHints, node) {
			forNode = true
		}
		if len(e.ZoneHints) == 0 {
			allZone = false
		} else if zone != "" && slices.Contains(e.ZoneHints, zone) {
			forZone = true
		}
	}
	switch {
	case allNode && forNode:
		return topologyNode
	case allZone && forZone:
		return topologyZone
	}
	return topologyNone
}

// clusterEndpoints returns the endpoints of cluster-wide traffic: the
// usable ones, narrowed by the topology hints (see topologyMode).
func clusterEndpoints(eps []Endpoint, cfg Config) []Endpoint {
	switch topologyMode(eps, cfg.NodeName, cfg.Zone) {
	case topologyNode:
		return usable(slices.DeleteFunc(slices.Clone(eps), func(e Endpoint) bool { return !slices.Contains(e.NodeHints, cfg.NodeName) }), false, "")
	case topologyZone:
		return usable(slices.DeleteFunc(slices.Clone(eps), func(e Endpoint) bool { return !slices.Contains(e.ZoneHints, cfg.Zone) }), false, "")
	}
	return usable(eps, false, "")
}

// ipv4Only returns the IPv4 addresses of ips (nil if none).
func ipv4Only(ips []string) []string {
	var out []string
	for _, s := range ips {
		if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
			out = append(out, s)
		}
	}
	return out
}

// usable returns the endpoints traffic goes to: the ready ones, or, when
// none is ready, the serving terminating ones (as upstream does).
func usable(eps []Endpoint, local bool, node string) []Endpoint {
	ready := make([]Endpoint, 0, len(eps))
	var terminating []Endpoint
	for _, e := range eps {
		if local && e.NodeName != node {
			continue
		}
		switch {
		case e.Ready && !e.Terminating:
			ready = append(ready, e)
		case e.Serving && e.Terminating:
			terminating = append(terminating, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

// lines is the text of some rules and how many there are.
type lines struct {
	b bytes.Buffer
	n int
}

func (l *lines) rule(args ...string) {
	for i, a := range args {
		if i > 0 {
			l.b.WriteByte(' ')
		}
		l.b.WriteString(a)
	}
	l.b.WriteByte('\n')
	l.n++
}

// chainRef names a chain of a table.
type chainRef struct{ table, chain string }

// The chains every service may add rules to, in the order a restore writes them.
var (
	refFilterServices = chainRef{TableFilter, ChainServices}
	refFilterExternal = chainRef{TableFilter, ChainExternalServices}
	refFilterForward  = chainRef{TableFilter, ChainForward}
	refNATServices    = chainRef{TableNAT, ChainServices}
	refNATNodePorts   = chainRef{TableNAT, ChainNodePorts}
	refNATPostrouting = chainRef{TableNAT, ChainPostrouting}
	refNATMarkMasq    = chainRef{TableNAT, ChainMarkMasq}

	// topOrder is the order of the top-level chains in a restore.
	topOrder = []chainRef{refFilterServices, refFilterExternal, refFilterForward, refNATServices, refNATNodePorts, refNATPostrouting, refNATMarkMasq}
	// topRules is the order their rules are written in.
	topRules = []chainRef{refFilterForward, refFilterServices, refFilterExternal, refNATPostrouting, refNATMarkMasq, refNATNodePorts, refNATServices}
)

// udpPort is what the conntrack clean-up needs to know of a UDP service port.
type udpPort struct {
	name      string   // ServicePortName
	ips       []string // ClusterIPs and external IPs
	port      int32
	nodePort  int32
	endpoints []string // IPs traffic may be sent to
}

// serviceRules is what one Service contributes to the ruleset: rules in the
// shared top-level chains, and its own nat chains (KUBE-SVC-*, KUBE-SVL-*,
// KUBE-EXT-*, KUBE-SEP-*) with their rules.
type serviceRules struct {
	sig       string // the versions of the objects it was made from
	gen       int    // the Proxier's Config generation it was made by
	shared    map[chainRef]*lines
	chains    []string
	rules     lines
	endpoints int
	udp       []udpPort
}

func (s *serviceRules) top(ref chainRef) *lines {
	l := s.shared[ref]
	if l == nil {
		l = &lines{}
		l.b.Grow(256)
		s.shared[ref] = l
	}
	return l
}

// count is the number of rules the service has in table.
func (s *serviceRules) count(table string) int {
	n := 0
	if table == TableNAT {
		n = s.rules.n
	}
	for ref, l := range s.shared {
		if ref.table == table {
			n += l.n
		}
	}
	return n
}

// sameShared says whether s adds exactly what o adds to the top-level
// chains (both nil: true).
func (s *serviceRules) sameShared(o *serviceRules) bool {
	if s == nil || o == nil {
		return s == o
	}
	if len(s.shared) != len(o.shared) {
		return false
	}
	for ref, l := range s.shared {
		ol := o.shared[ref]
		if ol == nil || ol.n != l.n || !bytes.Equal(ol.b.Bytes(), l.b.Bytes()) {
			return false
		}
	}
	return true
}

// sameChains says whether s writes its own chains exactly as o does.
func (s *serviceRules) sameChains(o *serviceRules) bool {
	return o != nil && slices.Equal(s.chains, o.chains) && bytes.Equal(s.rules.b.Bytes(), o.rules.b.Bytes())
}

// buildService generates the rules of one Service's ports. With
// omitComments (upstream's "large cluster" mode) the rules of the KUBE-SVC-*
// and KUBE-SEP-* chains carry no comments, which makes a restore smaller.
func buildService(cfg Config, ports []*ServicePort, omitComments bool) *serviceRules {
	s := &serviceRules{shared: map[chainRef]*lines{}}
	active := map[string]bool{}
	size := 0
	for _, sp := range ports {
		size += 512 + 320*len(sp.Endpoints)
	}
	s.rules.b.Grow(size)
	for _, sp := range ports {
		s.endpoints += len(sp.Endpoints)
		spn := sp.String()
		proto := strings.ToLower(string(sp.Protocol))
		svcChain := serviceChainName(spn, proto)
		var svlChain, extChain string
		if sp.InternalLocal || sp.ExternalLocal {
			svlChain = localChainName(spn, proto)
		}
		if sp.NodePort != 0 || len(sp.ExternalIPs) > 0 {
			extChain = externalChainName(spn, proto)
		}

		clusterEps := clusterEndpoints(sp.Endpoints, cfg)
		localEps := usable(sp.Endpoints, true, cfg.NodeName)
		internalEps, externalEps := clusterEps, clusterEps
		if sp.InternalLocal {
			internalEps = localEps
		}
		if sp.ExternalLocal {
			externalEps = localEps
		}
		hasExternal := sp.NodePort != 0 || len(sp.ExternalIPs) > 0
		usesSVC := len(clusterEps) > 0 && (!sp.InternalLocal || hasExternal)
		usesSVL := len(localEps) > 0 && (sp.InternalLocal || (hasExternal && sp.ExternalLocal))
		usesEXT := hasExternal && len(externalEps) > 0

		if sp.Protocol == corev1.ProtocolUDP {
			u := udpPort{name: spn, ips: append(slices.Clone(sp.ClusterIPs), sp.ExternalIPs...), port: sp.Port, nodePort: sp.NodePort}
			for _, e := range append(slices.Clone(clusterEps), localEps...) {
				if !slices.Contains(u.endpoints, e.IP) {
					u.endpoints = append(u.endpoints, e.IP)
				}
			}
			s.udp = append(s.udp, u)
		}

		internalTarget := svcChain
		if sp.InternalLocal {
			internalTarget = svlChain
		}
		externalTarget := svcChain
		if usesEXT {
			externalTarget = extChain
		}
		protoArgs := []string{"-m", proto, "-p", proto}

		// Cluster IPs.
		for _, ip := range sp.ClusterIPs {
			if len(internalEps) == 0 {
				msg, target := " has no endpoints", "REJECT"
				if len(clusterEps) > 0 {
					msg, target = " has no local endpoints", "DROP"
				}
				s.top(refFilterServices).rule(append(append([]string{"-A", ChainServices, "-m", "comment", "--comment", comment(spn + msg)}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", target)...)
				continue
			}
			s.top(refNATServices).rule(append(append([]string{"-A", ChainServices, "-m", "comment", "--comment", comment(spn + " cluster IP")}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", internalTarget)...)
		}
		// External IPs.
		noExternal, noExternalTarget := " has no endpoints", "REJECT"
		if len(clusterEps) > 0 {
			noExternal, noExternalTarget = " has no local endpoints", "DROP"
		}
		for _, ip := range sp.ExternalIPs {
			if len(externalEps) == 0 {
				s.top(refFilterExternal).rule(append(append([]string{"-A", ChainExternalServices, "-m", "comment", "--comment", comment(spn + noExternal)}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", noExternalTarget)...)
				continue
			}
			s.top(refNATServices).rule(append(append([]string{"-A", ChainServices, "-m", "comment", "--comment", comment(spn + " external IP")}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", externalTarget)...)
		}
		// NodePort.
		if sp.NodePort != 0 {
			if len(externalEps) == 0 {
				s.top(refFilterExternal).rule(append(append([]string{"-A", ChainExternalServices, "-m", "comment", "--comment", comment(spn + noExternal), "-m", "addrtype", "--dst-type", "LOCAL"}, protoArgs...), "--dport", itoa(sp.NodePort), "-j", noExternalTarget)...)
			} else {
				s.top(refNATNodePorts).rule(append(append([]string{"-A", ChainNodePorts, "-m", "comment", "--comment", comment(spn)}, protoArgs...), "--dport", itoa(sp.NodePort), "-j", externalTarget)...)
			}
		}

		if usesEXT {
			s.chains = append(s.chains, extChain)
			active[extChain] = true
			if sp.ExternalLocal {
				if cfg.ClusterCIDR != "" {
					s.rules.rule("-A", extChain, "-m", "comment", "--comment", comment("pod traffic for "+spn+" external destinations"), "-s", cfg.ClusterCIDR, "-j", svcChain)
				}
				s.rules.rule("-A", extChain, "-m", "comment", "--comment", comment("masquerade LOCAL traffic for "+spn+" external destinations"), "-m", "addrtype", "--src-type", "LOCAL", "-j", ChainMarkMasq)
				s.rules.rule("-A", extChain, "-m", "comment", "--comment", comment("route LOCAL traffic for "+spn+" external destinations"), "-m", "addrtype", "--src-type", "LOCAL", "-j", svcChain)
				s.rules.rule("-A", extChain, "-j", svlChain)
			} else {
				s.rules.rule("-A", extChain, "-m", "comment", "--comment", comment("masquerade traffic for "+spn+" external destinations"), "-j", ChainMarkMasq)
				s.rules.rule("-A", extChain, "-j", svcChain)
			}
		}
		if usesSVC {
			s.chains = append(s.chains, svcChain)
			active[svcChain] = true
			for _, ip := range sp.ClusterIPs {
				args := append([]string{"-A", svcChain, "-m", "comment", "--comment", comment(spn + " cluster IP")}, protoArgs...)
				args = append(args, "-d", ip, "--dport", itoa(sp.Port))
				switch {
				case cfg.MasqueradeAll:
					s.rules.rule(append(args, "-j", ChainMarkMasq)...)
				case cfg.ClusterCIDR != "":
					s.rules.rule(append(args, "!", "-s", cfg.ClusterCIDR, "-j", ChainMarkMasq)...)
				}
			}
			s.writeBalance(active, svcChain, sp, spn, proto, clusterEps, omitComments)
		}
		if usesSVL {
			s.chains = append(s.chains, svlChain)
			active[svlChain] = true
			s.writeBalance(active, svlChain, sp, spn, proto, localEps, omitComments)
		}
	}
	return s
}

// writeBalance writes chain's random choice among eps and their KUBE-SEP chains.
func (s *serviceRules) writeBalance(active map[string]bool, chain string, sp *ServicePort, spn, proto string, eps []Endpoint, omitComments bool) {
	withComment := func(args []string, c string) []string {
		if omitComments {
			return args
		}
		return append(args, "-m", "comment", "--comment", comment(c))
	}
	sepChains := make([]string, len(eps))
	for i, e := range eps {
		sepChains[i] = endpointChainName(spn, proto, e.String())
	}
	if sp.AffinitySeconds > 0 {
		for i, e := range eps {
			args := withComment([]string{"-A", chain}, spn+" -> "+e.String())
			s.rules.rule(append(args, "-m", "recent", "--name", sepChains[i], "--rcheck", "--seconds", itoa(sp.AffinitySeconds), "--reap", "-j", sepChains[i])...)
		}
	}
	n := len(eps)
	for i, e := range eps {
		args := withComment([]string{"-A", chain}, spn+" -> "+e.String())
		if i < n-1 {
			args = append(args, "-m", "statistic", "--mode", "random", "--probability", probability(n-i))
		}
		s.rules.rule(append(args, "-j", sepChains[i])...)
	}
	for i, e := range eps {
		sep := sepChains[i]
		if active[sep] {
			continue // shared by SVC and SVL
		}
		active[sep] = true
		s.chains = append(s.chains, sep)
		s.rules.rule(append(withComment([]string{"-A", sep}, spn), "-s", e.IP, "-j", ChainMarkMasq)...)
		args := withComment([]string{"-A", sep}, spn)
		if sp.AffinitySeconds > 0 {
			args = append(args, "-m", "recent", "--name", sep, "--set")
		}
		args = append(args, "-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", e.String())
		s.rules.rule(args...)
	}
}

// staticRules returns the rules of the top-level chains that depend on no
// Service, and the last rule(s) of the nat KUBE-SERVICES chain.
func staticRules(cfg Config) (top map[chainRef]*lines, servicesTail *lines) {
	top = map[chainRef]*lines{refNATPostrouting: {}, refNATMarkMasq: {}, refFilterForward: {}}
	masqMark := defaultMasqMark + "/" + defaultMasqMark
	post := top[refNATPostrouting]
	post.rule("-A", ChainPostrouting, "-m", "mark", "!", "--mark", masqMark, "-j", "RETURN")
	post.rule("-A", ChainPostrouting, "-j", "MARK", "--xor-mark", defaultMasqMark)
	post.rule("-A", ChainPostrouting, "-m", "comment", "--comment", comment("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE", "--random-fully")
	top[refNATMarkMasq].rule("-A", ChainMarkMasq, "-j", "MARK", "--or-mark", defaultMasqMark)
	fwd := top[refFilterForward]
	fwd.rule("-A", ChainForward, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	fwd.rule("-A", ChainForward, "-m", "comment", "--comment", comment("kubernetes forwarding rules"), "-m", "mark", "--mark", masqMark, "-j", "ACCEPT")
	fwd.rule("-A", ChainForward, "-m", "comment", "--comment", comment("kubernetes forwarding conntrack rule"), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")

	servicesTail = &lines{}
	note := comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
	if len(cfg.NodePortAddresses) == 0 {
		servicesTail.rule("-A", ChainServices, "-m", "comment", "--comment", note, "-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainNodePorts)
	} else {
		for _, ip := range cfg.NodePortAddresses {
			servicesTail.rule("-A", ChainServices, "-m", "comment", "--comment", note, "-d", ip, "-j", ChainNodePorts)
		}
	}
	return top, servicesTail
}

// topChainText assembles the top-level chains from the static rules and the
// services' contributions (in the order given), with their rule counts.
func topChainText(cfg Config, services func(yield func(*serviceRules) bool)) (map[chainRef][]byte, map[chainRef]int) {
	static, tail := staticRules(cfg)
	var bufs = map[chainRef]*bytes.Buffer{}
	counts := map[chainRef]int{}
	for _, ref := range topOrder {
		bufs[ref] = &bytes.Buffer{}
		if l := static[ref]; l != nil {
			bufs[ref].Write(l.b.Bytes())
			counts[ref] += l.n
		}
	}
	sizes := map[chainRef]int{}
	for s := range services {
		for ref, l := range s.shared {
			sizes[ref] += l.b.Len()
		}
	}
	for ref, n := range sizes {
		bufs[ref].Grow(n)
	}
	for s := range services {
		for _, ref := range topOrder {
			if l := s.shared[ref]; l != nil {
				bufs[ref].Write(l.b.Bytes())
				counts[ref] += l.n
			}
		}
	}
	bufs[refNATServices].Write(tail.b.Bytes())
	counts[refNATServices] += tail.n
	out := make(map[chainRef][]byte, len(bufs))
	for ref, b := range bufs {
		out[ref] = b.Bytes()
	}
	return out, counts
}

// restoreText is an iptables-restore input being built.
type restoreText struct {
	decl, rules, del map[string]*bytes.Buffer // per table
	counts           map[string]int           // rules written per table
}

func newRestoreText() *restoreText {
	r := &restoreText{decl: map[string]*bytes.Buffer{}, rules: map[string]*bytes.Buffer{}, del: map[string]*bytes.Buffer{}, counts: map[string]int{}}
	for _, t := range []string{TableFilter, TableNAT} {
		r.decl[t], r.rules[t], r.del[t] = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	}
	return r
}

func (r *restoreText) chain(table, name string) {
	r.decl[table].WriteString(":" + name + " - [0:0]\n")
}

func (r *restoreText) write(table string, text []byte, n int) {
	r.rules[table].Write(text)
	r.counts[table] += n
}

// delete flushes and deletes chain (after every rule that might jump to it
// has been rewritten, as the deletions come last).
func (r *restoreText) delete(table, name string) {
	r.chain(table, name)
	r.del[table].WriteString("-X " + name + "\n")
}

// bytes returns the restore input (nat first, as a full sync's);
// tables with nothing to write are left out.
func (r *restoreText) bytes() []byte {
	var b bytes.Buffer
	size := 64
	for _, t := range []string{TableNAT, TableFilter} {
		size += r.decl[t].Len() + r.rules[t].Len() + r.del[t].Len()
	}
	b.Grow(size)
	for _, t := range []string{TableNAT, TableFilter} {
		if r.decl[t].Len() == 0 && r.rules[t].Len() == 0 {
			continue
		}
		b.WriteString("*" + t + "\n")
		b.Write(r.decl[t].Bytes())
		b.Write(r.rules[t].Bytes())
		b.Write(r.del[t].Bytes())
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// Ruleset is the generated state of both tables.
type Ruleset struct {
	Filter, NAT []byte
	// Chains are the per-service chains of the nat table in this ruleset.
	Chains map[string]bool
	// Rules counts the rules per table.
	Rules map[string]int
}

// groupByService splits sorted ports into runs of the same Service.
func groupByService(ports []*ServicePort) [][]*ServicePort {
	var out [][]*ServicePort
	for i := 0; i < len(ports); {
		j := i + 1
		for j < len(ports) && ports[j].Namespace == ports[i].Namespace && ports[j].Name == ports[i].Name {
			j++
		}
		out = append(out, ports[i:j])
		i = j
	}
	return out
}

// Build generates the whole ruleset for ports, as a full sync writes it.
// stale names existing per-service nat chains to delete if they are no
// longer wanted.
func Build(cfg Config, ports []*ServicePort, stale map[string]bool) *Ruleset {
	var out bytes.Buffer
	fw := newFullWriter(&out)
	var svcs []*serviceRules
	for _, g := range groupByService(ports) {
		s := buildService(cfg, g, false)
		svcs = append(svcs, s)
		fw.service(s)
	}
	top, counts := topChainText(cfg, slices.Values(svcs))
	var staleChains []string
	for c := range stale {
		if !fw.active[c] && isOwnedChain(c) {
			staleChains = append(staleChains, c)
		}
	}
	slices.Sort(staleChains)
	fw.end(top, counts, staleChains)
	text := out.Bytes()
	i := bytes.Index(text, []byte("*"+TableFilter+"\n"))
	return &Ruleset{NAT: text[:i], Filter: text[i:], Chains: fw.active, Rules: fw.counts}
}

// fullWriter writes a full sync's iptables-restore input while the rules
// are generated, so that iptables-restore can parse it as it comes: the nat
// table first (its top-level chains declared, hence flushed, then each
// Service's chains, then the top-level chains' rules, which jump to them,
// then the deletion of stale chains), then the filter table.
type fullWriter struct {
	w      io.Writer
	err    error
	active map[string]bool // the per-service chains written
	counts map[string]int  // rules written per table
}

func newFullWriter(w io.Writer) *fullWriter {
	f := &fullWriter{w: w, active: map[string]bool{}, counts: map[string]int{}}
	f.str("*" + TableNAT + "\n")
	for _, ref := range topOrder {
		if ref.table == TableNAT {
			f.str(":" + ref.chain + " - [0:0]\n")
		}
	}
	return f
}

func (f *fullWriter) write(b []byte) {
	if f.err == nil {
		_, f.err = f.w.Write(b)
	}
}

func (f *fullWriter) str(s string) {
	if f.err == nil {
		_, f.err = io.WriteString(f.w, s)
	}
}

// service writes the chains of one Service.
func (f *fullWriter) service(s *serviceRules) {
	for _, c := range s.chains {
		f.str(":" + c + " - [0:0]\n")
		f.active[c] = true
	}
	f.write(s.rules.b.Bytes())
	f.counts[TableNAT] += s.rules.n
}

// end writes the top-level chains and the deletion of stale, and returns
// the first write error.
func (f *fullWriter) end(top map[chainRef][]byte, counts map[chainRef]int, stale []string) error {
	for _, ref := range topRules {
		if ref.table == TableNAT {
			f.write(top[ref])
			f.counts[TableNAT] += counts[ref]
		}
	}
	for _, c := range stale {
		f.str(":" + c + " - [0:0]\n")
	}
	for _, c := range stale {
		f.str("-X " + c + "\n")
	}
	f.str("COMMIT\n*" + TableFilter + "\n")
	for _, ref := range topOrder {
		if ref.table == TableFilter {
			f.str(":" + ref.chain + " - [0:0]\n")
		}
	}
	for _, ref := range topRules {
		if ref.table == TableFilter {
			f.write(top[ref])
			f.counts[TableFilter] += counts[ref]
		}
	}
	f.str("COMMIT\n")
	return f.err
}

// streamBuffer is a buffer one goroutine writes while another reads it
// (iptables-restore's stdin): reads wait for more data until it is closed.
// It keeps everything written.
type streamBuffer struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	off    int
	closed bool
}

func newStreamBuffer(size int) *streamBuffer {
	s := &streamBuffer{buf: make([]byte, 0, size)}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *streamBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf = append(s.buf, p...)
	s.mu.Unlock()
	s.cond.Broadcast()
	return len(p), nil
}

func (s *streamBuffer) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.off == len(s.buf) && !s.closed {
		s.cond.Wait()
	}
	if s.off == len(s.buf) {
		return 0, io.EOF
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}

// Close ends the stream: reads return io.EOF once they have read everything.
func (s *streamBuffer) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Broadcast()
	return nil
}

// Bytes returns everything written.
func (s *streamBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf
}

func itoa[T ~int32 | ~int](v T) string { return strconv.Itoa(int(v)) }

// comment quotes a comment as iptables-save does.
func comment(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return strconv.Quote(s)
	}
	return s
}

// probabilities caches the --probability of the first endpoints counts.
var probabilities = func() []string {
	out := make([]string, 256)
	for n := 1; n < len(out); n++ {
		out[n] = fmt.Sprintf("%0.10f", 1.0/float64(n))
	}
	return out
}()

// probability is 1/n as upstream writes it.
func probability(n int) string {
	if n < len(probabilities) {
		return probabilities[n]
	}
	return fmt.Sprintf("%0.10f", 1.0/float64(n))
}
