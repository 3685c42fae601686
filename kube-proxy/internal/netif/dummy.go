// Package netif manages the network interfaces kube-proxy owns through
// netlink: the dummy interface holding the node-local DNS address.
package netif

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrDummyUnsupported says the kernel cannot make dummy interfaces (no dummy module).
var ErrDummyUnsupported = errors.New("dummy interfaces are not supported by this kernel")

// EnsureDummy makes sure a dummy interface name exists, is up and holds
// ip/32 (or /128). h selects the network namespace (nil: the current one).
// It is idempotent.
func EnsureDummy(h *netlink.Handle, name string, ip net.IP) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up %s: %w", name, err)
		}
		la := netlink.NewLinkAttrs()
		la.Name = name
		if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: la}); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("add dummy interface %s: %w", name, ErrDummyUnsupported)
			}
			return fmt.Errorf("add dummy interface %s: %w", name, err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("look up %s: %w", name, err)
		}
	}
	return ensureAddr(h, link, ip)
}

// EnsureAddress adds ip/32 (or /128) to the existing interface name (e.g.
// "lo" when the kernel has no dummy interfaces) and sets it up.
func EnsureAddress(h *netlink.Handle, name string, ip net.IP) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	return ensureAddr(h, link, ip)
}

func ensureAddr(h *netlink.Handle, link netlink.Link, ip net.IP) error {
	name := link.Attrs().Name
	bits := 32
	if ip.To4() == nil {
		bits = 128
	}
	if err := h.AddrReplace(link, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}}); err != nil {
		return fmt.Errorf("add %s to %s: %w", ip, name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// DeleteDummy removes the interface if it exists.
func DeleteDummy(h *netlink.Handle, name string) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return h.LinkDel(link)
}
