package integration

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

func TestPodBindingAndGracefulDelete(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](env.Client)
	p, err := pods.Create(ctx, "default", pod("p"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Spec.SchedulerName != "default-scheduler" || p.Status.Phase != corev1.PodPending {
		t.Fatalf("defaults not applied: restartPolicy %q schedulerName %q phase %q", p.Spec.RestartPolicy, p.Spec.SchedulerName, p.Status.Phase)
	}
	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-1"}}
	if _, err := env.Client.CreateSubresource(ctx, pods.GVR(), "default", "p", "binding", bind, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	bound, err := pods.Get(ctx, "default", "p")
	if err != nil || bound.Spec.NodeName != "node-1" {
		t.Fatalf("after binding nodeName = %q (%v), want node-1", bound.Spec.NodeName, err)
	}
	if _, err := env.Client.CreateSubresource(ctx, pods.GVR(), "default", "p", "binding", bind, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second binding: %v, want Conflict", err)
	}
	// spec.nodeName selects the node's pods.
	items, _, err := pods.List(ctx, "", metav1.ListOptions{FieldSelector: "spec.nodeName=node-1"})
	if err != nil || len(items) != 1 {
		t.Fatalf("list spec.nodeName=node-1: %d items %v, want 1", len(items), err)
	}

	// A bound pod terminates gracefully; the kubelet's grace-0 delete removes it.
	finished, err := pods.Delete(ctx, "default", "p", metav1.DeleteOptions{})
	if err != nil || finished {
		t.Fatalf("graceful delete: finished=%v err=%v, want pending", finished, err)
	}
	term, err := pods.Get(ctx, "default", "p")
	if err != nil || term.DeletionTimestamp == nil || term.DeletionGracePeriodSeconds == nil || *term.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("terminating pod: %+v %v", term.ObjectMeta, err)
	}
	zero := int64(0)
	if finished, err := pods.Delete(ctx, "default", "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil || !finished {
		t.Fatalf("grace-0 delete: finished=%v err=%v", finished, err)
	}
	// An unbound pod goes at once.
	if _, err := pods.Create(ctx, "default", pod("q")); err != nil {
		t.Fatal(err)
	}
	if finished, err := pods.Delete(ctx, "default", "q", metav1.DeleteOptions{}); err != nil || !finished {
		t.Fatalf("unbound delete: finished=%v err=%v", finished, err)
	}
}

func TestFinalizersAndNamespaces(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	nss := client.For[*corev1.Namespace](env.Client)
	cms := client.For[*corev1.ConfigMap](env.Client)
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if _, err := nss.Get(ctx, "", name); err != nil {
			t.Fatalf("system namespace %s: %v", name, err)
		}
	}
	if _, err := nss.Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	// A finalizer holds an object after delete until it is removed.
	cm, err := cms.Create(ctx, "team", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}})
	if err != nil {
		t.Fatal(err)
	}
	if finished, err := cms.Delete(ctx, "team", "held", metav1.DeleteOptions{}); err != nil || finished {
		t.Fatalf("delete with finalizer: finished=%v err=%v", finished, err)
	}
	cm, err = cms.Get(ctx, "team", "held")
	if err != nil || cm.DeletionTimestamp == nil {
		t.Fatalf("object with finalizer after delete: %v %v", cm, err)
	}
	cm.Finalizers = nil
	if _, err := cms.Update(ctx, "team", cm); err != nil {
		t.Fatalf("remove finalizer: %v", err)
	}
	if _, err := cms.Get(ctx, "team", "held"); !apierrors.IsNotFound(err) {
		t.Fatalf("after the last finalizer went: %v, want NotFound", err)
	}

	// A terminating namespace refuses new content.
	if _, err := nss.Delete(ctx, "", "team", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := nss.Get(ctx, "", "team")
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace after delete: %v %v, want Terminating", ns.Status.Phase, err)
	}
	_, err = cms.Create(ctx, "team", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create in terminating namespace: %v, want Forbidden", err)
	}
	// A plain update keeps spec.finalizers; finalize empties them, which
	// releases the terminating namespace.
	ns.Spec.Finalizers = nil
	if upd, err := nss.Update(ctx, "", ns); err != nil || len(upd.Spec.Finalizers) == 0 {
		t.Fatalf("plain update of spec.finalizers: %v %v, want them kept", upd, err)
	}
	ns, _ = nss.Get(ctx, "", "team")
	ns.Spec.Finalizers = nil
	fin, err := env.Client.UpdateSubresource(ctx, nss.GVR(), "", "finalize", ns, metav1.UpdateOptions{})
	if err != nil || len(fin.(*corev1.Namespace).Spec.Finalizers) != 0 {
		t.Fatalf("finalize: %v %v", fin, err)
	}
	if _, err := nss.Get(ctx, "", "team"); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace after finalize: %v, want NotFound", err)
	}
}

func TestPagination(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	for i := 0; i < 25; i++ {
		if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%02d", i), Labels: map[string]string{"even": fmt.Sprint(i%2 == 0)}}}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	opts := metav1.ListOptions{Limit: 10, LabelSelector: "even=true"}
	pages := 0
	for {
		items, lm, err := cms.List(ctx, "default", opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range items {
			names = append(names, it.Name)
		}
		if lm.Continue == "" {
			break
		}
		// Writes between pages do not show in a continued list.
		if pages == 1 {
			if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "p99", Labels: map[string]string{"even": "true"}}}); err != nil {
				t.Fatal(err)
			}
		}
		opts.Continue = lm.Continue
	}
	if len(names) != 13 || pages != 2 {
		t.Fatalf("paged list: %d names in %d pages (%v), want 13 in 2", len(names), pages, names)
	}
	if _, _, err := cms.List(ctx, "default", metav1.ListOptions{Limit: 5, Continue: "garbage"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad continue token: %v, want BadRequest", err)
	}
}
