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
		filter, family, err := toFilter(f)
		if err != nil {
			return err
		}
		byFamily[family] = append(byFamily[family], filter)
	}
	var errs []error
	for family, filters := range byFamily {
		if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, family, filters...); err != nil {
			errs = append(errs, fmt.Errorf("delete conntrack entries: %w", err))
		}
	}
	return errors.Join(errs...)
}

func toFilter(f iptables.UDPFlow) (*netlink.ConntrackFilter, netlink.InetFamily, error) {
	filter := &netlink.ConntrackFilter{}
	family := netlink.InetFamily(unix.AF_INET)
	if err := filter.AddProtocol(unix.IPPROTO_UDP); err != nil {
		return nil, 0, err
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
			return nil, 0, fmt.Errorf("conntrack filter: bad IP %q", a.ip)
		}
		if ip.To4() == nil {
			family = unix.AF_INET6
		}
		if err := filter.AddIP(a.tp, ip); err != nil {
			return nil, 0, err
		}
	}
	if f.OrigDstPort != 0 {
		if err := filter.AddPort(netlink.ConntrackOrigDstPort, uint16(f.OrigDstPort)); err != nil {
			return nil, 0, err
		}
	}
	return filter, family, nil
}
