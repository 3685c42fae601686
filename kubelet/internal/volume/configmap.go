package volume

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// apiDataVolume is the common part of the volumes whose files come from the
// API (configMap, secret, downwardAPI, projected): a directory (a tmpfs
// for all but configMap) written by the atomic writer, skipped while the
// payload is the one last written.
type apiDataVolume struct {
	dir     string
	tmpfs   bool
	written bool
	sum     [32]byte
}

// write makes the volume hold payload.
func (a *apiDataVolume) write(payload map[string]FileProjection) error {
	sum := payloadSum(payload)
	if a.written && sum == a.sum {
		if _, err := os.Lstat(a.dir); err == nil {
			return nil
		}
	}
	if err := os.MkdirAll(a.dir, 0o750); err != nil {
		return fmt.Errorf("create volume directory: %w", err)
	}
	if a.tmpfs {
		// Never write before the tmpfs is there: secrets stay off the disk.
		if err := mountTmpfs(a.dir, 0); err != nil {
			return err
		}
	}
	if err := os.Chmod(a.dir, 0o755); err != nil {
		return err
	}
	if _, err := writeAtomic(a.dir, payload); err != nil {
		return fmt.Errorf("write volume files: %w", err)
	}
	a.written, a.sum = true, sum
	return nil
}

func (a *apiDataVolume) TearDown() error {
	a.written = false
	return teardownDir(a.dir)
}

// configMapVolume holds a ConfigMap's keys as files.
type configMapVolume struct {
	apiDataVolume
	m      *Manager
	source *corev1.ConfigMapVolumeSource
}

func newConfigMapVolume(m *Manager, dir string, source *corev1.ConfigMapVolumeSource) *configMapVolume {
	return &configMapVolume{apiDataVolume: apiDataVolume{dir: dir}, m: m, source: source}
}

func (v *configMapVolume) SetUp(ctx context.Context, pod *corev1.Pod) (string, error) {
	optional := v.source.Optional != nil && *v.source.Optional
	cm, err := v.m.configMaps.get(ctx, pod.Namespace, v.source.Name)
	var payload map[string]FileProjection
	switch {
	case apierrors.IsNotFound(err) && optional:
		payload = map[string]FileProjection{}
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("configmap %q not found", v.source.Name)
	case err != nil:
		return "", fmt.Errorf("get configmap %q: %w", v.source.Name, err)
	default:
		if payload, err = configMapPayload(v.source.Items, cm, v.source.DefaultMode, optional); err != nil {
			return "", err
		}
	}
	if err := v.write(payload); err != nil {
		return "", err
	}
	return v.dir, nil
}

// configMapPayload is upstream's configmap.MakePayload: every key, or the
// items' keys at their paths; a missing key is an error unless optional.
func configMapPayload(items []corev1.KeyToPath, cm *corev1.ConfigMap, defaultMode *int32, optional bool) (map[string]FileProjection, error) {
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keysPayload(items, data, defaultMode, optional, "configmap references non-existent config key: %s")
}

// secretVolume holds a Secret's keys as files, on a tmpfs.
type secretVolume struct {
	apiDataVolume
	m      *Manager
	source *corev1.SecretVolumeSource
}

func newSecretVolume(m *Manager, dir string, source *corev1.SecretVolumeSource) *secretVolume {
	return &secretVolume{apiDataVolume: apiDataVolume{dir: dir, tmpfs: true}, m: m, source: source}
}

func (v *secretVolume) SetUp(ctx context.Context, pod *corev1.Pod) (string, error) {
	optional := v.source.Optional != nil && *v.source.Optional
	s, err := v.m.secrets.get(ctx, pod.Namespace, v.source.SecretName)
	var payload map[string]FileProjection
	switch {
	case apierrors.IsNotFound(err) && optional:
		payload = map[string]FileProjection{}
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("secret %q not found", v.source.SecretName)
	case err != nil:
		return "", fmt.Errorf("get secret %q: %w", v.source.SecretName, err)
	default:
		if payload, err = keysPayload(v.source.Items, s.Data, v.source.DefaultMode, optional, "secret references non-existent secret key: %s"); err != nil {
			return "", err
		}
	}
	if err := v.write(payload); err != nil {
		return "", err
	}
	return v.dir, nil
}

// keysPayload maps data's keys to files: all of them at their own names
// with defaultMode, or the items' at the items' paths and modes.
func keysPayload(items []corev1.KeyToPath, data map[string][]byte, defaultMode *int32, optional bool, missing string) (map[string]FileProjection, error) {
	mode := int32(0o644)
	if defaultMode != nil {
		mode = *defaultMode
	}
	payload := make(map[string]FileProjection, len(data))
	if len(items) == 0 {
		for k, v := range data {
			payload[k] = FileProjection{Data: v, Mode: mode}
		}
		return payload, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf(missing, it.Key)
		}
		fp := FileProjection{Data: v, Mode: mode}
		if it.Mode != nil {
			fp.Mode = *it.Mode
		}
		payload[it.Path] = fp
	}
	return payload, nil
}
