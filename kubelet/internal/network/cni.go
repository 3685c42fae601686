// Package network sets up pod networking: network namespaces and CNI
// (libcni with the standard plugins).
package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"go.uber.org/zap"
)

// DefaultPodCIDR is the single-node range used when the node has no podCIDR.
const DefaultPodCIDR = "10.88.0.0/16"

// DefaultConfFile is the name of the config the kubelet writes.
const DefaultConfFile = "10-coxswain.conflist"

// Config configures the CNI manager.
type Config struct {
	BinDirs  []string
	ConfDir  string
	CacheDir string
	// DataDir holds host-local's allocations in the config the kubelet writes.
	DataDir string
	// Bridge is the bridge of the config the kubelet writes.
	Bridge string
	Logger *zap.Logger
}

// Manager runs the CNI plugins for pods.
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	mu   sync.Mutex
	list *libcni.NetworkConfigList
}

// New returns a Manager; the network config is loaded (or written) by
// EnsureConfig.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "cxs0"
	}
	// An explicit exec: libcni's lazy default is not safe for concurrent use.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return &Manager{cfg: cfg, cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, exec)}, nil
}

// BridgeConfig is the bridge + host-local network config the kubelet writes
// when the config folder is empty.
func BridgeConfig(bridge, podCIDR, dataDir string) ([]byte, error) {
	_, ipn, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", podCIDR, err)
	}
	dst := "0.0.0.0/0"
	if ipn.IP.To4() == nil {
		dst = "::/0"
	}
	ipam := map[string]any{
		"type":   "host-local",
		"ranges": [][]map[string]string{{{"subnet": ipn.String()}}},
		"routes": []map[string]string{{"dst": dst}},
	}
	if dataDir != "" {
		ipam["dataDir"] = dataDir
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "coxswain",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam":        ipam,
			},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// EnsureConfig loads the first network config of the config folder; when
// there is none it writes the bridge config for podCIDR (DefaultPodCIDR if
// empty).
func (m *Manager) EnsureConfig(podCIDR string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.list != nil {
		return nil
	}
	list, err := m.load()
	if err != nil {
		return err
	}
	if list == nil {
		if podCIDR == "" {
			podCIDR = DefaultPodCIDR
		}
		data, err := BridgeConfig(m.cfg.Bridge, podCIDR, m.cfg.DataDir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(m.cfg.ConfDir, 0o755); err != nil {
			return err
		}
		p := filepath.Join(m.cfg.ConfDir, DefaultConfFile)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		m.cfg.Logger.Info("wrote CNI config", zap.String("path", p), zap.String("podCIDR", podCIDR))
		if list, err = libcni.ConfListFromBytes(data); err != nil {
			return err
		}
	}
	m.list = list
	return nil
}

func (m *Manager) load() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(m.cfg.ConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		if strings.HasSuffix(f, ".conflist") {
			l, err := libcni.ConfListFromFile(f)
			if err != nil {
				m.cfg.Logger.Warn("bad CNI config", zap.String("file", f), zap.Error(err))
				continue
			}
			return l, nil
		}
		c, err := libcni.ConfFromFile(f)
		if err != nil {
			m.cfg.Logger.Warn("bad CNI config", zap.String("file", f), zap.Error(err))
			continue
		}
		l, err := libcni.ConfListFromConf(c)
		if err != nil {
			continue
		}
		return l, nil
	}
	return nil, nil
}

// Configured says whether a network config is loaded (EnsureConfig
// succeeded once).
func (m *Manager) Configured() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.list != nil
}

// Pod identifies a pod to the plugins.
type Pod struct {
	ID        string // the sandbox id
	Namespace string
	Name      string
	UID       string
	NetNS     string
}

func (m *Manager) rt(p Pod) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.ID,
		NetNS:       p.NetNS,
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
			{"K8S_POD_UID", p.UID},
		},
	}
}

// Add attaches the pod's namespace (loopback, then the pod network) and
// returns its IPs.
func (m *Manager) Add(ctx context.Context, p Pod) ([]net.IP, error) {
	m.mu.Lock()
	list := m.list
	m.mu.Unlock()
	if list == nil {
		return nil, fmt.Errorf("no CNI network config")
	}
	// The loopback interface comes up through netlink, as the loopback
	// plugin would bring it up, without a plugin process to run.
	if err := LoopbackUp(p.NetNS); err != nil {
		return nil, fmt.Errorf("loopback: %w", err)
	}
	res, err := m.cni.AddNetworkList(ctx, list, m.rt(p))
	if err != nil {
		return nil, fmt.Errorf("CNI add %s: %w", list.Name, err)
	}
	return resultIPs(res)
}

func resultIPs(res types.Result) ([]net.IP, error) {
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI result: %w", err)
	}
	var ips []net.IP
	for _, ip := range r.IPs {
		ips = append(ips, ip.Address.IP)
	}
	return ips, nil
}

// Del detaches the pod; netns may already be gone ("").
func (m *Manager) Del(ctx context.Context, p Pod) error {
	m.mu.Lock()
	list := m.list
	m.mu.Unlock()
	if list == nil {
		return nil
	}
	if err := m.cni.DelNetworkList(ctx, list, m.rt(p)); err != nil {
		return fmt.Errorf("CNI del %s: %w", list.Name, err)
	}
	return nil
}

// CachedIPs are the IPs the last Add gave the pod, from the CNI result
// cache: a restarted kubelet adopting a sandbox learns its IPs there.
func (m *Manager) CachedIPs(p Pod) ([]net.IP, error) {
	m.mu.Lock()
	list := m.list
	m.mu.Unlock()
	if list == nil {
		return nil, fmt.Errorf("no CNI network config")
	}
	res, err := m.cni.GetNetworkListCachedResult(list, m.rt(p))
	if err != nil {
		return nil, fmt.Errorf("CNI cached result of %s: %w", p.ID, err)
	}
	if res == nil {
		return nil, nil
	}
	return resultIPs(res)
}
