// Package node registers the kubelet's Node, keeps its status and renews
// its Lease in kube-node-lease.
package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
)

// LeaseNamespace holds the nodes' Leases.
const LeaseNamespace = "kube-node-lease"

// KubeletVersion is reported in nodeInfo.
const KubeletVersion = "v1.37.2-coxswain"

// Config configures the node manager.
type Config struct {
	Name           string
	NodeIP         string
	Labels         map[string]string
	Taints         []corev1.Taint
	MaxPods        int
	RootDir        string // for ephemeral-storage
	RuntimeVersion string // "containerd://1.6.20"
	KubeletPort    int    // the kubelet API's port, reported in daemonEndpoints (0: 10250)
	LeaseDuration  time.Duration
	RenewInterval  time.Duration
	StatusInterval time.Duration
	// Pressure reports the node's resource pressure (the eviction
	// manager); nil: never under pressure.
	Pressure PressureSource
	Logger   *zap.Logger
}

// PressureSource reports whether the node is under a pressure condition:
// MemoryPressure, DiskPressure or PIDPressure.
type PressureSource interface {
	UnderPressure(t corev1.NodeConditionType) bool
}

// pressureTaints are the NoSchedule taints of the pressure conditions.
// Upstream's node lifecycle controller (TaintNodesByCondition) sets them
// from the conditions; Coxswain's controller-manager has no such
// controller, so the kubelet keeps them with the conditions it reports.
var pressureTaints = map[corev1.NodeConditionType]string{
	corev1.NodeMemoryPressure: corev1.TaintNodeMemoryPressure,
	corev1.NodeDiskPressure:   corev1.TaintNodeDiskPressure,
	corev1.NodePIDPressure:    corev1.TaintNodePIDPressure,
}

// Manager owns the Node object and the Lease.
type Manager struct {
	cfg    Config
	c      *client.Client
	logger *zap.Logger
}

// New returns a node manager.
func New(c *client.Client, cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 40 * time.Second
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = 10 * time.Second
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	return &Manager{cfg: cfg, c: c, logger: cfg.Logger}
}

// Register creates the Node, or adopts an existing one (labels and taints
// merged), and writes its status.
func (m *Manager) Register(ctx context.Context) (*corev1.Node, error) {
	// Controllers (node IPAM, node lifecycle) write the new Node at once;
	// a write of ours that lost the race is retried on a fresh read.
	for attempt := 0; ; attempt++ {
		n, err := m.register(ctx)
		if err == nil || !apierrors.IsConflict(err) || attempt >= 10 {
			return n, err
		}
	}
}

func (m *Manager) register(ctx context.Context) (*corev1.Node, error) {
	nodes := client.For[*corev1.Node](m.c)
	want := m.initialNode()
	n, err := nodes.Create(ctx, "", want)
	if apierrors.IsAlreadyExists(err) {
		n, err = nodes.Get(ctx, "", m.cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("get node: %w", err)
		}
		changed := false
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for k, v := range want.Labels {
			if n.Labels[k] != v {
				n.Labels[k], changed = v, true
			}
		}
		for _, t := range want.Spec.Taints {
			if !hasTaint(n.Spec.Taints, t) {
				n.Spec.Taints, changed = append(n.Spec.Taints, t), true
			}
		}
		if changed {
			if n, err = nodes.Update(ctx, "", n); err != nil {
				return nil, fmt.Errorf("update node: %w", err)
			}
		}
	} else if err != nil {
		return nil, fmt.Errorf("register node: %w", err)
	}
	return m.updateStatus(ctx, n, true)
}

func hasTaint(ts []corev1.Taint, t corev1.Taint) bool {
	for _, x := range ts {
		if x.Key == t.Key && x.Effect == t.Effect {
			return true
		}
	}
	return false
}

func (m *Manager) initialNode() *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   m.cfg.Name,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	for k, v := range m.cfg.Labels {
		labels[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: m.cfg.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: m.cfg.Taints},
	}
}

// Run renews the Lease and refreshes the status until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	lease := time.NewTicker(m.cfg.RenewInterval)
	defer lease.Stop()
	status := time.NewTicker(m.cfg.StatusInterval)
	defer status.Stop()
	m.renewLease(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			m.renewLease(ctx)
		case <-status.C:
			n, err := client.For[*corev1.Node](m.c).Get(ctx, "", m.cfg.Name)
			if err != nil {
				m.logger.Warn("get node", zap.Error(err))
				continue
			}
			if _, err := m.updateStatus(ctx, n, false); err != nil {
				m.logger.Warn("update node status", zap.Error(err))
			}
		}
	}
}

func (m *Manager) renewLease(ctx context.Context) {
	leases := client.For[*coordinationv1.Lease](m.c)
	now := metav1.NewMicroTime(time.Now())
	dur := int32(m.cfg.LeaseDuration / time.Second)
	l, err := leases.Get(ctx, LeaseNamespace, m.cfg.Name)
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: m.cfg.Name, Namespace: LeaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       &m.cfg.Name,
				LeaseDurationSeconds: &dur,
				RenewTime:            &now,
			},
		}
		if n, err := client.For[*corev1.Node](m.c).Get(ctx, "", m.cfg.Name); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
		}
		if _, err := leases.Create(ctx, LeaseNamespace, l); err != nil {
			m.logger.Warn("create lease", zap.Error(err))
		}
		return
	}
	if err != nil {
		m.logger.Warn("get lease", zap.Error(err))
		return
	}
	l.Spec.HolderIdentity = &m.cfg.Name
	l.Spec.LeaseDurationSeconds = &dur
	l.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, LeaseNamespace, l); err != nil {
		m.logger.Warn("renew lease", zap.Error(err))
	}
}

// updateStatus writes the node's status when it changed (conditions'
// heartbeat times aside) or force is set; heartbeats refresh at least every
// minute.
func (m *Manager) updateStatus(ctx context.Context, n *corev1.Node, force bool) (*corev1.Node, error) {
	n, err := m.syncPressureTaints(ctx, n)
	if err != nil {
		return nil, err
	}
	st := m.status(n.Status)
	old := n.Status.DeepCopy()
	stale := true
	for _, c := range old.Conditions {
		if c.Type == corev1.NodeReady && time.Since(c.LastHeartbeatTime.Time) < time.Minute {
			stale = false
		}
	}
	if !force && !stale && equality.Semantic.DeepEqual(withoutHeartbeats(*old), withoutHeartbeats(st)) {
		return n, nil
	}
	n = n.DeepCopy()
	n.Status = st
	out, err := client.For[*corev1.Node](m.c).UpdateStatus(ctx, "", n)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// underPressure reports the pressure condition t.
func (m *Manager) underPressure(t corev1.NodeConditionType) bool {
	return m.cfg.Pressure != nil && m.cfg.Pressure.UnderPressure(t)
}

// syncPressureTaints adds the NoSchedule taint of each pressure condition
// the node has and removes those of the others.
func (m *Manager) syncPressureTaints(ctx context.Context, n *corev1.Node) (*corev1.Node, error) {
	var taints []corev1.Taint
	changed := false
	for _, t := range n.Spec.Taints {
		keep := true
		for cond, key := range pressureTaints {
			if t.Key == key && t.Effect == corev1.TaintEffectNoSchedule && !m.underPressure(cond) {
				keep, changed = false, true
			}
		}
		if keep {
			taints = append(taints, t)
		}
	}
	for _, cond := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		t := corev1.Taint{Key: pressureTaints[cond], Effect: corev1.TaintEffectNoSchedule}
		if m.underPressure(cond) && !hasTaint(taints, t) {
			now := metav1.Now()
			t.TimeAdded = &now
			taints, changed = append(taints, t), true
		}
	}
	if !changed {
		return n, nil
	}
	n = n.DeepCopy()
	n.Spec.Taints = taints
	out, err := client.For[*corev1.Node](m.c).Update(ctx, "", n)
	if err != nil {
		return nil, fmt.Errorf("update the node's pressure taints: %w", err)
	}
	return out, nil
}

func withoutHeartbeats(s corev1.NodeStatus) corev1.NodeStatus {
	s = *s.DeepCopy()
	for i := range s.Conditions {
		s.Conditions[i].LastHeartbeatTime = metav1.Time{}
	}
	return s
}

// status computes the node's status from the machine.
func (m *Manager) status(old corev1.NodeStatus) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(m.cfg.MaxPods), resource.DecimalSI),
	}
	if st := diskTotal(m.cfg.RootDir); st > 0 {
		capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(st, resource.BinarySI)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == s {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	// The pressure conditions, with upstream's reasons and messages.
	pressure := func(t corev1.NodeConditionType, trueReason, trueMsg, falseReason, falseMsg string) corev1.NodeCondition {
		if m.underPressure(t) {
			return cond(t, corev1.ConditionTrue, trueReason, trueMsg)
		}
		return cond(t, corev1.ConditionFalse, falseReason, falseMsg)
	}
	hostname, _ := os.Hostname()
	addrs := []corev1.NodeAddress{}
	if m.cfg.NodeIP != "" {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: m.cfg.NodeIP})
	}
	addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: m.cfg.Name})
	_ = hostname
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Phase:       "",
		Conditions: []corev1.NodeCondition{
			pressure(corev1.NodeMemoryPressure, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
				"KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			pressure(corev1.NodeDiskPressure, "KubeletHasDiskPressure", "kubelet has disk pressure",
				"KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			pressure(corev1.NodePIDPressure, "KubeletHasInsufficientPID", "kubelet has insufficient PID available",
				"KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses:       addrs,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: m.kubeletPort()}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               readTrim("/etc/machine-id"),
			BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           kernelVersion(),
			OSImage:                 osImage(),
			ContainerRuntimeVersion: m.cfg.RuntimeVersion,
			KubeletVersion:          KubeletVersion,
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
		},
		Images: old.Images,
	}
}

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func osImage() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func diskTotal(dir string) int64 {
	var st unix.Statfs_t
	if dir == "" || unix.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Blocks) * st.Bsize
}

// DefaultNodeIP is the first global unicast IPv4 address of the machine
// (the address of the default route's interface when there is one).
func DefaultNodeIP() string {
	if c, err := net.Dial("udp4", "203.0.113.1:9"); err == nil {
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		if ip.IsGlobalUnicast() {
			return ip.String()
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	return "127.0.0.1"
}

func (m *Manager) kubeletPort() int32 {
	if m.cfg.KubeletPort > 0 {
		return int32(m.cfg.KubeletPort)
	}
	return 10250
}

// PressureFunc is a PressureSource of a function.
type PressureFunc func(t corev1.NodeConditionType) bool

// UnderPressure implements PressureSource.
func (f PressureFunc) UnderPressure(t corev1.NodeConditionType) bool { return f(t) }
