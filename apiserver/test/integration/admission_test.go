package integration

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/apiserver/app"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

func noExecuteToleration(key string, secs *int64) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}
}

func admissionPod(name string, tols []corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}, Tolerations: tols},
	}
}

// checkAdmitted checks a pod's tolerations and service account, as
// returned by the create and as stored.
func checkAdmitted(ctx context.Context, t *testing.T, pods *client.Typed[*corev1.Pod], created *corev1.Pod, wantTols []corev1.Toleration, wantSA string) {
	t.Helper()
	stored, err := pods.Get(ctx, created.Namespace, created.Name)
	if err != nil {
		t.Fatal(err)
	}
	for what, p := range map[string]*corev1.Pod{"created": created, "stored": stored} {
		if diff := cmp.Diff(wantTols, p.Spec.Tolerations); diff != "" {
			t.Errorf("%s pod %s: tolerations (-want +got):\n%s", what, p.Name, diff)
		}
		if p.Spec.ServiceAccountName != wantSA || p.Spec.DeprecatedServiceAccount != wantSA {
			t.Errorf("%s pod %s: serviceAccountName %q, serviceAccount %q; want %q", what, p.Name, p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount, wantSA)
		}
	}
}

// Pods created over gRPC and REST (kubectl) get upstream's default
// tolerations (not-ready and unreachable NoExecute for 300 s) unless they
// tolerate those taints already, and the "default" service account unless
// they name one.
func TestAdmissionPodDefaults(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](env.Client)
	defaults := []corev1.Toleration{
		noExecuteToleration(corev1.TaintNodeNotReady, new(int64(300))),
		noExecuteToleration(corev1.TaintNodeUnreachable, new(int64(300))),
	}

	// gRPC: a pod with none.
	created, err := pods.Create(ctx, "default", admissionPod("plain", nil))
	if err != nil {
		t.Fatal(err)
	}
	checkAdmitted(ctx, t, pods, created, defaults, "default")

	// Its own tolerations of both taints are kept, values and all.
	own := []corev1.Toleration{
		noExecuteToleration(corev1.TaintNodeUnreachable, new(int64(5))),
		noExecuteToleration(corev1.TaintNodeNotReady, nil),
	}
	p := admissionPod("tolerant", own)
	p.Spec.ServiceAccountName = "robot"
	if created, err = pods.Create(ctx, "default", p); err != nil {
		t.Fatal(err)
	}
	checkAdmitted(ctx, t, pods, created, own, "robot")

	// Only one of them: the other is added.
	partial := []corev1.Toleration{noExecuteToleration(corev1.TaintNodeUnreachable, new(int64(7)))}
	if created, err = pods.Create(ctx, "default", admissionPod("partial", partial)); err != nil {
		t.Fatal(err)
	}
	checkAdmitted(ctx, t, pods, created, append(partial, defaults[0]), "default")

	// A server-side dry run shows the admitted pod.
	dryObj, err := env.Client.Create(ctx, pods.GVR(), "default", admissionPod("dry", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if dry, ok := dryObj.(*corev1.Pod); !ok {
		t.Errorf("dry-run create returned %T", dryObj)
	} else if diff := cmp.Diff(defaults, dry.Spec.Tolerations); diff != "" {
		t.Errorf("dry-run pod tolerations (-want +got):\n%s", diff)
	}

	// REST: kubectl run and kubectl create -f.
	k := newKubectl(t, env)
	k.ok("run", "kubectl-run", "--image=nginx", "--restart=Never")
	if created, err = pods.Get(ctx, "default", "kubectl-run"); err != nil {
		t.Fatal(err)
	}
	checkAdmitted(ctx, t, pods, created, defaults, "default")
	manifest := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kubectl-create"},"spec":{"containers":[{"name":"c","image":"nginx"}],` +
		`"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":11}]}}`
	out, errOut, err := k.run(manifest, "create", "-f", "-", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl create: %v\n%s", err, errOut)
	}
	var fromKubectl corev1.Pod
	if err := json.Unmarshal([]byte(out), &fromKubectl); err != nil {
		t.Fatalf("kubectl create -o json: %v\n%s", err, out)
	}
	wantREST := []corev1.Toleration{noExecuteToleration(corev1.TaintNodeNotReady, new(int64(11))), defaults[1]}
	if diff := cmp.Diff(wantREST, fromKubectl.Spec.Tolerations); diff != "" {
		t.Errorf("kubectl create -o json tolerations (-want +got):\n%s", diff)
	}
	checkAdmitted(ctx, t, pods, &fromKubectl, wantREST, "default")
}

// --default-*-toleration-seconds set the tolerations' durations, and
// --disable-admission-plugins turns plugins off.
func TestAdmissionFlags(t *testing.T) {
	env := harness.Start(t, func(o *app.Options) {
		o.DefaultNotReadyTolerationSeconds = 30
		o.DefaultUnreachableTolerationSeconds = 45
		o.DisableAdmissionPlugins = []string{"ServiceAccount"}
	})
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](env.Client)
	created, err := pods.Create(ctx, "default", admissionPod("p", nil))
	if err != nil {
		t.Fatal(err)
	}
	checkAdmitted(ctx, t, pods, created, []corev1.Toleration{
		noExecuteToleration(corev1.TaintNodeNotReady, new(int64(30))),
		noExecuteToleration(corev1.TaintNodeUnreachable, new(int64(45))),
	}, "")
}
