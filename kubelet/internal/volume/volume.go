// Package volume sets up a pod's volumes on the node, as upstream's kubelet
// volume plugins do, under <root>/pods/<uid>/volumes/<kind>/<name>:
//
//   - emptyDir: a directory (medium Memory: a tmpfs of sizeLimit);
//   - hostPath: the host's path, after the checks of its type;
//   - configMap, secret, downwardAPI and projected (with service-account
//     tokens requested from the API and refreshed as upstream): files written
//     atomically (a timestamped directory swapped in through the ..data
//     symlink) and brought up to date while the pod runs; all but configMap
//     on a tmpfs, so that secrets never touch the node's disk;
//   - persistentVolumeClaim: the hostPath or local PersistentVolume the
//     claim is bound to.
//
// Containers bind-mount the volumes' host paths (Mounts), subPaths through
// bind mounts under <root>/pods/<uid>/volume-subpaths made from a
// descriptor of the path resolved within the volume. TearDown unmounts and
// removes all of it.
package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/expansion"
	"github.com/coxswain/coxswain/pkg/client"

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

// Volume is one of a pod's volumes on the node.
type Volume interface {
	// SetUp makes the volume ready for the pod's containers, or brings its
	// content up to date, and returns the host path they bind-mount.
	SetUp(ctx context.Context, pod *corev1.Pod) (string, error)
	// TearDown unmounts and removes what SetUp made on the node.
	TearDown() error
}

// Plugin directory names, upstream's.
const (
	kindEmptyDir    = "kubernetes.io~empty-dir"
	kindConfigMap   = "kubernetes.io~configmap"
	kindSecret      = "kubernetes.io~secret"
	kindDownwardAPI = "kubernetes.io~downward-api"
	kindProjected   = "kubernetes.io~projected"
)

// Recorder records Events about an object; pkg/events' *Recorder is one.
type Recorder interface {
	Eventf(obj runtime.Object, eventType, reason, action, format string, args ...any)
}

// Config configures a Manager.
type Config struct {
	// RootDir is the kubelet's root directory; pods' volumes live in
	// RootDir/pods/<uid>.
	RootDir string
	// Client reads PersistentVolumeClaims and PersistentVolumes, watches
	// the ConfigMaps and Secrets that pods use and requests the tokens of
	// serviceAccountToken projections.
	Client *client.Client
	// OnChange is called (it must not block) when a ConfigMap or Secret a
	// pod uses changed: the pod's volumes should be set up again.
	OnChange func(uid types.UID)
	// NodeAllocatable is what resourceFieldRef reports for a limit a
	// container does not set; nil: the machine's CPUs and memory.
	NodeAllocatable func() corev1.ResourceList
	// Recorder records FailedMount Events; nil: none.
	Recorder Recorder
	Logger   *zap.Logger
}

// Manager sets up and tears down the node's pod volumes.
type Manager struct {
	cfg        Config
	logger     *zap.Logger
	configMaps *objectCache[*corev1.ConfigMap]
	secrets    *objectCache[*corev1.Secret]
	tokens     *tokenManager

	mu   sync.Mutex
	pods map[types.UID]*podVolumes
}

// podVolumes are the volumes of one pod; only its pod worker uses them.
type podVolumes struct {
	vols map[string]*podVolume
}

type podVolume struct {
	v        Volume
	readOnly bool // containers always mount it read-only
	refresh  bool // set up again at every sync
	path     string
	ready    bool
}

// New returns a volume manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(types.UID) {}
	}
	if cfg.NodeAllocatable == nil {
		cfg.NodeAllocatable = machineAllocatable
	}
	m := &Manager{cfg: cfg, logger: cfg.Logger, pods: map[types.UID]*podVolumes{}}
	m.configMaps = newObjectCache[*corev1.ConfigMap](cfg.Client, "configmap", cfg.OnChange, cfg.Logger.Named("configmaps"))
	m.secrets = newObjectCache[*corev1.Secret](cfg.Client, "secret", cfg.OnChange, cfg.Logger.Named("secrets"))
	m.tokens = newTokenManager(apiTokenRequester(cfg.Client), cfg.Logger.Named("tokens"))
	return m
}

// Wait waits for the watches of ConfigMaps and Secrets to stop, which they
// do once the contexts given to RegisterPod are done or the pods are torn
// down.
func (m *Manager) Wait() {
	m.configMaps.wait()
	m.secrets.wait()
}

// PodDir is the pod's directory under the kubelet's root.
func (m *Manager) PodDir(uid types.UID) string {
	return filepath.Join(m.cfg.RootDir, "pods", string(uid))
}

func (m *Manager) volumeDir(uid types.UID, kind, name string) string {
	return filepath.Join(m.PodDir(uid), "volumes", kind, name)
}

// RegisterPod watches the ConfigMaps and Secrets the pod's volumes use
// (upstream's watch-based manager: one watch per object, shared by the
// pods using it), until ctx is done or TearDown. It may be called again
// with the same pod.
func (m *Manager) RegisterPod(ctx context.Context, pod *corev1.Pod) {
	var cms, secrets []string
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i].VolumeSource
		switch {
		case v.ConfigMap != nil:
			cms = append(cms, v.ConfigMap.Name)
		case v.Secret != nil:
			secrets = append(secrets, v.Secret.SecretName)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cms = append(cms, s.ConfigMap.Name)
				}
				if s.Secret != nil {
					secrets = append(secrets, s.Secret.Name)
				}
			}
		}
	}
	m.configMaps.register(ctx, pod.UID, pod.Namespace, cms)
	m.secrets.register(ctx, pod.UID, pod.Namespace, secrets)
}

// Mounted is a volume set up on the node.
type Mounted struct {
	HostPath string
	ReadOnly bool // containers mount it read-only whatever the volumeMount says
}

// Error is a volume that failed to set up.
type Error struct {
	Volume string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// SetUp sets up the pod's volumes, or brings the content of those that
// follow the API (configMap, secret, downwardAPI, projected) up to date. It
// returns the volumes that are set up (a volume that failed to refresh
// keeps its last content) and an *Error for each that failed, also
// recorded as a FailedMount Event.
func (m *Manager) SetUp(ctx context.Context, pod *corev1.Pod) (map[string]Mounted, []error) {
	pv := m.podVolumes(pod)
	out := make(map[string]Mounted, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		name := pod.Spec.Volumes[i].Name
		v := pv.vols[name]
		if v.ready && !v.refresh {
			out[name] = Mounted{HostPath: v.path, ReadOnly: v.readOnly}
			continue
		}
		var path string
		var err error
		if v.v == nil {
			err = fmt.Errorf("unsupported volume source %s", volumeKind(&pod.Spec.Volumes[i].VolumeSource))
		} else {
			path, err = v.v.SetUp(ctx, pod)
		}
		if err != nil {
			ve := &Error{Volume: name, Err: err}
			errs = append(errs, ve)
			m.logger.Info("volume set up failed", zap.String("pod", pod.Namespace+"/"+pod.Name), zap.String("volume", name), zap.Error(err))
			m.event(pod, corev1.EventTypeWarning, "FailedMount", ve.Error())
			if v.ready {
				out[name] = Mounted{HostPath: v.path, ReadOnly: v.readOnly}
			}
			continue
		}
		v.path, v.ready = path, true
		out[name] = Mounted{HostPath: path, ReadOnly: v.readOnly}
	}
	return out, errs
}

func (m *Manager) event(pod *corev1.Pod, eventType, reason, msg string) {
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.Eventf(pod, eventType, reason, "", "%s", msg)
	}
}

// podVolumes returns the pod's volumes, made at its first set up.
func (m *Manager) podVolumes(pod *corev1.Pod) *podVolumes {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pv, ok := m.pods[pod.UID]; ok {
		return pv
	}
	pv := &podVolumes{vols: map[string]*podVolume{}}
	for i := range pod.Spec.Volumes {
		pv.vols[pod.Spec.Volumes[i].Name] = m.newVolume(pod, &pod.Spec.Volumes[i])
	}
	m.pods[pod.UID] = pv
	return pv
}

// newVolume returns the volume of the pod's spec; its v is nil for a
// source this kubelet does not support.
func (m *Manager) newVolume(pod *corev1.Pod, vol *corev1.Volume) *podVolume {
	src := &vol.VolumeSource
	uid := pod.UID
	switch {
	case src.EmptyDir != nil:
		return &podVolume{v: &emptyDir{dir: m.volumeDir(uid, kindEmptyDir, vol.Name), source: src.EmptyDir}}
	case src.HostPath != nil:
		return &podVolume{v: &hostPath{source: src.HostPath}}
	case src.ConfigMap != nil:
		return &podVolume{v: newConfigMapVolume(m, m.volumeDir(uid, kindConfigMap, vol.Name), src.ConfigMap), readOnly: true, refresh: true}
	case src.Secret != nil:
		return &podVolume{v: newSecretVolume(m, m.volumeDir(uid, kindSecret, vol.Name), src.Secret), readOnly: true, refresh: true}
	case src.DownwardAPI != nil:
		return &podVolume{v: newDownwardAPIVolume(m, m.volumeDir(uid, kindDownwardAPI, vol.Name), src.DownwardAPI), readOnly: true, refresh: true}
	case src.Projected != nil:
		return &podVolume{v: newProjectedVolume(m, m.volumeDir(uid, kindProjected, vol.Name), src.Projected), readOnly: true, refresh: true}
	case src.PersistentVolumeClaim != nil:
		return &podVolume{v: &claimVolume{m: m, source: src.PersistentVolumeClaim}, readOnly: src.PersistentVolumeClaim.ReadOnly}
	default:
		return &podVolume{}
	}
}

// volumeKind is the JSON name of the source a volume sets ("nfs").
func volumeKind(src *corev1.VolumeSource) string {
	b, err := json.Marshal(src)
	if err != nil {
		return "(unknown)"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || len(m) == 0 {
		return "(none)"
	}
	for k := range m {
		return k
	}
	return "(none)"
}

// TearDown unmounts and removes every volume of the pod and its subPath
// mounts, and stops watching what it used. It succeeds only once nothing is
// left mounted under the pod's directory, so the directory can then be
// removed without reaching into a mount. It works from the node's state
// alone, so also for a pod known only by its directory (after a restart).
func (m *Manager) TearDown(uid types.UID) error {
	m.configMaps.unregister(uid)
	m.secrets.unregister(uid)
	m.tokens.forget(uid)
	m.mu.Lock()
	pv := m.pods[uid]
	delete(m.pods, uid)
	m.mu.Unlock()
	var errs []error
	if pv != nil {
		for _, v := range pv.vols {
			if v.v != nil {
				errs = append(errs, v.v.TearDown())
			}
		}
	}
	podDir := m.PodDir(uid)
	errs = append(errs, unmountAll(filepath.Join(podDir, "volume-subpaths")))
	errs = append(errs, unmountAll(filepath.Join(podDir, "volumes")))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", uid, err)
	}
	left, err := mountinfo.Under(podDir)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("tear down volumes of pod %s: still mounted: %q", uid, left)
	}
	for _, d := range []string{"volume-subpaths", "volumes"} {
		if err := os.RemoveAll(filepath.Join(podDir, d)); err != nil {
			return fmt.Errorf("tear down volumes of pod %s: %w", uid, err)
		}
	}
	return nil
}

// PodDirs returns the UIDs of the pods that have a directory on the node,
// for finding the orphans of pods no longer assigned.
func (m *Manager) PodDirs() ([]types.UID, error) {
	entries, err := os.ReadDir(filepath.Join(m.cfg.RootDir, "pods"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]types.UID, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// teardownDir unmounts what is mounted at dir (or under it) and removes it.
func teardownDir(dir string) error {
	if err := unmountAll(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// Mounts returns the container's volume mounts: host paths of the volumes
// (subPaths resolved safely within them and bind-mounted under the pod's
// volume-subpaths), read-only and propagation as the volumeMounts say.
// env holds the container's environment for subPathExpr.
func (m *Manager) Mounts(pod *corev1.Pod, c *corev1.Container, vols map[string]Mounted, env map[string]string) ([]containerruntime.Mount, error) {
	out := make([]containerruntime.Mount, 0, len(c.VolumeMounts))
	for i, vm := range c.VolumeMounts {
		mv, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of volumeMount %q is not set up", vm.Name, vm.MountPath)
		}
		hostPath := mv.HostPath
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expansion.Expand(vm.SubPathExpr, env)
		}
		if sub != "" {
			target := filepath.Join(m.PodDir(pod.UID), "volume-subpaths", vm.Name, c.Name, strconv.Itoa(i))
			if err := bindSubPath(hostPath, sub, target); err != nil {
				return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: %w", vm.Name, c.Name, err)
			}
			hostPath = target
		}
		mnt := containerruntime.Mount{ContainerPath: vm.MountPath, HostPath: hostPath, ReadOnly: vm.ReadOnly || mv.ReadOnly}
		switch p := vm.MountPropagation; {
		case p == nil || *p == corev1.MountPropagationNone:
			mnt.Propagation = corev1.MountPropagationNone
		case *p == corev1.MountPropagationHostToContainer:
			mnt.Propagation = corev1.MountPropagationHostToContainer
		case *p == corev1.MountPropagationBidirectional:
			return nil, fmt.Errorf("volumeMount %q of container %q: Bidirectional mount propagation is available only to privileged containers", vm.Name, c.Name)
		default:
			return nil, fmt.Errorf("volumeMount %q of container %q: unknown mount propagation %q", vm.Name, c.Name, *p)
		}
		out = append(out, mnt)
	}
	return out, nil
}
