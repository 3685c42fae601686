package pods

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func staticTestPod() *corev1.Pod {
	grace := int64(3)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-n1", Namespace: "default", UID: "hash",
			Annotations: map[string]string{configSourceAnnotation: "file"}},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, RestartPolicy: corev1.RestartPolicyAlways,
			Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
}

func TestIsStatic(t *testing.T) {
	for src, want := range map[string]bool{"": false, "api": false, "file": true, "http": true} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if src != "" {
			p.Annotations[configSourceAnnotation] = src
		}
		if got := IsStatic(p); got != want {
			t.Errorf("IsStatic(source %q) = %v, want %v", src, got, want)
		}
	}
}

// TestStaticStatus checks a static pod's status goes to StaticPodStatus,
// once per change, and never to the apiserver (the manager has no
// client: a write would panic).
func TestStaticStatus(t *testing.T) {
	pod := staticTestPod()
	w := newTestWorker(pod)
	var got []corev1.PodStatus
	w.m.cfg.StaticPodStatus = func(p *corev1.Pod, st corev1.PodStatus) {
		if p.UID != pod.UID {
			t.Errorf("status of pod %s, want %s", p.UID, pod.UID)
		}
		got = append(got, st)
	}
	st := w.writeStatus(context.Background(), pod)
	if len(got) != 1 || got[0].Phase != st.Phase || got[0].Phase != corev1.PodPending {
		t.Fatalf("statuses handed on: %+v; want one, Pending", got)
	}
	w.writeStatus(context.Background(), pod)
	if len(got) != 1 {
		t.Errorf("unchanged status handed on again: %d calls", len(got))
	}
	w.state("c").running, w.state("c").everRan = true, true
	w.writeStatus(context.Background(), pod)
	if len(got) != 2 || got[1].Phase != corev1.PodRunning {
		t.Errorf("after the container started: %d calls, last phase %q; want 2, Running", len(got), got[len(got)-1].Phase)
	}
}

func TestRemoveStatic(t *testing.T) {
	m := &Manager{events: make(chan *podEvent, 1)}
	pod := staticTestPod()
	m.RemoveStatic(pod)
	ev := <-m.events
	if ev.pod == nil || ev.pod.DeletionTimestamp == nil || ev.pod.DeletionGracePeriodSeconds == nil || *ev.pod.DeletionGracePeriodSeconds != 3 {
		t.Fatalf("event pod %+v; want the pod being deleted with grace 3", ev.pod)
	}
	if pod.DeletionTimestamp != nil {
		t.Error("RemoveStatic changed the source's pod")
	}
}
