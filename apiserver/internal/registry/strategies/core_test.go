package strategies

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	s := namespaceStrategy{}
	s.Default(ns)
	s.PrepareForCreate(ctx, ns)
	if ns.Status.Phase != corev1.NamespaceActive || !cmp.Equal(ns.Spec.Finalizers, []corev1.FinalizerName{"kubernetes"}) ||
		ns.Labels[corev1.LabelMetadataName] != "team" {
		t.Errorf("got phase %s, finalizers %v, labels %v", ns.Status.Phase, ns.Spec.Finalizers, ns.Labels)
	}
	if got := s.Fields(ns)["status.phase"]; got != "Active" {
		t.Errorf("status.phase field = %q, want Active", got)
	}
	bad := ns.DeepCopy()
	bad.Spec.Finalizers = append(bad.Spec.Finalizers, "custom")
	checkErrs(t, s.Validate(ctx, bad), []string{"spec.finalizers[1]: Invalid value"})
}

func TestNode(t *testing.T) {
	s := nodeStrategy{}
	node := &corev1.Node{Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24"}, Status: corev1.NodeStatus{
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}
	s.Default(node)
	s.PrepareForCreate(ctx, node)
	if !cmp.Equal(node.Spec.PodCIDRs, []string{"10.244.1.0/24"}) || node.Status.Allocatable.Cpu().String() != "4" {
		t.Errorf("got podCIDRs %v, allocatable %v", node.Spec.PodCIDRs, node.Status.Allocatable)
	}
	checkErrs(t, s.Validate(ctx, node), nil)

	bad := node.DeepCopy()
	bad.Spec.PodCIDR, bad.Spec.PodCIDRs = "10.244.1.0/33", []string{"10.244.1.0/33"}
	checkErrs(t, s.Validate(ctx, bad), []string{"spec.podCIDRs[0]: Invalid value"})

	changed := node.DeepCopy()
	changed.Spec.PodCIDR, changed.Spec.PodCIDRs = "10.244.2.0/24", []string{"10.244.2.0/24"}
	checkErrs(t, s.ValidateUpdate(ctx, changed, node), []string{"spec.podCIDRs: Forbidden"})
	unset := &corev1.Node{}
	checkErrs(t, s.ValidateUpdate(ctx, node, unset), nil)

	node.Spec.Unschedulable = true
	if got := s.Fields(node)["spec.unschedulable"]; got != "true" {
		t.Errorf("spec.unschedulable field = %q, want true", got)
	}
}

func TestConfigMapAndSecret(t *testing.T) {
	t.Run("configmap keys", func(t *testing.T) {
		cm := &corev1.ConfigMap{Data: map[string]string{"ok.key": "v", "bad key": "v"}}
		checkErrs(t, configMapStrategy{}.Validate(ctx, cm), []string{"data[bad key]: Invalid value"})
	})
	t.Run("configmap size", func(t *testing.T) {
		cm := &corev1.ConfigMap{Data: map[string]string{"a": strings.Repeat("x", 1<<20+1)}}
		checkErrs(t, configMapStrategy{}.Validate(ctx, cm), []string{"[]: Too long"})
	})
	t.Run("immutable configmap", func(t *testing.T) {
		old := &corev1.ConfigMap{Data: map[string]string{"a": "1"}, Immutable: new(true)}
		cm := old.DeepCopy()
		cm.Data["a"] = "2"
		checkErrs(t, configMapStrategy{}.ValidateUpdate(ctx, cm, old), []string{"data: Forbidden"})
	})
	t.Run("secret defaults", func(t *testing.T) {
		s := &corev1.Secret{StringData: map[string]string{"password": "x"}}
		secretStrategy{}.Default(s)
		if s.Type != corev1.SecretTypeOpaque || string(s.Data["password"]) != "x" || s.StringData != nil {
			t.Errorf("got type %s, data %v, stringData %v", s.Type, s.Data, s.StringData)
		}
		if got := (secretStrategy{}).Fields(s)["type"]; got != "Opaque" {
			t.Errorf("type field = %q, want Opaque", got)
		}
	})
	t.Run("tls secret", func(t *testing.T) {
		s := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}}
		checkErrs(t, secretStrategy{}.Validate(ctx, s), []string{"data[tls.key]: Required value"})
	})
	t.Run("secret type immutable", func(t *testing.T) {
		old := &corev1.Secret{Type: corev1.SecretTypeOpaque}
		s := &corev1.Secret{Type: "example.com/other"}
		checkErrs(t, secretStrategy{}.ValidateUpdate(ctx, s, old), []string{"type: Invalid value"})
	})
}

func TestEvent(t *testing.T) {
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "a"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "b"},
		Source: corev1.EventSource{Component: "kubelet"}}
	checkErrs(t, eventStrategy{}.Validate(ctx, ev), []string{"involvedObject.namespace: Invalid value"})
	ev.InvolvedObject.Namespace = "a"
	checkErrs(t, eventStrategy{}.Validate(ctx, ev), nil)
	f := eventStrategy{}.Fields(ev)
	if f["involvedObject.kind"] != "Pod" || f["source"] != "kubelet" {
		t.Errorf("Fields() = %v", f)
	}
}

func TestPersistentVolumes(t *testing.T) {
	pv := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{
		Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
		AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}},
	}}
	s := persistentVolumeStrategy{}
	s.Default(pv)
	s.PrepareForCreate(ctx, pv)
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || *pv.Spec.VolumeMode != corev1.PersistentVolumeFilesystem ||
		pv.Status.Phase != corev1.VolumePending {
		t.Errorf("pv not defaulted: %+v", pv)
	}
	checkErrs(t, s.Validate(ctx, pv), nil)
	noSource := pv.DeepCopy()
	noSource.Spec.HostPath = nil
	checkErrs(t, s.Validate(ctx, noSource), []string{"spec: Required value"})

	pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	cs := persistentVolumeClaimStrategy{}
	cs.Default(pvc)
	cs.PrepareForCreate(ctx, pvc)
	if *pvc.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || pvc.Status.Phase != corev1.ClaimPending {
		t.Errorf("pvc not defaulted: %+v", pvc)
	}
	checkErrs(t, cs.Validate(ctx, pvc), nil)

	tests := []struct {
		name   string
		mutate func(*corev1.PersistentVolumeClaimSpec)
		want   []string
	}{
		{"expand", func(s *corev1.PersistentVolumeClaimSpec) {
			s.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}, nil},
		{"bind", func(s *corev1.PersistentVolumeClaimSpec) { s.VolumeName = "pv1" }, nil},
		{"shrink", func(s *corev1.PersistentVolumeClaimSpec) {
			s.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("1Mi")
		},
			[]string{"spec.resources.requests.storage: Forbidden"}},
		{"access modes", func(s *corev1.PersistentVolumeClaimSpec) {
			s.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		},
			[]string{"spec: Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := pvc.DeepCopy()
			tt.mutate(&n.Spec)
			checkErrs(t, cs.ValidateUpdate(ctx, n, pvc), tt.want)
		})
	}
}
