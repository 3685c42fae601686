// Package containerruntime drives containerd for the kubelet through its Go
// client, in a containerd namespace of its own: image import and pull, pod
// sandboxes (pause containers holding a pod's namespaces) and the pod's
// containers sharing them.
package containerruntime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes/docker"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/images"
)

// Namespace is the containerd namespace the kubelet works in.
const Namespace = "coxswain"

// Labels set on every container the kubelet creates.
const (
	LabelPodUID       = "io.coxswain.pod.uid"
	LabelPodName      = "io.coxswain.pod.name"
	LabelPodNamespace = "io.coxswain.pod.namespace"
	LabelContainer    = "io.coxswain.container.name"
	LabelKind         = "io.coxswain.kind" // "sandbox" or "container"
	// LabelRestartCount is the container's restart count.
	LabelRestartCount = "io.coxswain.container.restart-count"
	// Set when the container's process exited, so that a restarted
	// kubelet knows how it ended after its task is gone.
	LabelExitCode   = "io.coxswain.exit.code"
	LabelExitReason = "io.coxswain.exit.reason"
	LabelFinishedAt = "io.coxswain.exit.finished-at"
)

// ReasonOOMKilled is the exit reason of a container whose cgroup's OOM
// killer killed a process.
const ReasonOOMKilled = "OOMKilled"

// Errors of image handling, mapped to the upstream waiting reasons.
var (
	ErrImagePull      = errors.New("ErrImagePull")
	ErrImageNeverPull = errors.New("ErrImageNeverPull")
	ErrInvalidImage   = errors.New("InvalidImageName")
)

// Config configures a Runtime.
type Config struct {
	Address            string // containerd socket
	Snapshotter        string // default "overlayfs"
	InsecureRegistries []string
	FIFODir            string // where the containers' stdio FIFOs live
	Logger             *zap.Logger
}

// Runtime is the kubelet's view of containerd.
type Runtime struct {
	client      *containerd.Client
	snapshotter string
	insecure    map[string]bool
	fifoDir     string
	logger      *zap.Logger
	swapLimit   bool // memory limits also cap memory+swap

	pullMu sync.Mutex
}

// New connects to containerd.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = "overlayfs"
	}
	c, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(Namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
	}
	r := &Runtime{client: c, snapshotter: cfg.Snapshotter, insecure: map[string]bool{}, fifoDir: cfg.FIFODir, logger: cfg.Logger, swapLimit: swapLimitSupported()}
	for _, h := range cfg.InsecureRegistries {
		r.insecure[h] = true
	}
	if r.fifoDir != "" {
		if err := os.MkdirAll(r.fifoDir, 0o700); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return r, nil
}

// Close closes the connection.
func (r *Runtime) Close() error { return r.client.Close() }

// Client is the containerd client (tests inspect the namespace with it).
func (r *Runtime) Client() *containerd.Client { return r.client }

func nsCtx(ctx context.Context) context.Context { return namespaces.WithNamespace(ctx, Namespace) }

// Version is containerd's version ("1.6.20").
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(nsCtx(ctx))
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(v.Version, "v"), nil
}

// ImportDir imports every OCI archive (*.tar) of dir and unpacks the images.
func (r *Runtime) ImportDir(ctx context.Context, dir string) ([]string, error) {
	ctx = nsCtx(ctx)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read air-gap dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tar") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			return names, err
		}
		imgs, err := r.client.Import(ctx, f)
		f.Close()
		if err != nil {
			return names, fmt.Errorf("import %s: %w", p, err)
		}
		for _, img := range imgs {
			image := containerd.NewImage(r.client, img)
			if err := r.unpack(ctx, image); err != nil {
				return names, fmt.Errorf("unpack %s: %w", img.Name, err)
			}
			names = append(names, img.Name)
		}
	}
	return names, nil
}

func (r *Runtime) unpack(ctx context.Context, image containerd.Image) error {
	ok, err := image.IsUnpacked(ctx, r.snapshotter)
	if err != nil || ok {
		return err
	}
	return image.Unpack(ctx, r.snapshotter)
}

// Credentials authenticate a pull from a registry, as a docker config's
// auth entry: a user name and password, or an identity (refresh) token.
type Credentials struct {
	Username      string
	Password      string
	IdentityToken string
}

// EnsureImage returns the image ref per the pull policy, pulling it when
// needed: anonymously when creds is empty, else with each of creds in turn
// until one works, as upstream's kubelet. Errors wrap ErrImagePull,
// ErrImageNeverPull or ErrInvalidImage.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy corev1.PullPolicy, creds []Credentials) (containerd.Image, error) {
	img, _, err := r.EnsureImageObserved(ctx, ref, policy, creds, nil)
	return img, err
}

// PullResult says how EnsureImageObserved came by the image, for the
// kubelet's Pulling and Pulled Events.
type PullResult struct {
	// Pulled: the image was pulled (else it was present).
	Pulled bool
	// Duration is the pull's own time; Waited includes the wait for
	// other pulls (pulls go one at a time).
	Duration, Waited time.Duration
	// Size is the image's size in bytes (its content), when known.
	Size int64
}

// EnsureImageObserved is EnsureImage that calls pulling (when not nil)
// just before a pull starts and reports how the image came.
func (r *Runtime) EnsureImageObserved(ctx context.Context, ref string, policy corev1.PullPolicy, creds []Credentials, pulling func()) (containerd.Image, PullResult, error) {
	var res PullResult
	img, err := r.ensureImage(ctx, ref, policy, creds, func() {
		res.Pulled = true
		if pulling != nil {
			pulling()
		}
	}, &res)
	if err == nil && res.Pulled {
		if size, serr := img.Size(nsCtx(ctx)); serr == nil {
			res.Size = size
		}
	}
	return img, res, err
}

func (r *Runtime) ensureImage(ctx context.Context, ref string, policy corev1.PullPolicy, creds []Credentials, pulling func(), res *PullResult) (containerd.Image, error) {
	ctx = nsCtx(ctx)
	name, err := images.NormalizeName(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidImage, err)
	}
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if strings.HasSuffix(name, ":latest") {
			policy = corev1.PullAlways
		}
	}
	if policy != corev1.PullAlways {
		img, err := r.client.GetImage(ctx, name)
		if err == nil {
			if err := r.unpack(ctx, img); err != nil {
				return nil, fmt.Errorf("%w: unpack %s: %v", ErrImagePull, name, err)
			}
			return img, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %v", ErrImagePull, err)
		}
		if policy == corev1.PullNever {
			return nil, fmt.Errorf("%w: container image %q is not present with pull policy of Never", ErrImageNeverPull, ref)
		}
	}
	pulling()
	start := time.Now()
	defer func() { res.Waited = time.Since(start) }()
	if len(creds) == 0 {
		return r.pull(ctx, name, nil, res)
	}
	var errs []error
	for i := range creds {
		img, err := r.pull(ctx, name, &creds[i], res)
		if err == nil {
			return img, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (r *Runtime) pull(ctx context.Context, name string, cred *Credentials, res *PullResult) (containerd.Image, error) {
	r.pullMu.Lock()
	defer r.pullMu.Unlock()
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	hostOpts := []docker.RegistryOpt{docker.WithPlainHTTP(func(host string) (bool, error) {
		return r.insecure[host], nil
	})}
	if cred != nil {
		c := *cred
		hostOpts = append(hostOpts, docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
			if c.IdentityToken != "" {
				// An empty user name makes the secret a refresh token.
				return "", c.IdentityToken, nil
			}
			return c.Username, c.Password, nil
		}))))
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(hostOpts...)})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	img, err := r.client.Pull(pctx, name, containerd.WithPullUnpack, containerd.WithPullSnapshotter(r.snapshotter), containerd.WithResolver(resolver))
	if err != nil {
		return nil, fmt.Errorf("%w: failed to pull and unpack image %q: %v", ErrImagePull, name, err)
	}
	return img, nil
}

// ImageUser is the user the image runs as (its config's User): a uid, or
// the user name when it is not numeric, as the CRI's image status reports
// it; nil and "" when the image names none (it runs as root).
func ImageUser(ctx context.Context, img containerd.Image) (*int64, string, error) {
	spec, err := img.Spec(nsCtx(ctx))
	if err != nil {
		return nil, "", fmt.Errorf("image config of %s: %w", img.Name(), err)
	}
	user, _, _ := strings.Cut(spec.Config.User, ":")
	if user == "" {
		return nil, "", nil
	}
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		return &uid, "", nil
	}
	return nil, user, nil
}

// ImageID is the image's config digest, as the CRI reports it.
func ImageID(ctx context.Context, img containerd.Image) string {
	d, err := img.Config(nsCtx(ctx))
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// Sandbox describes a pod sandbox.
type Sandbox struct {
	ID        string
	Image     containerd.Image
	Hostname  string
	NetNSPath string
	Labels    map[string]string
	// CgroupParent is the pod's cgroup (cgroupfs path); "" leaves
	// containerd's default.
	CgroupParent string
}

// StartSandbox creates and starts the pause container in the network
// namespace at NetNSPath, with new IPC and UTS namespaces; it returns the
// pause process's pid.
func (r *Runtime) StartSandbox(ctx context.Context, sb Sandbox) (uint32, error) {
	ctx = nsCtx(ctx)
	labels := copyLabels(sb.Labels)
	labels[LabelKind] = "sandbox"
	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(sb.Image),
		oci.WithHostname(sb.Hostname),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.NetNSPath}),
	}
	if sb.CgroupParent != "" {
		specOpts = append(specOpts, oci.WithCgroup(path.Join(sb.CgroupParent, sb.ID)))
	}
	c, err := r.client.NewContainer(ctx, sb.ID,
		containerd.WithImage(sb.Image),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(sb.ID, sb.Image),
		containerd.WithContainerLabels(labels),
		containerd.WithNewSpec(specOpts...),
	)
	if err != nil {
		return 0, fmt.Errorf("create sandbox container: %w", err)
	}
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return 0, fmt.Errorf("create sandbox task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return 0, fmt.Errorf("start sandbox: %w", err)
	}
	return task.Pid(), nil
}

// Container describes one of a pod's containers.
type Container struct {
	ID         string
	Image      containerd.Image
	Command    []string // replaces the image's entrypoint when set
	Args       []string // replaces the image's cmd when set
	Env        []string
	WorkingDir string
	Mounts     []specs.Mount // the kubelet's files (/etc/hosts and the like)
	NetNSPath  string
	SandboxPID uint32
	Hostname   string
	Labels     map[string]string
	Stdout     io.Writer
	Stderr     io.Writer

	// VolumeMounts are the pod's volumes the container mounts.
	VolumeMounts []Mount

	// RestartCount is recorded in a label, for a restarted kubelet.
	RestartCount int32
	// CgroupParent is the pod's cgroup (cgroupfs path); "" leaves
	// containerd's default.
	CgroupParent string
	Resources    Resources
	Security     Security
}

// Exit is how a container's process ended.
type Exit struct {
	Code       int32
	FinishedAt time.Time
	// Reason is ReasonOOMKilled when the OOM killer killed a process of
	// the container, else "".
	Reason string
	Err    error
}

// Running is a started container.
type Running struct {
	Pid  uint32
	Exit <-chan Exit // receives once, after the task's IO is drained
}

// StartContainer creates and starts a container in the sandbox's
// namespaces. waitCtx bounds the goroutine that waits for the exit: when
// it ends first (the kubelet stops) the container runs on and its output
// is left in its FIFOs for the next kubelet to Attach to.
func (r *Runtime) StartContainer(ctx, waitCtx context.Context, ct Container) (*Running, error) {
	ctx = nsCtx(ctx)
	labels := copyLabels(ct.Labels)
	labels[LabelKind] = "container"
	labels[LabelRestartCount] = strconv.Itoa(int(ct.RestartCount))
	specOpts := []oci.SpecOpts{}
	switch {
	case len(ct.Command) > 0:
		specOpts = append(specOpts, oci.WithImageConfig(ct.Image), oci.WithProcessArgs(append(append([]string{}, ct.Command...), ct.Args...)...))
	default:
		specOpts = append(specOpts, oci.WithImageConfigArgs(ct.Image, ct.Args))
	}
	if ct.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(ct.WorkingDir))
	}
	if len(ct.Env) > 0 {
		specOpts = append(specOpts, oci.WithEnv(ct.Env))
	}
	if ct.Hostname != "" {
		specOpts = append(specOpts, oci.WithHostname(ct.Hostname))
	}
	imageUser := ""
	if ct.Security.RunAsUser == nil && (ct.Security.RunAsGroup != nil || len(ct.Security.SupplementalGroups) > 0) {
		spec, err := ct.Image.Spec(ctx)
		if err != nil {
			return nil, fmt.Errorf("image config: %w", err)
		}
		imageUser = spec.Config.User
	}
	specOpts = append(specOpts, userOpts(ct.Security, imageUser)...)
	secOpts, err := securityOpts(ct.Security)
	if err != nil {
		return nil, err
	}
	specOpts = append(specOpts, secOpts...)
	specOpts = append(specOpts, resourceOpts(ct.Resources, r.swapLimit)...)
	if ct.CgroupParent != "" {
		specOpts = append(specOpts, oci.WithCgroup(path.Join(ct.CgroupParent, ct.ID)))
	}
	specOpts = append(specOpts,
		withMounts(ct.Mounts, ct.VolumeMounts),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: ct.NetNSPath}),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: fmt.Sprintf("/proc/%d/ns/ipc", ct.SandboxPID)}),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace, Path: fmt.Sprintf("/proc/%d/ns/uts", ct.SandboxPID)}),
	)
	c, err := r.client.NewContainer(ctx, ct.ID,
		containerd.WithImage(ct.Image),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(ct.ID, ct.Image),
		containerd.WithContainerLabels(labels),
		containerd.WithNewSpec(specOpts...),
	)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	stdout, stderr := ct.Stdout, ct.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	ioOpts := []cio.Opt{cio.WithStreams(nil, stdout, stderr)}
	if r.fifoDir != "" {
		ioOpts = append(ioOpts, cio.WithFIFODir(r.fifoDir))
	}
	task, err := c.NewTask(ctx, cio.NewCreator(ioOpts...))
	if err != nil {
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return nil, fmt.Errorf("create task: %w", err)
	}
	statusC, err := task.Wait(nsCtx(waitCtx))
	if err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return nil, fmt.Errorf("wait task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return nil, fmt.Errorf("start container: %w", err)
	}
	return &Running{Pid: task.Pid(), Exit: r.watch(waitCtx, c, task, statusC)}, nil
}

// Attach reconnects to a container an earlier kubelet started: its output
// (what waited in the FIFOs included) goes to stdout and stderr again and
// its exit is reported as StartContainer's. A task that already exited is
// reported at once.
func (r *Runtime) Attach(ctx, waitCtx context.Context, id string, stdout, stderr io.Writer) (*Running, error) {
	ctx = nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	task, err := c.Task(ctx, cio.NewAttach(cio.WithStreams(nil, stdout, stderr)))
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	statusC, err := task.Wait(nsCtx(waitCtx))
	if err != nil {
		if io := task.IO(); io != nil {
			io.Cancel()
		}
		return nil, fmt.Errorf("attach to %s: wait: %w", id, err)
	}
	return &Running{Pid: task.Pid(), Exit: r.watch(waitCtx, c, task, statusC)}, nil
}

// watch waits for the task's exit, records it in the container's labels
// (with OOMKilled when the cgroup's OOM killer struck), deletes the task
// (which drains its IO) and reports the exit. When waitCtx ends first, it
// only lets go of the task's IO, leaving the FIFOs in place.
func (r *Runtime) watch(waitCtx context.Context, c containerd.Container, task containerd.Task, statusC <-chan containerd.ExitStatus) <-chan Exit {
	exitC := make(chan Exit, 1)
	go func() {
		st, ok := <-statusC
		if waitCtx.Err() != nil {
			if io := task.IO(); io != nil {
				io.Cancel()
				io.Wait()
			}
			exitC <- Exit{Err: waitCtx.Err()}
			return
		}
		ex := Exit{FinishedAt: time.Now()}
		if !ok {
			ex.Err = errors.New("wait for container: channel closed")
		} else {
			ex.Code = int32(st.ExitCode())
			ex.Err = st.Error()
			if !st.ExitTime().IsZero() {
				ex.FinishedAt = st.ExitTime()
			}
		}
		dctx, cancel := context.WithTimeout(nsCtx(context.Background()), 30*time.Second)
		defer cancel()
		// The cgroup goes with the task: look for OOM kills before.
		if r.oomKilled(dctx, c) {
			ex.Reason = ReasonOOMKilled
		}
		if ex.Err == nil {
			if _, err := c.SetLabels(dctx, exitLabels(ex)); err != nil {
				r.logger.Warn("record container exit", zap.String("container", c.ID()), zap.Error(err))
			}
		}
		// Deleting the task drains and closes its IO.
		_, _ = task.Delete(dctx)
		exitC <- ex
	}()
	return exitC
}

func exitLabels(ex Exit) map[string]string {
	return map[string]string{
		LabelExitCode:   strconv.Itoa(int(ex.Code)),
		LabelExitReason: ex.Reason,
		LabelFinishedAt: ex.FinishedAt.UTC().Format(time.RFC3339Nano),
	}
}

// oomKilled reports whether the OOM killer killed a process in the
// container's memory cgroup.
func (r *Runtime) oomKilled(ctx context.Context, c containerd.Container) bool {
	spec, err := c.Spec(ctx)
	if err != nil || spec.Linux == nil {
		return false
	}
	n, err := oomKills(spec.Linux.CgroupsPath)
	if err != nil {
		r.logger.Warn("read the container's OOM kills", zap.String("container", c.ID()), zap.Error(err))
	}
	return n > 0
}

// Stop sends SIGTERM to the container's task, SIGKILL after grace, and
// waits for it to exit. A container without a running task is left as is.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	st, err := task.Status(ctx)
	if err == nil && st.Status == containerd.Stopped {
		return nil
	}
	waitC, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	select {
	case <-waitC:
		return nil
	case <-time.After(grace):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	select {
	case <-waitC:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", id)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove deletes the container, its task (killed if still running) and
// its snapshot.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}

// ContainerInfo is a container the kubelet created, from its labels.
type ContainerInfo struct {
	ID     string
	Labels map[string]string
}

// List returns the kubelet's containers, those of pod uid when uid is set.
func (r *Runtime) List(ctx context.Context, uid string) ([]ContainerInfo, error) {
	ctx = nsCtx(ctx)
	var filters []string
	if uid != "" {
		filters = append(filters, fmt.Sprintf("labels.%q==%q", LabelPodUID, uid))
	}
	cs, err := r.client.Containers(ctx, filters...)
	if err != nil {
		return nil, err
	}
	out := make([]ContainerInfo, 0, len(cs))
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			continue
		}
		out = append(out, ContainerInfo{ID: c.ID(), Labels: labels})
	}
	return out, nil
}

// ContainerState is what containerd holds of one of a pod's containers,
// for a kubelet that starts again: running, exited (with how), or neither
// known (created but never started, or its exit unrecorded).
type ContainerState struct {
	ID        string
	Labels    map[string]string
	CreatedAt time.Time
	// HasTask: the container's task exists, running or exited; Attach
	// reports its exit.
	HasTask bool
	Running bool
	Pid     uint32 // of the task's process
	// Exit is the recorded exit of a container whose task is gone.
	Exit *Exit
}

// PodContainers returns the state of every container of pod uid.
func (r *Runtime) PodContainers(ctx context.Context, uid string) ([]ContainerState, error) {
	ctx = nsCtx(ctx)
	cs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelPodUID, uid))
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s: %w", uid, err)
	}
	out := make([]ContainerState, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("container %s: %w", c.ID(), err)
		}
		st := ContainerState{ID: c.ID(), Labels: info.Labels, CreatedAt: info.CreatedAt}
		task, err := c.Task(ctx, nil)
		switch {
		case err == nil:
			st.Pid = task.Pid()
			ts, err := task.Status(ctx)
			if err != nil {
				return nil, fmt.Errorf("task status of %s: %w", c.ID(), err)
			}
			switch ts.Status {
			case containerd.Running, containerd.Paused, containerd.Pausing:
				st.HasTask, st.Running = true, true
			case containerd.Stopped:
				st.HasTask = true
			}
			// A task created but not started is neither.
		case errdefs.IsNotFound(err):
			st.Exit = labelExit(info.Labels)
		default:
			return nil, fmt.Errorf("task of %s: %w", c.ID(), err)
		}
		out = append(out, st)
	}
	return out, nil
}

// labelExit is the exit recorded in the labels, nil when none is.
func labelExit(labels map[string]string) *Exit {
	code, err := strconv.Atoi(labels[LabelExitCode])
	if err != nil {
		return nil
	}
	ex := &Exit{Code: int32(code), Reason: labels[LabelExitReason]}
	if t, err := time.Parse(time.RFC3339Nano, labels[LabelFinishedAt]); err == nil {
		ex.FinishedAt = t
	}
	return ex
}

func copyLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	return out
}

// maxExecOutput bounds the output Exec keeps, as upstream's probes read at
// most 10 KiB.
const maxExecOutput = 10 << 10

// Exec runs cmd in the running container id, with the container's process
// settings (user, environment, working directory), and returns its combined
// stdout and stderr (at most 10 KiB) and exit code. When timeout passes
// first the process is killed and the error wraps context.DeadlineExceeded.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, int, error) {
	ctx = nsCtx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("exec in %s: spec: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	var buf limitedBuffer
	ioOpts := []cio.Opt{cio.WithStreams(nil, &buf, &buf)}
	if r.fifoDir != "" {
		ioOpts = append(ioOpts, cio.WithFIFODir(r.fifoDir))
	}
	execID := "exec-" + randomID()
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(ioOpts...))
	if err != nil {
		return nil, 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	// The process is deleted even when ctx ends, so no exec leaks in the shim.
	cleanup := func() {
		dctx, cancel := context.WithTimeout(nsCtx(context.WithoutCancel(ctx)), 10*time.Second)
		defer cancel()
		if _, err := proc.Delete(dctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.logger.Warn("delete exec process", zap.String("container", id), zap.String("exec", execID), zap.Error(err))
		}
	}
	statusC, err := proc.Wait(ctx)
	if err != nil {
		cleanup()
		return nil, 0, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		cleanup()
		return nil, 0, fmt.Errorf("exec in %s: start: %w", id, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case st := <-statusC:
		code, _, err := st.Result()
		// The output is copied from the FIFOs after the exit is reported:
		// wait for the copy (bounded: a child the command left behind may
		// hold the pipes open), as Delete cancels it.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			proc.IO().Wait()
		}()
		select {
		case <-drained:
		case <-timer.C:
		case <-ctx.Done():
		}
		cleanup()
		if err != nil {
			return nil, 0, fmt.Errorf("exec in %s: %w", id, err)
		}
		return buf.Bytes(), int(code), nil
	case <-timer.C:
		cleanup()
		return buf.Bytes(), 0, fmt.Errorf("command %q timed out after %s: %w", strings.Join(cmd, " "), timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		cleanup()
		return nil, 0, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
}

// limitedBuffer keeps the first maxExecOutput bytes written to it; stdout
// and stderr write to it concurrently.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxExecOutput - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
