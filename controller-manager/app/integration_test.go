package app_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/controller-manager/app"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// waitTimeout bounds every wait for the controllers to converge.
const waitTimeout = 20 * time.Second

// env is a real apiserver with a controller manager running against it.
type env struct {
	*harness.Env
	t      *testing.T
	server *app.Server
	opts   *app.Options
}

// startEnv starts an apiserver and a controller manager with the test
// defaults, adjusted by opts.
func startEnv(t *testing.T, opts ...func(*app.Options)) *env {
	t.Helper()
	h := harness.Start(t)
	o := app.NewOptions()
	o.Kubeconfig = h.Kubeconfig
	o.LeaderElect = false
	o.Serving.BindAddress = "127.0.0.1"
	o.Serving.Port = 0
	o.MinResyncPeriod = 0
	for _, opt := range opts {
		opt(o)
	}
	e := &env{Env: h, t: t, opts: o}
	e.startControllerManager()
	return e
}

// startControllerManager starts a controller manager that lives as long
// as the whole test (not a subtest).
func (e *env) startControllerManager() {
	t := e.t
	t.Helper()
	s, err := app.Start(context.Background(), e.opts, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatalf("start controller manager: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("controller manager stopped: %v", err)
		}
	})
	e.server = s
}

// restartControllerManager stops the controller manager and starts a new
// one with the same options.
func (e *env) restartControllerManager(t *testing.T) {
	t.Helper()
	if err := e.server.Stop(); err != nil {
		t.Fatalf("stop controller manager: %v", err)
	}
	e.startControllerManager()
}

// eventually polls cond until it returns true or waitTimeout passes.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
		case <-tick.C:
		}
	}
}

func (e *env) namespace(name string) string {
	e.t.Helper()
	_, err := client.For[*corev1.Namespace](e.Client).Create(context.Background(), "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil {
		e.t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// activePods lists the pods of ns matching sel that are not being deleted.
func (e *env) activePods(ctx context.Context, ns string, sel labels.Selector) ([]*corev1.Pod, error) {
	pods, _, err := client.For[*corev1.Pod](e.Client).List(ctx, ns, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// markReady makes pods look like a kubelet runs them: phase Running, an
// IP, and the Ready condition.
func (e *env) markReady(ctx context.Context, pods ...*corev1.Pod) error {
	pc := client.For[*corev1.Pod](e.Client)
	for i, p := range pods {
		if isReady(p) {
			continue
		}
		p = p.DeepCopy()
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = fmt.Sprintf("10.244.%d.%d", (i/250)+1, i%250+2)
		p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		if _, err := pc.UpdateStatus(ctx, p.Namespace, p); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podTemplate(lbls map[string]string, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbls},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

func ownedBy(p *corev1.Pod, uid string) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && string(ref.UID) == uid
}

// update reads, changes and writes an object, retrying on conflicts with
// the controllers' writes.
func update[T interface {
	*X
	runtime.Object
}, X any](t *testing.T, c *client.Typed[T], ns, name string, change func(T)) T {
	t.Helper()
	var out T
	eventually(t, "update "+name, func(ctx context.Context) (bool, error) {
		cur, err := c.Get(ctx, ns, name)
		if err != nil {
			return false, err
		}
		change(cur)
		out, err = c.Update(ctx, ns, cur)
		if apierrors.IsConflict(err) {
			return false, err
		}
		if err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
		return true, nil
	})
	return out
}

func TestControllers(t *testing.T) {
	e := startEnv(t)
	t.Run("Health", e.testHealth)
	t.Run("ReplicaSet", e.testReplicaSet)
	t.Run("ReplicationController", e.testReplicationController)
	t.Run("Namespace", e.testNamespace)
	t.Run("Endpoints", e.testEndpoints)
	t.Run("DeploymentRolling", func(t *testing.T) {
		e.testDeployment(t, rollingStrategy(intstr.FromString("25%"), intstr.FromInt32(1)))
	})
	t.Run("DeploymentRecreate", func(t *testing.T) {
		e.testDeployment(t, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType})
	})
	t.Run("GarbageCollectorBackground", e.testGCBackground)
	t.Run("GarbageCollectorOrphan", e.testGCOrphan)
	t.Run("GarbageCollectorForeground", e.testGCForeground)
	t.Run("GarbageCollectorConfigMaps", e.testGCConfigMaps)
}

func (e *env) testReplicationController(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("rc")
	lbls := map[string]string{"app": "legacy"}
	tmpl := podTemplate(lbls, "nginx")
	rc, err := client.For[*corev1.ReplicationController](e.Client).Create(ctx, ns, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec:       corev1.ReplicationControllerSpec{Replicas: new(int32(2)), Selector: lbls, Template: &tmpl},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 pods owned by the RC", func(ctx context.Context) (bool, error) {
		pods, err := e.activePods(ctx, ns, labels.SelectorFromSet(lbls))
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range pods {
			if ownedBy(p, string(rc.UID)) {
				n++
			}
		}
		return n == 2 && len(pods) == 2, fmt.Errorf("%d pods, %d owned", len(pods), n)
	})
}

// testNamespace covers the serviceaccount and namespace controllers: a new
// namespace gets its default ServiceAccount; deleting it removes its
// content, then the namespace.
func (e *env) testNamespace(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("doomed")
	sac := client.For[*corev1.ServiceAccount](e.Client)
	eventually(t, "default service account", func(ctx context.Context) (bool, error) {
		_, err := sac.Get(ctx, ns, "default")
		return err == nil, err
	})
	// Deleted, it comes back.
	if _, err := sac.Delete(ctx, ns, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "default service account recreated", func(ctx context.Context) (bool, error) {
		_, err := sac.Get(ctx, ns, "default")
		return err == nil, err
	})

	lbls := map[string]string{"app": "doomed"}
	if _, err := client.For[*appsv1.ReplicaSet](e.Client).Create(ctx, ns, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "doomed"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: podTemplate(lbls, "nginx"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.ConfigMap](e.Client).Create(ctx, ns, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"k": "v"},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "2 pods", func(ctx context.Context) (bool, error) {
		pods, err := e.activePods(ctx, ns, labels.SelectorFromSet(lbls))
		return err == nil && len(pods) == 2, err
	})

	if _, err := client.For[*corev1.Namespace](e.Client).Delete(ctx, "", ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "namespace gone", func(ctx context.Context) (bool, error) {
		_, err := client.For[*corev1.Namespace](e.Client).Get(ctx, "", ns)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	// Its content went with it.
	for _, check := range []func() (int, error){
		func() (int, error) {
			l, _, err := client.For[*corev1.Pod](e.Client).List(ctx, ns, metav1.ListOptions{})
			return len(l), err
		},
		func() (int, error) {
			l, _, err := client.For[*appsv1.ReplicaSet](e.Client).List(ctx, ns, metav1.ListOptions{})
			return len(l), err
		},
		func() (int, error) {
			l, _, err := client.For[*corev1.ConfigMap](e.Client).List(ctx, ns, metav1.ListOptions{})
			return len(l), err
		},
		func() (int, error) {
			l, _, err := sac.List(ctx, ns, metav1.ListOptions{})
			return len(l), err
		},
	} {
		if n, err := check(); err != nil || n != 0 {
			t.Errorf("after namespace deletion: %d objects left (err %v), want 0", n, err)
		}
	}
}

func (e *env) testHealth(t *testing.T) {
	get := func(ctx context.Context, path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+e.server.Address+path, nil)
		if err != nil {
			return 0, "", err
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test certificate
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		eventually(t, path+" ok", func(ctx context.Context) (bool, error) {
			code, body, err := get(ctx, path)
			return err == nil && code == http.StatusOK, fmt.Errorf("%d %q %v", code, body, err)
		})
	}
	eventually(t, "workqueue metrics", func(ctx context.Context) (bool, error) {
		code, body, err := get(ctx, "/metrics")
		return err == nil && code == http.StatusOK && strings.Contains(body, `workqueue_adds_total{name="serviceaccount"}`), err
	})
}

func (e *env) testReplicaSet(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("rs")
	lbls := map[string]string{"app": "web"}
	sel := labels.SelectorFromSet(lbls)
	pc := client.For[*corev1.Pod](e.Client)
	rsc := client.For[*appsv1.ReplicaSet](e.Client)

	// An orphan that matches is adopted and counts towards the replicas.
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: lbls}, Spec: podTemplate(nil, "nginx").Spec}
	if _, err := pc.Create(ctx, ns, orphan); err != nil {
		t.Fatal(err)
	}
	rs, err := rsc.Create(ctx, ns, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: podTemplate(lbls, "nginx"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	uid := string(rs.UID)
	waitPods := func(want int) []*corev1.Pod {
		t.Helper()
		var got []*corev1.Pod
		eventually(t, fmt.Sprintf("%d owned pods", want), func(ctx context.Context) (bool, error) {
			pods, err := e.activePods(ctx, ns, sel)
			if err != nil {
				return false, err
			}
			got = got[:0]
			for _, p := range pods {
				if !ownedBy(p, uid) {
					return false, fmt.Errorf("pod %s not owned by the ReplicaSet", p.Name)
				}
				got = append(got, p)
			}
			return len(got) == want, fmt.Errorf("have %d pods", len(got))
		})
		return got
	}
	pods := waitPods(3)
	adopted := false
	for _, p := range pods {
		adopted = adopted || p.Name == "orphan"
	}
	if !adopted {
		t.Errorf("orphan pod was not adopted")
	}

	// Status follows readiness.
	if err := e.markReady(ctx, pods...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "status ready 3", func(ctx context.Context) (bool, error) {
		rs, err := rsc.Get(ctx, ns, "web")
		if err != nil {
			return false, err
		}
		s := rs.Status
		return s.Replicas == 3 && s.ReadyReplicas == 3 && s.AvailableReplicas == 3 && s.FullyLabeledReplicas == 3 && s.ObservedGeneration == rs.Generation, fmt.Errorf("status %+v", s)
	})

	// A deleted pod is replaced.
	if _, err := pc.Delete(ctx, ns, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pods = waitPods(3)

	// A pod whose labels stop matching is released and replaced.
	rel := pods[0].DeepCopy()
	rel.Labels = map[string]string{"app": "other"}
	if _, err := pc.Update(ctx, ns, rel); err != nil {
		t.Fatal(err)
	}
	eventually(t, "released pod", func(ctx context.Context) (bool, error) {
		p, err := pc.Get(ctx, ns, rel.Name)
		if err != nil {
			return false, err
		}
		return metav1.GetControllerOf(p) == nil, nil
	})
	pods = waitPods(3)

	// Scaling down deletes the not-ready pod first.
	if err := e.markReady(ctx, pods...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all ready", func(ctx context.Context) (bool, error) {
		rs, err := rsc.Get(ctx, ns, "web")
		return err == nil && rs.Status.ReadyReplicas == 3, err
	})
	extra := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unready", Labels: lbls}, Spec: podTemplate(nil, "nginx").Spec}
	if _, err := pc.Create(ctx, ns, extra); err != nil {
		t.Fatal(err)
	}
	// Adopting makes 4; the controller deletes the least valuable: the
	// unready pod.
	pods = waitPods(3)
	for _, p := range pods {
		if p.Name == "unready" {
			t.Errorf("the unready pod survived; a ready one was deleted")
		}
	}
	update(t, rsc, ns, "web", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(1)) })
	waitPods(1)
	update(t, rsc, ns, "web", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(5)) })
	waitPods(5)
	eventually(t, "status replicas 5", func(ctx context.Context) (bool, error) {
		rs, err := rsc.Get(ctx, ns, "web")
		return err == nil && rs.Status.Replicas == 5 && rs.Status.ObservedGeneration == rs.Generation, err
	})
}
