package volume

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coxswain/coxswain/pkg/client"
)

// claimVolume is the PersistentVolume a PersistentVolumeClaim is bound to
// (spec.volumeName, as the PV controller or the user set it), when that is
// a hostPath or local volume: its path on the node is mounted as is.
type claimVolume struct {
	m      *Manager
	source *corev1.PersistentVolumeClaimVolumeSource
}

func (v *claimVolume) SetUp(ctx context.Context, pod *corev1.Pod) (string, error) {
	c := v.m.cfg.Client
	if c == nil {
		return "", fmt.Errorf("no apiserver client to read persistentvolumeclaim %q", v.source.ClaimName)
	}
	pvc, err := client.For[*corev1.PersistentVolumeClaim](c).Get(ctx, pod.Namespace, v.source.ClaimName)
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("persistentvolumeclaim %q not found", v.source.ClaimName)
	}
	if err != nil {
		return "", fmt.Errorf("get persistentvolumeclaim %q: %w", v.source.ClaimName, err)
	}
	if pvc.DeletionTimestamp != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q is being deleted", pvc.Name)
	}
	if pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound to a persistentvolume (phase %q, no spec.volumeName)", pvc.Name, pvc.Status.Phase)
	}
	pv, err := client.For[*corev1.PersistentVolume](c).Get(ctx, "", pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("persistentvolume %q of claim %q not found", pvc.Spec.VolumeName, pvc.Name)
	}
	if err != nil {
		return "", fmt.Errorf("get persistentvolume %q: %w", pvc.Spec.VolumeName, err)
	}
	if ref := pv.Spec.ClaimRef; ref != nil && (ref.Namespace != pvc.Namespace || ref.Name != pvc.Name || (ref.UID != "" && ref.UID != pvc.UID)) {
		return "", fmt.Errorf("persistentvolume %q is bound to another claim (%s/%s)", pv.Name, ref.Namespace, ref.Name)
	}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return "", fmt.Errorf("persistentvolume %q: block volumes are not supported", pv.Name)
	}
	switch {
	case pv.Spec.HostPath != nil:
		t := corev1.HostPathUnset
		if pv.Spec.HostPath.Type != nil {
			t = *pv.Spec.HostPath.Type
		}
		if err := checkHostPathType(pv.Spec.HostPath.Path, t); err != nil {
			return "", fmt.Errorf("persistentvolume %q: %w", pv.Name, err)
		}
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		info, err := os.Stat(pv.Spec.Local.Path)
		if err != nil {
			return "", fmt.Errorf("persistentvolume %q: local path: %w", pv.Name, err)
		}
		if !info.IsDir() {
			return "", fmt.Errorf("persistentvolume %q: local path %s is not a directory", pv.Name, pv.Spec.Local.Path)
		}
		return pv.Spec.Local.Path, nil
	default:
		return "", fmt.Errorf("persistentvolume %q: only hostPath and local persistent volumes are supported by this kubelet", pv.Name)
	}
}

// TearDown leaves the node's path alone.
func (v *claimVolume) TearDown() error { return nil }
