package volume

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// projectedVolume holds the files of several sources (configMap, secret,
// downwardAPI, serviceAccountToken) in one directory, on a tmpfs.
type projectedVolume struct {
	apiDataVolume
	m      *Manager
	source *corev1.ProjectedVolumeSource
}

func newProjectedVolume(m *Manager, dir string, source *corev1.ProjectedVolumeSource) *projectedVolume {
	return &projectedVolume{apiDataVolume: apiDataVolume{dir: dir, tmpfs: true}, m: m, source: source}
}

func (v *projectedVolume) SetUp(ctx context.Context, pod *corev1.Pod) (string, error) {
	payload, err := v.payload(ctx, pod)
	if err != nil {
		return "", err
	}
	if err := v.write(payload); err != nil {
		return "", err
	}
	return v.dir, nil
}

// payload is upstream's projected collectData. A serviceAccountToken
// source is a token requested for the pod (bound to it) from the API, kept
// until it is due for refresh.
func (v *projectedVolume) payload(ctx context.Context, pod *corev1.Pod) (map[string]FileProjection, error) {
	mode := int32(corev1.ProjectedVolumeSourceDefaultMode)
	if v.source.DefaultMode != nil {
		mode = *v.source.DefaultMode
	}
	payload := map[string]FileProjection{}
	add := func(files map[string]FileProjection) {
		for p, f := range files {
			payload[p] = f
		}
	}
	for i, s := range v.source.Sources {
		switch {
		case s.ConfigMap != nil:
			optional := s.ConfigMap.Optional != nil && *s.ConfigMap.Optional
			cm, err := v.m.configMaps.get(ctx, pod.Namespace, s.ConfigMap.Name)
			switch {
			case apierrors.IsNotFound(err) && optional:
				continue
			case apierrors.IsNotFound(err):
				return nil, fmt.Errorf("configmap %q not found", s.ConfigMap.Name)
			case err != nil:
				return nil, fmt.Errorf("get configmap %q: %w", s.ConfigMap.Name, err)
			}
			files, err := configMapPayload(s.ConfigMap.Items, cm, &mode, optional)
			if err != nil {
				return nil, err
			}
			add(files)
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			sec, err := v.m.secrets.get(ctx, pod.Namespace, s.Secret.Name)
			switch {
			case apierrors.IsNotFound(err) && optional:
				continue
			case apierrors.IsNotFound(err):
				return nil, fmt.Errorf("secret %q not found", s.Secret.Name)
			case err != nil:
				return nil, fmt.Errorf("get secret %q: %w", s.Secret.Name, err)
			}
			files, err := keysPayload(s.Secret.Items, sec.Data, &mode, optional, "secret references non-existent secret key: %s")
			if err != nil {
				return nil, err
			}
			add(files)
		case s.DownwardAPI != nil:
			files, err := downwardAPIPayload(pod, s.DownwardAPI.Items, &mode, v.m.cfg.NodeAllocatable)
			if err != nil {
				return nil, err
			}
			add(files)
		case s.ServiceAccountToken != nil:
			token, err := v.m.tokens.token(ctx, pod, s.ServiceAccountToken)
			if err != nil {
				return nil, fmt.Errorf("serviceAccountToken %q: %w", s.ServiceAccountToken.Path, err)
			}
			payload[s.ServiceAccountToken.Path] = FileProjection{Data: []byte(token), Mode: mode}
		default:
			return nil, fmt.Errorf("projected source %d: only configMap, secret, downwardAPI and serviceAccountToken sources are supported", i)
		}
	}
	return payload, nil
}
