package stats

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// Container is one of the kubelet's running containers, or a pod's
// sandbox, as its containerd labels and task describe it.
type Container struct {
	ID           string
	PodUID       string
	PodName      string
	PodNamespace string
	// Name is the container's name in the pod; "" for a sandbox.
	Name      string
	Sandbox   bool
	Pid       uint32
	CreatedAt time.Time
	// Snapshotter and SnapshotKey name the container's writable layer.
	Snapshotter string
	SnapshotKey string
}

// Runtime is what the stats need of the container runtime.
type Runtime interface {
	// Running lists the kubelet's containers and sandboxes whose task runs.
	Running(ctx context.Context) ([]Container, error)
	// RootfsUsage is the space and inodes c's writable layer uses.
	RootfsUsage(ctx context.Context, c Container) (used, inodes uint64, err error)
	// ImageFs is the folder holding the images' layers ("" when unknown)
	// and the space the images take.
	ImageFs(ctx context.Context) (dir string, used uint64, err error)
}

// ContainerdRuntime reads the kubelet's containers from containerd, in the
// kubelet's containerd namespace: two calls list every container with its
// labels and every task with its pid.
type ContainerdRuntime struct {
	client      *containerd.Client
	snapshotter string

	mu      sync.Mutex
	rootDir string // the snapshotter's folder, once known
}

// NewContainerdRuntime reads containers through client; snapshotter is the
// one the kubelet creates containers with.
func NewContainerdRuntime(client *containerd.Client, snapshotter string) *ContainerdRuntime {
	if snapshotter == "" {
		snapshotter = containerd.DefaultSnapshotter
	}
	return &ContainerdRuntime{client: client, snapshotter: snapshotter}
}

func nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, containerruntime.Namespace)
}

// Running implements Runtime.
func (r *ContainerdRuntime) Running(ctx context.Context) ([]Container, error) {
	ctx = nsCtx(ctx)
	tasks, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	pids := make(map[string]uint32, len(tasks.Tasks))
	for _, t := range tasks.Tasks {
		if t.Status == tasktypes.Status_RUNNING && t.Pid != 0 {
			pids[t.ID] = t.Pid
		}
	}
	cs, err := r.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(pids))
	for _, c := range cs {
		pid, ok := pids[c.ID]
		uid := c.Labels[containerruntime.LabelPodUID]
		if !ok || uid == "" {
			continue
		}
		sandbox := c.Labels[containerruntime.LabelKind] == "sandbox"
		name := c.Labels[containerruntime.LabelContainer]
		if !sandbox && name == "" {
			continue
		}
		out = append(out, Container{
			ID: c.ID, PodUID: uid, PodName: c.Labels[containerruntime.LabelPodName], PodNamespace: c.Labels[containerruntime.LabelPodNamespace],
			Name: name, Sandbox: sandbox, Pid: pid, CreatedAt: c.CreatedAt,
			Snapshotter: c.Snapshotter, SnapshotKey: c.SnapshotKey,
		})
	}
	return out, nil
}

// RootfsUsage implements Runtime.
func (r *ContainerdRuntime) RootfsUsage(ctx context.Context, c Container) (uint64, uint64, error) {
	if c.SnapshotKey == "" {
		return 0, 0, fmt.Errorf("container %s has no snapshot", c.ID)
	}
	sn := c.Snapshotter
	if sn == "" {
		sn = r.snapshotter
	}
	u, err := r.client.SnapshotService(sn).Usage(nsCtx(ctx), c.SnapshotKey)
	if err != nil {
		return 0, 0, fmt.Errorf("usage of snapshot %s: %w", c.SnapshotKey, err)
	}
	return uint64(max(u.Size, 0)), uint64(max(u.Inodes, 0)), nil
}

// ImageFs implements Runtime: the snapshotter's root folder, from
// containerd's introspection, and the size of the committed snapshots
// (the images' unpacked layers).
func (r *ContainerdRuntime) ImageFs(ctx context.Context) (string, uint64, error) {
	dir, err := r.snapshotterRoot(ctx)
	if err != nil {
		return "", 0, err
	}
	ctx = nsCtx(ctx)
	sn := r.client.SnapshotService(r.snapshotter)
	var used uint64
	err = sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			return nil
		}
		u, err := sn.Usage(ctx, info.Name)
		if err == nil && u.Size > 0 {
			used += uint64(u.Size)
		}
		return nil
	})
	if err != nil {
		return dir, 0, fmt.Errorf("walk snapshots: %w", err)
	}
	return dir, used, nil
}

func (r *ContainerdRuntime) snapshotterRoot(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rootDir != "" {
		return r.rootDir, nil
	}
	resp, err := r.client.IntrospectionService().Plugins(ctx, []string{fmt.Sprintf("type==%s,id==%s", "io.containerd.snapshotter.v1", r.snapshotter)})
	if err != nil {
		return "", fmt.Errorf("containerd plugins: %w", err)
	}
	for _, p := range resp.Plugins {
		if root := p.Exports["root"]; root != "" {
			r.rootDir = root
			return root, nil
		}
	}
	return "", fmt.Errorf("containerd does not tell the root of snapshotter %s", r.snapshotter)
}
