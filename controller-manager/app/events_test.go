package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/controller-manager/app"
	"github.com/coxswain/coxswain/pkg/client"
)

// recordedEvents lists the Events of ns about the kind and name given,
// as "component reason: message".
func (e *env) recordedEvents(ctx context.Context, ns, kind, name string) ([]string, error) {
	evs, _, err := client.For[*corev1.Event](e.Client).List(ctx, ns, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s %s: %s", ev.Source.Component, ev.Reason, ev.Message))
	}
	slices.Sort(out)
	return out, nil
}

// waitRecorded waits until the Events about kind/name include every one
// of want.
func (e *env) waitRecorded(t *testing.T, ns, kind, name string, want ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("events %q about %s %s", want, kind, name), func(ctx context.Context) (bool, error) {
		got, err := e.recordedEvents(ctx, ns, kind, name)
		if err != nil {
			return false, err
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false, fmt.Errorf("have %q", got)
			}
		}
		return true, nil
	})
}

// TestEvents checks that the controllers record upstream's Events.
func TestEvents(t *testing.T) {
	e := startEnv(t, func(o *app.Options) { o.Controllers = []string{"replicaset", "deployment"} })
	t.Run("ReplicaSet", e.testReplicaSetEvents)
	t.Run("Deployment", e.testDeploymentEvents)
}

// testReplicaSetEvents scales a ReplicaSet up then down: one
// SuccessfulCreate per pod created, one SuccessfulDelete per pod deleted.
func (e *env) testReplicaSetEvents(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("rs-events")
	lbls := map[string]string{"app": "evented"}
	rsc := client.For[*appsv1.ReplicaSet](e.Client)
	if _, err := rsc.Create(ctx, ns, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "evented"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: podTemplate(lbls, "nginx"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	eventually(t, "3 pods", func(ctx context.Context) (bool, error) {
		var err error
		pods, err = e.activePods(ctx, ns, labels.SelectorFromSet(lbls))
		return err == nil && len(pods) == 3, err
	})
	var created []string
	for _, p := range pods {
		created = append(created, "replicaset-controller SuccessfulCreate: Created pod: "+p.Name)
	}
	e.waitRecorded(t, ns, "ReplicaSet", "evented", created...)

	update(t, rsc, ns, "evented", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(1)) })
	eventually(t, "2 SuccessfulDelete events for pods that were created", func(ctx context.Context) (bool, error) {
		got, err := e.recordedEvents(ctx, ns, "ReplicaSet", "evented")
		if err != nil {
			return false, err
		}
		deleted := 0
		for _, p := range pods {
			if slices.Contains(got, "replicaset-controller SuccessfulDelete: Deleted pod: "+p.Name) {
				deleted++
			}
		}
		return deleted == 2, fmt.Errorf("have %q", got)
	})
	got, err := e.recordedEvents(ctx, ns, "ReplicaSet", "evented")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Errorf("events about the ReplicaSet: %q; want 3 creations and 2 deletions", got)
	}
}

// testDeploymentEvents scales a Deployment up and down: each step is a
// ScalingReplicaSet Event on the Deployment with upstream's wording.
func (e *env) testDeploymentEvents(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace("deploy-events")
	lbls := map[string]string{"app": "scaled"}
	dc := client.For[*appsv1.Deployment](e.Client)
	if _, err := dc.Create(ctx, ns, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "scaled"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: podTemplate(lbls, "nginx"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	var rsName string
	eventually(t, "the Deployment's ReplicaSet", func(ctx context.Context) (bool, error) {
		rss, _, err := client.For[*appsv1.ReplicaSet](e.Client).List(ctx, ns, metav1.ListOptions{})
		if err != nil || len(rss) != 1 {
			return false, err
		}
		rsName = rss[0].Name
		return true, nil
	})
	e.waitRecorded(t, ns, "Deployment", "scaled",
		"deployment-controller ScalingReplicaSet: Scaled up replica set "+rsName+" from 0 to 2")

	update(t, dc, ns, "scaled", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(4)) })
	e.waitRecorded(t, ns, "Deployment", "scaled",
		"deployment-controller ScalingReplicaSet: Scaled up replica set "+rsName+" from 2 to 4")

	update(t, dc, ns, "scaled", func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(1)) })
	e.waitRecorded(t, ns, "Deployment", "scaled",
		"deployment-controller ScalingReplicaSet: Scaled down replica set "+rsName+" from 4 to 1")

	// The ReplicaSet's pods are recorded by the ReplicaSet controller.
	eventually(t, "SuccessfulCreate events on the Deployment's ReplicaSet", func(ctx context.Context) (bool, error) {
		got, err := e.recordedEvents(ctx, ns, "ReplicaSet", rsName)
		if err != nil {
			return false, err
		}
		n := 0
		for _, ev := range got {
			if strings.HasPrefix(ev, "replicaset-controller SuccessfulCreate: Created pod: "+rsName+"-") {
				n++
			}
		}
		return n == 4, fmt.Errorf("have %q", got)
	})
}
