// Package conntrack deletes the kernel's connection-tracking entries of
// Service traffic through netlink, so that UDP flows DNATed to an endpoint
// that went away (or created while a Service had no endpoint) do not keep
// sending packets into the void until they expire.
package conntrack

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/coxswain/coxswain/kube-proxy/internal/proxy/iptables"
)

// Cleaner deletes conntrack entries in one network namespace.
type Cleaner struct {
	// NetNS is the file of the network namespace; empty means the process's own.
	NetNS string
}

var _ iptables.Conntrack = (*Cleaner)(nil)

func (c *Cleaner) handle() (*netlink.Handle, error) {
	if c.NetNS == "" {
		return netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	ns, err := netns.GetFromPath(c.NetNS)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", c.NetNS, err)
	}
	defer func() { _ = ns.Close() }()
	return netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
}

// DeleteUDP deletes the UDP entries matching any of flows, IPv4 and IPv6.
func (c *Cleaner) DeleteUDP(flows []iptables.UDPFlow) error {
	h, err := c.handle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	byFamily := map[netlink.InetFamily][]netlink.CustomConntrackFilter{}
	for _, f := range flows {
		filter, families, err := toFilter(f)
		if err != nil {
			return err
		}
		for _, family := range families {
			byFamily[family] = append(byFamily[family], filter)
		}
	}
	var errs []error
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		filters := byFamily[family]
		if len(filters) == 0 {
			continue
		}
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, family, filters...); err != nil {
			errs = append(errs, fmt.Errorf("delete %s conntrack entries: %w", familyName(family), err))
		}
	}
	return errors.Join(errs...)
}

func familyName(f netlink.InetFamily) string {
	if f == unix.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// toFilter returns the filter of f and the address families whose tables
// it applies to: that of its addresses (which must agree), or both when it
// names none (a NodePort's flows).
func toFilter(f iptables.UDPFlow) (*netlink.ConntrackFilter, []netlink.InetFamily, error) {
	filter := &netlink.ConntrackFilter{}
	var families []netlink.InetFamily
	if err := filter.AddProtocol(unix.IPPROTO_UDP); err != nil {
		return nil, nil, err
	}
	for _, a := range []struct {
		ip string
		tp netlink.ConntrackFilterType
	}{{f.OrigDst, netlink.ConntrackOrigDstIP}, {f.ReplySrc, netlink.ConntrackReplySrcIP}} {
		if a.ip == "" {
			continue
		}
		ip := net.ParseIP(a.ip)
		if ip == nil {
			return nil, nil, fmt.Errorf("conntrack filter: bad IP %q", a.ip)
		}
		family := netlink.InetFamily(unix.AF_INET6)
		if ip4 := ip.To4(); ip4 != nil {
			family, ip = unix.AF_INET, ip4
		}
		if len(families) > 0 && families[0] != family {
			return nil, nil, fmt.Errorf("conntrack filter: %s and %s are of different families", f.OrigDst, f.ReplySrc)
		}
		families = []netlink.InetFamily{family}
		if err := filter.AddIP(a.tp, ip); err != nil {
			return nil, nil, err
		}
	}
	if len(families) == 0 {
		families = []netlink.InetFamily{unix.AF_INET, unix.AF_INET6}
	}
	if f.OrigDstPort != 0 {
		if err := filter.AddPort(netlink.ConntrackOrigDstPort, uint16(f.OrigDstPort)); err != nil {
			return nil, nil, err
		}
	}
	return filter, families, nil
}
