package conntrack

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/kube-proxy/internal/proxy/iptables"
)

// entry is a conntrack entry: a flow from client to dst answered by
// replySrc (the endpoint it was DNATed to).
type entry struct {
	proto                 uint8
	client, dst, replySrc string
	dstPort, replySrcPort uint16
	clientPort            uint16 // every entry's own (set by the test)
}

func (e entry) String() string {
	p := map[uint8]string{unix.IPPROTO_UDP: "udp", unix.IPPROTO_TCP: "tcp"}[e.proto]
	return fmt.Sprintf("%s %s -> %s reply from %s", p, net.JoinHostPort(e.client, fmt.Sprint(e.clientPort)), net.JoinHostPort(e.dst, fmt.Sprint(e.dstPort)), net.JoinHostPort(e.replySrc, fmt.Sprint(e.replySrcPort)))
}

func (e entry) flow() *netlink.ConntrackFlow {
	family := uint8(unix.AF_INET6)
	ip := net.ParseIP
	if net.ParseIP(e.client).To4() != nil {
		family = unix.AF_INET
		ip = func(s string) net.IP { return net.ParseIP(s).To4() } // netlink writes IPv4 addresses as given
	}
	f := &netlink.ConntrackFlow{
		FamilyType: family,
		Forward:    netlink.IPTuple{Protocol: e.proto, SrcIP: ip(e.client), SrcPort: e.clientPort, DstIP: ip(e.dst), DstPort: e.dstPort},
		Reverse:    netlink.IPTuple{Protocol: e.proto, SrcIP: ip(e.replySrc), SrcPort: e.replySrcPort, DstIP: ip(e.client), DstPort: e.clientPort},
		TimeOut:    300,
	}
	if e.proto == unix.IPPROTO_TCP {
		f.ProtoInfo = &netlink.ProtoInfoTCP{State: 3} // ESTABLISHED
	}
	return f
}

// TestDeleteUDP creates IPv4 and IPv6 conntrack entries in a network
// namespace and checks that DeleteUDP removes exactly the UDP entries of
// the flows given, in both families.
func TestDeleteUDP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and conntrack entries in it")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	name := fmt.Sprintf("cxs-ct-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	const udp, tcp = unix.IPPROTO_UDP, unix.IPPROTO_TCP
	stale := []entry{
		{udp, "10.0.0.5", "10.96.0.10", "10.244.1.1", 53, 5353, 0},       // ClusterIP to a removed endpoint
		{udp, "fd00::5", "fd00:96::10", "fd00:244::1", 53, 5353, 0},      // the same in IPv6
		{udp, "fd00::5", "fd00::1", "fd00:244::3", 30053, 5353, 0},       // NodePort to a removed endpoint
		{udp, "fd00::6", "fd00:96::11", "fd00:96::11", 53, 53, 0},        // a ClusterIP that had no endpoint (not NATed)
		{udp, "fd00::6", "fd00::1", "fd00::1", 30054, 30054, 0},          // a NodePort that had none, IPv6
		{udp, "10.0.0.6", "192.168.1.1", "192.168.1.1", 30054, 30054, 0}, // and IPv4
	}
	kept := []entry{
		{udp, "10.0.0.5", "10.96.0.10", "10.244.1.2", 53, 5353, 0},  // another endpoint
		{udp, "fd00::5", "fd00:96::10", "fd00:244::2", 53, 5353, 0}, // another endpoint, IPv6
		{tcp, "fd00::5", "fd00:96::10", "fd00:244::1", 53, 5353, 0}, // TCP
		{udp, "fd00::5", "fd00:96::12", "fd00:244::1", 53, 5353, 0}, // another Service
		{udp, "fd00::7", "fd00::1", "fd00:244::9", 30055, 5353, 0},  // another NodePort
	}
	for i := range stale {
		stale[i].clientPort = uint16(40000 + i)
	}
	for i := range kept {
		kept[i].clientPort = uint16(41000 + i)
	}
	for _, e := range append(slices.Clone(stale), kept...) {
		f := e.flow()
		if err := h.ConntrackCreate(netlink.ConntrackTable, netlink.InetFamily(f.FamilyType), f); err != nil {
			t.Skipf("cannot create conntrack entries here (%s): %v", e, err)
		}
	}
	flows := []iptables.UDPFlow{
		{OrigDst: "10.96.0.10", OrigDstPort: 53, ReplySrc: "10.244.1.1"},
		{OrigDst: "fd00:96::10", OrigDstPort: 53, ReplySrc: "fd00:244::1"},
		{OrigDstPort: 30053, ReplySrc: "fd00:244::3"},
		{OrigDst: "fd00:96::11", OrigDstPort: 53},
		{OrigDstPort: 30054},
	}
	c := &Cleaner{NetNS: nsexec.Path(name)}
	if err := c.DeleteUDP(flows); err != nil {
		t.Fatalf("DeleteUDP: %v", err)
	}
	var got []string
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		list, err := h.ConntrackTableList(netlink.ConntrackTable, family)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range list {
			got = append(got, entry{f.Forward.Protocol, f.Forward.SrcIP.String(), f.Forward.DstIP.String(), f.Reverse.SrcIP.String(), f.Forward.DstPort, f.Reverse.SrcPort, f.Forward.SrcPort}.String())
		}
	}
	var want []string
	for _, e := range kept {
		want = append(want, e.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries left (-want +got):\n%s", diff)
	}

	if err := c.DeleteUDP([]iptables.UDPFlow{{OrigDst: "10.96.0.10", ReplySrc: "fd00::1"}}); err == nil {
		t.Errorf("a flow mixing IPv4 and IPv6: no error")
	}
}

func TestFilterFamilies(t *testing.T) {
	for _, tc := range []struct {
		flow iptables.UDPFlow
		want []netlink.InetFamily
	}{
		{iptables.UDPFlow{OrigDst: "10.96.0.10", OrigDstPort: 53}, []netlink.InetFamily{unix.AF_INET}},
		{iptables.UDPFlow{OrigDstPort: 30053, ReplySrc: "10.244.1.1"}, []netlink.InetFamily{unix.AF_INET}},
		{iptables.UDPFlow{OrigDst: "fd00::10", ReplySrc: "fd00::1"}, []netlink.InetFamily{unix.AF_INET6}},
		{iptables.UDPFlow{OrigDstPort: 30053}, []netlink.InetFamily{unix.AF_INET, unix.AF_INET6}},
	} {
		_, got, err := toFilter(tc.flow)
		if err != nil {
			t.Fatalf("%+v: %v", tc.flow, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: families %v, want %v", tc.flow, got, tc.want)
		}
	}
}
