package netif

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestEnsureDummyInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	name := fmt.Sprintf("cxs-netif-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ip := net.ParseIP("169.254.20.10")
	for range 2 { // idempotent
		err := EnsureDummy(h, "coxswain-dns", ip)
		if errors.Is(err, ErrDummyUnsupported) {
			// Still check the fallback the proxy uses: the address on lo.
			if err := EnsureAddress(h, "lo", ip); err != nil {
				t.Fatal(err)
			}
			t.Skip("this kernel has neither dummy nor ifb interfaces; the lo fallback works")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	link, err := h.LinkByName("coxswain-dns")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || !addrs[0].IP.Equal(ip) {
		t.Errorf("addresses: got %v, want [%s/32]", addrs, ip)
	}
	if typ := link.Type(); typ != "dummy" && typ != "ifb" {
		t.Errorf("interface type %s, want dummy (or ifb without CONFIG_DUMMY)", typ)
	}
	t.Logf("made a %s interface", link.Type())
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("interface is not up")
	}
	if err := DeleteDummy(h, "coxswain-dns"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("coxswain-dns"); err == nil {
		t.Errorf("interface still exists after DeleteDummy")
	}
}
