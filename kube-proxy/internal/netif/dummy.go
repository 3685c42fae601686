// Package netif manages the network interfaces kube-proxy owns through
// netlink: the dummy interface holding the node-local DNS address. On a
// kernel built without dummy interfaces (CONFIG_DUMMY unset) an ifb device,
// the other kind of software interface that sends nothing anywhere, takes
// its place.
package netif

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrDummyUnsupported says the kernel can make neither dummy nor ifb interfaces.
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
			if !errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("add dummy interface %s: %w", name, err)
			}
			if err := h.LinkAdd(&netlink.Ifb{LinkAttrs: la}); err != nil {
				if errors.Is(err, unix.EOPNOTSUPP) {
					return fmt.Errorf("add dummy interface %s: %w", name, ErrDummyUnsupported)
				}
				return fmt.Errorf("add ifb interface %s (no dummy interfaces in this kernel): %w", name, err)
			}
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

// DeleteDummy removes the dummy (or ifb) interface name if it exists; an
// interface of that name of another kind is not ours and is left alone.
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
	if t := link.Type(); t != "dummy" && t != "ifb" {
		return fmt.Errorf("%s is a %s interface, not a dummy one: leaving it alone", name, link.Type())
	}
	return h.LinkDel(link)
}

// DeleteAddress removes ip/32 (or /128) from the interface name if it is there.
func DeleteAddress(h *netlink.Handle, name string, ip net.IP) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	bits := 32
	if ip.To4() == nil {
		bits = 128
	}
	err = h.AddrDel(link, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from %s: %w", ip, name, err)
	}
	return nil
}

// HandleAt returns a netlink handle in the network namespace at path (a
// file such as /run/netns/NAME); an empty path means the current one.
func HandleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer func() { _ = ns.Close() }()
	return netlink.NewHandleAt(ns)
}
