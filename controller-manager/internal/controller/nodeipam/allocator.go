package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
)

// ErrFull is returned when every node CIDR of the cluster CIDR is taken.
var ErrFull = errors.New("no node CIDR left in the cluster CIDR")

// maxMaskDiff bounds how many node CIDRs a cluster CIDR is split into
// (2^16), as upstream's cidrset does.
const maxMaskDiff = 16

// Allocator hands out the node CIDRs of a cluster CIDR, each at most once.
// It is safe for concurrent use.
type Allocator struct {
	base     *big.Int // the cluster CIDR's first address
	bits     int      // 32 or 128
	mask     int      // node CIDR prefix length
	clusterN int      // cluster CIDR prefix length
	max      int      // number of node CIDRs

	mu   sync.Mutex
	used map[int]bool
	next int // where the next search starts: round robin, as upstream
}

// NewAllocator splits cluster into node CIDRs of prefix length maskSize.
func NewAllocator(cluster string, maskSize int) (*Allocator, error) {
	_, cidr, err := net.ParseCIDR(cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR: %w", err)
	}
	ones, bits := cidr.Mask.Size()
	if maskSize < ones || maskSize > bits {
		return nil, fmt.Errorf("node CIDR mask size %d must be between %d and %d", maskSize, ones, bits)
	}
	if maskSize-ones > maxMaskDiff {
		return nil, fmt.Errorf("node CIDR mask size %d is more than %d bits longer than the cluster CIDR's %d", maskSize, maxMaskDiff, ones)
	}
	ip := cidr.IP
	if bits == 32 {
		ip = ip.To4()
	}
	return &Allocator{
		base: new(big.Int).SetBytes(ip), bits: bits, mask: maskSize, clusterN: ones,
		max: 1 << (maskSize - ones), used: map[int]bool{},
	}, nil
}

// cidr returns the i-th node CIDR.
func (a *Allocator) cidr(i int) string {
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(a.bits-a.mask))
	n := new(big.Int).Add(a.base, off).Bytes()
	ip := make(net.IP, a.bits/8)
	copy(ip[len(ip)-len(n):], n)
	return (&net.IPNet{IP: ip, Mask: net.CIDRMask(a.mask, a.bits)}).String()
}

// index returns the index of a node CIDR of this allocator.
func (a *Allocator) index(cidr string) (int, error) {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return 0, err
	}
	ones, bits := n.Mask.Size()
	if bits != a.bits || ones != a.mask {
		return 0, fmt.Errorf("%s is not a /%d of the cluster CIDR", cidr, a.mask)
	}
	if bits == 32 {
		ip = ip.To4()
	}
	off := new(big.Int).Sub(new(big.Int).SetBytes(ip), a.base)
	off.Rsh(off, uint(a.bits-a.mask))
	if off.Sign() < 0 || !off.IsInt64() || off.Int64() >= int64(a.max) {
		return 0, fmt.Errorf("%s is outside the cluster CIDR", cidr)
	}
	return int(off.Int64()), nil
}

// Allocate returns a free node CIDR and marks it used.
func (a *Allocator) Allocate() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.max {
		i := (a.next + k) % a.max
		if !a.used[i] {
			a.used[i] = true
			a.next = (i + 1) % a.max
			return a.cidr(i), nil
		}
	}
	return "", ErrFull
}

// Occupy marks cidr used (a node already has it). It fails for a CIDR that
// is not one of the allocator's node CIDRs.
func (a *Allocator) Occupy(cidr string) error {
	i, err := a.index(cidr)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[i] = true
	return nil
}

// Release frees cidr; releasing a CIDR that is not the allocator's is a no-op.
func (a *Allocator) Release(cidr string) {
	i, err := a.index(cidr)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.used, i)
}

// Used reports whether cidr is taken.
func (a *Allocator) Used(cidr string) bool {
	i, err := a.index(cidr)
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used[i]
}
