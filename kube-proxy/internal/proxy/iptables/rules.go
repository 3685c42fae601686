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
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

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
}

func (e Endpoint) String() string { return net.JoinHostPort(e.IP, strconv.Itoa(int(e.Port))) }

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
// ClusterIP (headless, ExternalName) are skipped. The result is sorted.
func ServicePorts(services []*corev1.Service, slices []*discoveryv1.EndpointSlice) []*ServicePort {
	type key struct{ ns, svc, port string }
	eps := map[key][]Endpoint{}
	seen := map[key]map[string]bool{}
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
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
		for _, p := range svc.Spec.Ports {
			sp := &ServicePort{
				Namespace:     svc.Namespace,
				Name:          svc.Name,
				PortName:      p.Name,
				Protocol:      p.Protocol,
				ClusterIPs:    ips,
				Port:          p.Port,
				ExternalIPs:   svc.Spec.ExternalIPs,
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
			sort.Slice(sp.Endpoints, func(i, j int) bool { return sp.Endpoints[i].String() < sp.Endpoints[j].String() })
			out = append(out, sp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].String() < out[j].String() || (out[i].String() == out[j].String() && out[i].Protocol < out[j].Protocol)
	})
	return out
}

// usable returns the endpoints traffic goes to: the ready ones, or, when
// none is ready, the serving terminating ones (as upstream does).
func usable(eps []Endpoint, local bool, node string) []Endpoint {
	var ready, terminating []Endpoint
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

// Ruleset is the generated state of both tables.
type Ruleset struct {
	Filter, NAT []byte
	// Chains are the per-service chains of the nat table in this ruleset.
	Chains map[string]bool
	// Rules counts the rules per table.
	Rules map[string]int
}

type table struct {
	name   string
	chains []string
	rules  bytes.Buffer
	count  int
}

func (t *table) chain(c string) { t.chains = append(t.chains, c) }

func (t *table) rule(args ...string) {
	t.rules.WriteString(strings.Join(args, " "))
	t.rules.WriteByte('\n')
	t.count++
}

func (t *table) bytes(stale []string) []byte {
	var b bytes.Buffer
	b.WriteString("*" + t.name + "\n")
	for _, c := range t.chains {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	for _, c := range stale {
		b.WriteString(":" + c + " - [0:0]\n")
	}
	b.Write(t.rules.Bytes())
	for _, c := range stale {
		b.WriteString("-X " + c + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// comment quotes a comment as iptables-save does.
func comment(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return strconv.Quote(s)
	}
	return s
}

// Build generates the rules for ports. stale names existing per-service nat
// chains to delete if they are no longer wanted.
func Build(cfg Config, ports []*ServicePort, stale map[string]bool) *Ruleset {
	filter := &table{name: TableFilter}
	nat := &table{name: TableNAT}
	for _, c := range []string{ChainServices, ChainExternalServices, ChainForward} {
		filter.chain(c)
	}
	for _, c := range []string{ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq} {
		nat.chain(c)
	}
	masqMark := defaultMasqMark + "/" + defaultMasqMark

	nat.rule("-A", ChainPostrouting, "-m", "mark", "!", "--mark", masqMark, "-j", "RETURN")
	nat.rule("-A", ChainPostrouting, "-j", "MARK", "--xor-mark", defaultMasqMark)
	nat.rule("-A", ChainPostrouting, "-m", "comment", "--comment", comment("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE", "--random-fully")
	nat.rule("-A", ChainMarkMasq, "-j", "MARK", "--or-mark", defaultMasqMark)

	filter.rule("-A", ChainForward, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	filter.rule("-A", ChainForward, "-m", "comment", "--comment", comment("kubernetes forwarding rules"), "-m", "mark", "--mark", masqMark, "-j", "ACCEPT")
	filter.rule("-A", ChainForward, "-m", "comment", "--comment", comment("kubernetes forwarding conntrack rule"), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")

	active := map[string]bool{}
	var svcRules, perChain table
	for _, sp := range ports {
		spn := sp.String()
		proto := strings.ToLower(string(sp.Protocol))
		svcChain := serviceChainName(spn, proto)
		svlChain := localChainName(spn, proto)
		extChain := externalChainName(spn, proto)

		clusterEps := usable(sp.Endpoints, false, "")
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
			c := comment(spn + " cluster IP")
			if len(internalEps) == 0 {
				msg, target := " has no endpoints", "REJECT"
				if len(clusterEps) > 0 {
					msg, target = " has no local endpoints", "DROP"
				}
				filter.rule(append(append([]string{"-A", ChainServices, "-m", "comment", "--comment", comment(spn + msg)}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", target)...)
				continue
			}
			svcRules.rule(append(append([]string{"-A", ChainServices, "-m", "comment", "--comment", c}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", internalTarget)...)
		}
		// External IPs.
		noExternal, noExternalTarget := " has no endpoints", "REJECT"
		if len(clusterEps) > 0 {
			noExternal, noExternalTarget = " has no local endpoints", "DROP"
		}
		for _, ip := range sp.ExternalIPs {
			if len(externalEps) == 0 {
				filter.rule(append(append([]string{"-A", ChainExternalServices, "-m", "comment", "--comment", comment(spn + noExternal)}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", noExternalTarget)...)
				continue
			}
			svcRules.rule(append(append([]string{"-A", ChainServices, "-m", "comment", "--comment", comment(spn + " external IP")}, protoArgs...), "-d", ip, "--dport", itoa(sp.Port), "-j", externalTarget)...)
		}
		// NodePort.
		if sp.NodePort != 0 {
			if len(externalEps) == 0 {
				filter.rule(append(append([]string{"-A", ChainExternalServices, "-m", "comment", "--comment", comment(spn + noExternal), "-m", "addrtype", "--dst-type", "LOCAL"}, protoArgs...), "--dport", itoa(sp.NodePort), "-j", noExternalTarget)...)
			} else {
				nat.rule(append(append([]string{"-A", ChainNodePorts, "-m", "comment", "--comment", comment(spn)}, protoArgs...), "--dport", itoa(sp.NodePort), "-j", externalTarget)...)
			}
		}

		if usesEXT {
			nat.chain(extChain)
			active[extChain] = true
			if sp.ExternalLocal {
				if cfg.ClusterCIDR != "" {
					perChain.rule("-A", extChain, "-m", "comment", "--comment", comment("pod traffic for "+spn+" external destinations"), "-s", cfg.ClusterCIDR, "-j", svcChain)
				}
				perChain.rule("-A", extChain, "-m", "comment", "--comment", comment("masquerade LOCAL traffic for "+spn+" external destinations"), "-m", "addrtype", "--src-type", "LOCAL", "-j", ChainMarkMasq)
				perChain.rule("-A", extChain, "-m", "comment", "--comment", comment("route LOCAL traffic for "+spn+" external destinations"), "-m", "addrtype", "--src-type", "LOCAL", "-j", svcChain)
				perChain.rule("-A", extChain, "-j", svlChain)
			} else {
				perChain.rule("-A", extChain, "-m", "comment", "--comment", comment("masquerade traffic for "+spn+" external destinations"), "-j", ChainMarkMasq)
				perChain.rule("-A", extChain, "-j", svcChain)
			}
		}
		if usesSVC {
			nat.chain(svcChain)
			active[svcChain] = true
			for _, ip := range sp.ClusterIPs {
				args := append([]string{"-A", svcChain, "-m", "comment", "--comment", comment(spn + " cluster IP")}, protoArgs...)
				args = append(args, "-d", ip, "--dport", itoa(sp.Port))
				switch {
				case cfg.MasqueradeAll:
					perChain.rule(append(args, "-j", ChainMarkMasq)...)
				case cfg.ClusterCIDR != "":
					perChain.rule(append(args, "!", "-s", cfg.ClusterCIDR, "-j", ChainMarkMasq)...)
				}
			}
			writeBalance(&perChain, nat, active, svcChain, sp, spn, proto, clusterEps)
		}
		if usesSVL {
			nat.chain(svlChain)
			active[svlChain] = true
			writeBalance(&perChain, nat, active, svlChain, sp, spn, proto, localEps)
		}
	}
	nat.rules.Write(svcRules.rules.Bytes())
	nat.count += svcRules.count
	if len(cfg.NodePortAddresses) == 0 {
		nat.rule("-A", ChainServices, "-m", "comment", "--comment", comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"), "-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainNodePorts)
	} else {
		for _, ip := range cfg.NodePortAddresses {
			nat.rule("-A", ChainServices, "-m", "comment", "--comment", comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"), "-d", ip, "-j", ChainNodePorts)
		}
	}
	nat.rules.Write(perChain.rules.Bytes())
	nat.count += perChain.count

	var staleChains []string
	for c := range stale {
		if !active[c] && isOwnedChain(c) {
			staleChains = append(staleChains, c)
		}
	}
	slices.Sort(staleChains)
	return &Ruleset{
		Filter: filter.bytes(nil),
		NAT:    nat.bytes(staleChains),
		Chains: active,
		Rules:  map[string]int{TableFilter: filter.count, TableNAT: nat.count},
	}
}

// writeBalance writes chain's random choice among eps and their KUBE-SEP chains.
func writeBalance(rules, nat *table, active map[string]bool, chain string, sp *ServicePort, spn, proto string, eps []Endpoint) {
	sepChains := make([]string, len(eps))
	for i, e := range eps {
		sepChains[i] = endpointChainName(spn, proto, e.String())
	}
	if sp.AffinitySeconds > 0 {
		for i, e := range eps {
			rules.rule("-A", chain, "-m", "comment", "--comment", comment(spn+" -> "+e.String()), "-m", "recent", "--name", sepChains[i], "--rcheck", "--seconds", itoa(sp.AffinitySeconds), "--reap", "-j", sepChains[i])
		}
	}
	n := len(eps)
	for i, e := range eps {
		args := []string{"-A", chain, "-m", "comment", "--comment", comment(spn + " -> " + e.String())}
		if i < n-1 {
			args = append(args, "-m", "statistic", "--mode", "random", "--probability", fmt.Sprintf("%0.10f", 1.0/float64(n-i)))
		}
		rules.rule(append(args, "-j", sepChains[i])...)
	}
	for i, e := range eps {
		sep := sepChains[i]
		if active[sep] {
			continue // shared by SVC and SVL
		}
		active[sep] = true
		nat.chain(sep)
		rules.rule("-A", sep, "-m", "comment", "--comment", comment(spn), "-s", e.IP, "-j", ChainMarkMasq)
		args := []string{"-A", sep, "-m", "comment", "--comment", comment(spn)}
		if sp.AffinitySeconds > 0 {
			args = append(args, "-m", "recent", "--name", sep, "--set")
		}
		args = append(args, "-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", e.String())
		rules.rule(args...)
	}
}

func itoa[T ~int32 | ~int](v T) string { return strconv.Itoa(int(v)) }
