package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/pkg/informer"
)

// RouteProtocol is the routing protocol number (rtm_protocol) of the
// kubelet's host-gw routes: the kubelet only ever changes or removes
// routes of this protocol, so routes others made stay as they are.
// ("ip route show proto 118" lists them.)
const RouteProtocol netlink.RouteProtocol = 118

// HostGWConfig configures the host-gw routes.
type HostGWConfig struct {
	// NodeName is this node: no route is made for its own pod CIDRs.
	NodeName string
	// NetNS is the network namespace (a bind-mounted file) the routes
	// are kept in; "" is the kubelet's own.
	NetNS string
	// Protocol marks the routes; 0 is RouteProtocol.
	Protocol netlink.RouteProtocol
	// ResyncInterval is how often the routes are checked again without a
	// change of the nodes (a route someone removed comes back): 1 min.
	ResyncInterval time.Duration
	Logger         *zap.Logger
}

// HostGW keeps a route to every other node's pod CIDRs via that node's
// InternalIP ("host-gw"), as the nodes come and go.
type HostGW struct {
	cfg    HostGWConfig
	handle *netlink.Handle
	kickC  chan struct{}

	mu   sync.Mutex
	last map[string]string // dst -> gateway, as last synced (for logs)
}

// NewHostGW opens a netlink handle in the configured namespace.
func NewHostGW(cfg HostGWConfig) (*HostGW, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = RouteProtocol
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = time.Minute
	}
	var h *netlink.Handle
	var err error
	if cfg.NetNS == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		ns, nerr := netns.GetFromPath(cfg.NetNS)
		if nerr != nil {
			return nil, fmt.Errorf("host-gw routes: open network namespace %s: %w", cfg.NetNS, nerr)
		}
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		_ = ns.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("host-gw routes: netlink handle: %w", err)
	}
	return &HostGW{cfg: cfg, handle: h, kickC: make(chan struct{}, 1), last: map[string]string{}}, nil
}

// Close closes the netlink handle. The routes stay: pods on other nodes
// stay reachable while the kubelet restarts.
func (g *HostGW) Close() { g.handle.Close() }

// Handler is the Node informer's handler: any change syncs the routes.
func (g *HostGW) Handler() informer.ResourceEventHandler {
	kick := func(any) { g.kick() }
	return informer.ResourceEventHandlerFuncs{
		AddFunc:    kick,
		UpdateFunc: func(_, obj any) { g.kick() },
		DeleteFunc: kick,
	}
}

func (g *HostGW) kick() {
	select {
	case g.kickC <- struct{}{}:
	default:
	}
}

// Run syncs the routes with the nodes list returns, once synced says the
// list is complete, at every change and every ResyncInterval, until ctx
// ends. A failed sync is retried after a second.
func (g *HostGW) Run(ctx context.Context, list func() []*corev1.Node, synced func() bool) {
	if !informer.WaitForCacheSync(ctx, synced) {
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kickC:
		case <-timer.C:
		}
		next := g.cfg.ResyncInterval
		if err := g.Sync(list()); err != nil {
			g.cfg.Logger.Warn("sync host-gw routes", zap.Error(err))
			next = time.Second
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// desiredRoutes are the routes to the other nodes' pod CIDRs (dst ->
// gateway), never one to (or overlapping) this node's own CIDRs; a node
// without an InternalIP of the CIDR's family gets none.
func desiredRoutes(self string, nodes []*corev1.Node) map[string]net.IP {
	var own []*net.IPNet
	for _, n := range nodes {
		if n.Name == self {
			own = append(own, podCIDRs(n)...)
		}
	}
	out := map[string]net.IP{}
	for _, n := range nodes {
		if n.Name == self || n.DeletionTimestamp != nil {
			continue
		}
		for _, dst := range podCIDRs(n) {
			if overlapsAny(dst, own) {
				continue
			}
			if gw := internalIP(n, dst.IP.To4() != nil); gw != nil {
				out[dst.String()] = gw
			}
		}
	}
	return out
}

func podCIDRs(n *corev1.Node) []*net.IPNet {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var out []*net.IPNet
	for _, c := range cidrs {
		if _, ipn, err := net.ParseCIDR(c); err == nil {
			out = append(out, ipn)
		}
	}
	return out
}

func overlapsAny(n *net.IPNet, others []*net.IPNet) bool {
	for _, o := range others {
		if o.Contains(n.IP) || n.Contains(o.IP) {
			return true
		}
	}
	return false
}

// internalIP is the node's first InternalIP of the family.
func internalIP(n *corev1.Node, v4 bool) net.IP {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip := net.ParseIP(a.Address)
		if ip != nil && (ip.To4() != nil) == v4 {
			return ip
		}
	}
	return nil
}

// Sync makes the node's routes of the kubelet's protocol those to the
// other nodes' pod CIDRs: it replaces the missing or changed ones and
// removes the rest (those of deleted nodes). A destination that already
// has a route of another protocol is left to it.
func (g *HostGW) Sync(nodes []*corev1.Node) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := desiredRoutes(g.cfg.NodeName, nodes)
	have, err := g.handle.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{Protocol: g.cfg.Protocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list host-gw routes: %w", err)
	}
	var errs []error
	current := map[string]netlink.Route{}
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		dst := r.Dst.String()
		if gw, ok := want[dst]; ok && r.Gw.Equal(gw) {
			current[dst] = r
			continue
		}
		if err := g.handle.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", dst, r.Gw, err))
			continue
		}
		g.cfg.Logger.Info("removed host-gw route", zap.String("dst", dst), zap.Stringer("via", r.Gw))
		delete(g.last, dst)
	}
	dsts := make([]string, 0, len(want))
	for dst := range want {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		if _, ok := current[dst]; ok {
			continue
		}
		gw := want[dst]
		_, ipn, _ := net.ParseCIDR(dst)
		family := netlink.FAMILY_V4
		if ipn.IP.To4() == nil {
			family = netlink.FAMILY_V6
		}
		others, err := g.handle.RouteListFiltered(family, &netlink.Route{Dst: ipn, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("list routes to %s: %w", dst, err))
			continue
		}
		if len(others) > 0 {
			if g.last[dst] != "foreign" {
				g.cfg.Logger.Warn("not routing a node's pod CIDR: a route of another protocol has it",
					zap.String("dst", dst), zap.Stringer("via", gw), zap.Int("protocol", int(others[0].Protocol)))
				g.last[dst] = "foreign"
			}
			continue
		}
		r := &netlink.Route{Dst: ipn, Gw: gw, Protocol: g.cfg.Protocol, Table: unix.RT_TABLE_MAIN, Family: family}
		if err := g.handle.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", dst, gw, err))
			continue
		}
		g.last[dst] = gw.String()
		g.cfg.Logger.Info("added host-gw route", zap.String("dst", dst), zap.Stringer("via", gw))
	}
	return errors.Join(errs...)
}
