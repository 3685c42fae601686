package app_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/client"
)

// rolloutBounds records, from watches, the extremes a rolling update
// reaches since it was last armed: the fewest ready pods of the good
// template and available replicas of the Deployment, the most pods and
// replicas of the broken template, and the most replicas of all
// ReplicaSets together.
type rolloutBounds struct {
	goodImage, brokenImage string

	mu    sync.Mutex
	armed bool
	// The latest values.
	goodReady, brokenPods            int
	available, brokenReplicas, total int32
	// Their extremes since armed.
	minGoodReady, maxBrokenPods                        int
	minAvailable, maxBrokenReplicas, maxTotalSpecified int32
}

// arm waits for the watches to show goodReady ready pods of the good
// template and available replicas, then starts the extremes from there.
func (b *rolloutBounds) arm(t *testing.T, goodReady int, available int32) {
	t.Helper()
	eventually(t, "watches caught up", func(context.Context) (bool, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.goodReady == goodReady && b.available == available, fmt.Errorf("%d ready good pods, %d available", b.goodReady, b.available)
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = true
	b.minGoodReady, b.maxBrokenPods = b.goodReady, b.brokenPods
	b.minAvailable, b.maxBrokenReplicas, b.maxTotalSpecified = b.available, b.brokenReplicas, b.total
}

func (b *rolloutBounds) pods(pods map[string]*corev1.Pod) {
	good, broken := 0, 0
	for _, p := range pods {
		switch p.Spec.Containers[0].Image {
		case b.goodImage:
			if p.DeletionTimestamp == nil && isReady(p) {
				good++
			}
		case b.brokenImage:
			broken++
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.goodReady, b.brokenPods = good, broken
	b.minGoodReady = min(b.minGoodReady, good)
	b.maxBrokenPods = max(b.maxBrokenPods, broken)
}

func (b *rolloutBounds) replicaSets(rss map[string]*appsv1.ReplicaSet) {
	var total, broken int32
	for _, rs := range rss {
		total += *rs.Spec.Replicas
		if rs.Spec.Template.Spec.Containers[0].Image == b.brokenImage {
			broken += *rs.Spec.Replicas
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.brokenReplicas, b.total = broken, total
	b.maxBrokenReplicas = max(b.maxBrokenReplicas, broken)
	b.maxTotalSpecified = max(b.maxTotalSpecified, total)
}

func (b *rolloutBounds) deployments(ds map[string]*appsv1.Deployment) {
	d, ok := ds["web"]
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.available = d.Status.AvailableReplicas
	b.minAvailable = min(b.minAvailable, b.available)
}

// readyMarker plays the kubelets: until stopped it marks ready every pod
// whose image is not the broken one.
func (e *env) readyMarker(t *testing.T, ns, broken string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			pods, err := e.activePods(ctx, ns, labels.Everything())
			if err == nil {
				pods = slices.DeleteFunc(pods, func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image == broken })
				err = e.markReady(ctx, pods...)
			}
			if err != nil && ctx.Err() == nil {
				t.Logf("mark pods ready: %v", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// TestRolloutBrokenImage rolls a 10-replica Deployment (maxSurge and
// maxUnavailable 25%: 3 and 2) to an image whose pods never become ready:
// the rollout stalls with 8 old pods available and 5 new ones, never
// fewer available nor more surged, and passes its progress deadline;
// scaled while stalled, both ReplicaSets grow and shrink in proportion.
// The stock kubectl then reports the stall (rollout status fails), rolls
// it back (rollout undo), lists its history, pauses it across a template
// change that must not roll out but a scale that must apply, resumes it
// and waits for it (rollout status).
func TestRolloutBrokenImage(t *testing.T) {
	const (
		replicas       = 10
		maxSurge       = 3 // 25% of 10, rounded up
		maxUnavailable = 2 // 25% of 10, rounded down
		good, broken   = "web:v1", "web:broken"
	)
	e := startEnv(t)
	ctx := context.Background()
	ns := e.namespace("rollout")
	lbls := map[string]string{"app": "web"}
	dcl := client.For[*appsv1.Deployment](e.Client)
	rsc := client.For[*appsv1.ReplicaSet](e.Client)

	b := &rolloutBounds{goodImage: good, brokenImage: broken}
	watchState(t, client.For[*corev1.Pod](e.Client), ns, b.pods)
	watchState(t, rsc, ns, b.replicaSets)
	watchState(t, dcl, ns, b.deployments)
	e.readyMarker(t, ns, broken)

	if _, err := dcl.Create(ctx, ns, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: podTemplate(lbls, good),
			Strategy: rollingStrategy(intstr.FromString("25%"), intstr.FromString("25%")),
		},
	}); err != nil {
		t.Fatal(err)
	}
	waitComplete := func(image, revision string) {
		t.Helper()
		eventually(t, "rollout of "+image+" complete", func(ctx context.Context) (bool, error) {
			d, err := dcl.Get(ctx, ns, "web")
			if err != nil {
				return false, err
			}
			if err := rolledOut(d); err != nil {
				return false, err
			}
			if d.Status.AvailableReplicas != replicas {
				return false, fmt.Errorf("%d available", d.Status.AvailableReplicas)
			}
			if got := d.Annotations["deployment.kubernetes.io/revision"]; got != revision {
				return false, fmt.Errorf("revision %q, want %q", got, revision)
			}
			if d.Spec.Template.Spec.Containers[0].Image != image {
				return false, fmt.Errorf("template runs %s", d.Spec.Template.Spec.Containers[0].Image)
			}
			return true, nil
		})
	}
	waitComplete(good, "1")
	first := e.replicaSetOf(t, ns, good)

	// stalled waits for the broken rollout to settle with old pods of the
	// first ReplicaSet and newPods of the broken one.
	stalled := func(dReplicas, oldPods, newPods int32) {
		t.Helper()
		eventually(t, fmt.Sprintf("rollout of %d stalled at old %d, new %d", dReplicas, oldPods, newPods), func(ctx context.Context) (bool, error) {
			rss, _, err := rsc.List(ctx, ns, metav1.ListOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // keep the last state as the error
			}
			var desc []string
			ok := len(rss) == 2
			for _, rs := range rss {
				desc = append(desc, fmt.Sprintf("%s %s spec %d status %d/%d ready", rs.Name, rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas, rs.Status.Replicas, rs.Status.ReadyReplicas))
				want := oldPods
				if rs.UID != first.UID {
					want = newPods
				}
				ok = ok && *rs.Spec.Replicas == want && rs.Status.Replicas == want && rs.Status.ObservedGeneration == rs.Generation
			}
			d, err := dcl.Get(ctx, ns, "web")
			if err != nil {
				return false, nil //nolint:nilerr // keep the last state as the error
			}
			s := d.Status
			ok = ok && *d.Spec.Replicas == dReplicas && s.ObservedGeneration == d.Generation && s.UpdatedReplicas == newPods &&
				s.AvailableReplicas == oldPods && s.Replicas == oldPods+newPods &&
				d.Annotations["deployment.kubernetes.io/revision"] == "2"
			return ok, fmt.Errorf("replicasets %v; deployment status %+v", desc, s)
		})
	}

	// The broken rollout stalls at 8 + 5 and, past its progress deadline,
	// says so.
	b.arm(t, replicas, replicas)
	update(t, dcl, ns, "web", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = broken
		d.Spec.ProgressDeadlineSeconds = new(int32(2))
	})
	stalled(replicas, replicas-maxUnavailable, maxSurge+maxUnavailable)
	b.check(t, replicas-maxUnavailable, maxSurge+maxUnavailable, replicas+maxSurge)
	brokenRS := e.replicaSetOf(t, ns, broken)
	eventually(t, "progress deadline exceeded", func(ctx context.Context) (bool, error) {
		d, err := dcl.Get(ctx, ns, "web")
		if err != nil {
			return false, err
		}
		c := condition(d, appsv1.DeploymentProgressing)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded", fmt.Errorf("progressing %+v", c)
	})

	// Scaled while stalled, the ReplicaSets keep their proportions (20:
	// at most 25 pods, at least 15 available: 15 old, 10 new), and back.
	update(t, dcl, ns, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(20)) })
	stalled(20, 15, 10)
	update(t, dcl, ns, "web", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(replicas)) })
	stalled(replicas, replicas-maxUnavailable, maxSurge+maxUnavailable)
	b.arm(t, replicas-maxUnavailable, replicas-maxUnavailable)

	kc := kubectlPath()
	if kc == "" {
		t.Skip("no kubectl on PATH: skipping rollout undo, history, pause, resume and status")
	}
	t.Logf("kubectl: %s", strings.TrimSpace(kubectl(t, kc, e.Kubeconfig, "version", "--client")))
	k := func(args ...string) string {
		t.Helper()
		return kubectl(t, kc, e.Kubeconfig, append([]string{"-n", ns}, args...)...)
	}
	if out, err := kubectlRun(t, kc, e.Kubeconfig, "-n", ns, "rollout", "status", "deployment/web", "--timeout=15s"); err == nil || !strings.Contains(out, "exceeded its progress deadline") {
		t.Errorf("kubectl rollout status of the stalled rollout: %v, %q; want exceeded its progress deadline", err, out)
	}
	update(t, dcl, ns, "web", func(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = new(int32(600)) })

	history := k("rollout", "history", "deployment/web")
	mustList(t, history, "1", "2")

	// Undo: the first ReplicaSet comes back as revision 3; the broken one
	// goes to 0, never below 8 available on the way.
	out := k("rollout", "undo", "deployment/web")
	if !strings.Contains(out, "rolled back") {
		t.Errorf("kubectl rollout undo: %q, want \"rolled back\"", out)
	}
	waitComplete(good, "3")
	eventually(t, "broken ReplicaSet at 0, first at 10", func(ctx context.Context) (bool, error) {
		got, err := rsc.Get(ctx, ns, brokenRS.Name)
		if err != nil {
			return false, err
		}
		back, err := rsc.Get(ctx, ns, first.Name)
		if err != nil {
			return false, err
		}
		return *got.Spec.Replicas == 0 && got.Status.Replicas == 0 && *back.Spec.Replicas == replicas && back.Status.AvailableReplicas == replicas &&
				back.Annotations["deployment.kubernetes.io/revision"] == "3",
			fmt.Errorf("broken %d/%d, first %d/%d revision %s", *got.Spec.Replicas, got.Status.Replicas, *back.Spec.Replicas, back.Status.AvailableReplicas, back.Annotations["deployment.kubernetes.io/revision"])
	})
	b.check(t, replicas-maxUnavailable, maxSurge+maxUnavailable, replicas+maxSurge)
	mustList(t, k("rollout", "history", "deployment/web"), "2", "3")
	if out := k("rollout", "status", "deployment/web", "--timeout=20s"); !strings.Contains(out, "successfully rolled out") {
		t.Errorf("kubectl rollout status: %q", out)
	}

	// Paused, a template change is recorded but not rolled out.
	k("rollout", "pause", "deployment/web")
	if d, err := dcl.Get(ctx, ns, "web"); err != nil || !d.Spec.Paused {
		t.Fatalf("after rollout pause: paused %v (%v)", d != nil && d.Spec.Paused, err)
	}
	const next = "web:v2"
	changed := update(t, dcl, ns, "web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = next })
	eventually(t, "paused change observed", func(ctx context.Context) (bool, error) {
		d, err := dcl.Get(ctx, ns, "web")
		return err == nil && d.Status.ObservedGeneration >= changed.Generation, err
	})
	if rss, _, err := rsc.List(ctx, ns, metav1.ListOptions{}); err != nil || len(rss) != 2 {
		t.Fatalf("paused Deployment: %d ReplicaSets (%v), want still 2", len(rss), err)
	}
	d, err := dcl.Get(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	if c := condition(d, appsv1.DeploymentProgressing); c == nil || c.Status != corev1.ConditionUnknown || c.Reason != "DeploymentPaused" {
		t.Errorf("paused Deployment: Progressing condition %+v, want Unknown DeploymentPaused", c)
	}
	// Paused, it still scales: the current ReplicaSet follows.
	k("scale", "deployment/web", "--replicas=12")
	eventually(t, "paused Deployment scaled to 12", func(ctx context.Context) (bool, error) {
		rs, err := rsc.Get(ctx, ns, first.Name)
		if err != nil {
			return false, err
		}
		d, err := dcl.Get(ctx, ns, "web")
		if err != nil {
			return false, err
		}
		return *rs.Spec.Replicas == 12 && rs.Status.AvailableReplicas == 12 && d.Status.AvailableReplicas == 12,
			fmt.Errorf("ReplicaSet %s at %d (%d available), deployment %d available", rs.Name, *rs.Spec.Replicas, rs.Status.AvailableReplicas, d.Status.AvailableReplicas)
	})
	if rss, _, err := rsc.List(ctx, ns, metav1.ListOptions{}); err != nil || len(rss) != 2 {
		t.Fatalf("paused Deployment: %d ReplicaSets (%v), want still 2", len(rss), err)
	}
	k("scale", "deployment/web", fmt.Sprintf("--replicas=%d", replicas))
	k("rollout", "resume", "deployment/web")
	if out := k("rollout", "status", "deployment/web", "--timeout=30s"); !strings.Contains(out, "successfully rolled out") {
		t.Errorf("kubectl rollout status: %q", out)
	}
	waitComplete(next, "4")
	history = k("rollout", "history", "deployment/web")
	t.Logf("kubectl rollout history:\n%s", history)
	mustList(t, history, "2", "3", "4")
}

func condition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// check fails the test if the rollout went out of bounds so far.
func (b *rolloutBounds) check(t *testing.T, minAvailable, maxNew, maxTotal int32) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	t.Logf("so far: at least %d ready good pods and %d available replicas; at most %d broken pods, %d broken replicas, %d replicas in all",
		b.minGoodReady, b.minAvailable, b.maxBrokenPods, b.maxBrokenReplicas, b.maxTotalSpecified)
	if !b.armed {
		t.Fatal("bounds checked before they were armed")
	}
	if b.minGoodReady < int(minAvailable) || b.minAvailable < minAvailable {
		t.Errorf("availability fell to %d ready good pods, %d available replicas; want at least %d", b.minGoodReady, b.minAvailable, minAvailable)
	}
	if b.maxBrokenPods > int(maxNew) || b.maxBrokenReplicas > maxNew {
		t.Errorf("the broken template reached %d pods, %d replicas; want at most %d", b.maxBrokenPods, b.maxBrokenReplicas, maxNew)
	}
	if b.maxTotalSpecified > maxTotal {
		t.Errorf("the ReplicaSets specified %d replicas together; want at most %d", b.maxTotalSpecified, maxTotal)
	}
}

// replicaSetOf returns the ReplicaSet of ns whose template runs image.
func (e *env) replicaSetOf(t *testing.T, ns, image string) *appsv1.ReplicaSet {
	t.Helper()
	rss, _, err := client.For[*appsv1.ReplicaSet](e.Client).List(context.Background(), ns, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss {
		if rs.Spec.Template.Spec.Containers[0].Image == image {
			return rs
		}
	}
	t.Fatalf("no ReplicaSet runs %s", image)
	return nil
}

// mustList checks that kubectl rollout history lists exactly the revisions.
func mustList(t *testing.T, history string, revisions ...string) {
	t.Helper()
	var got []string
	for _, line := range strings.Split(history, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err == nil {
			got = append(got, f[0])
		}
	}
	if !slices.Equal(got, revisions) || !strings.Contains(history, "REVISION") {
		t.Errorf("kubectl rollout history lists revisions %v, want %v:\n%s", got, revisions, history)
	}
}
