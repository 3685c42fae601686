package volume

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// errTokenIssuanceUnavailable is why a serviceAccountToken projection is
// not written: the apiserver serves no serviceaccounts/token subresource
// (TokenRequest) yet.
const errTokenIssuanceUnavailable = "token issuance (the serviceaccounts/token subresource, TokenRequest) is not available in this apiserver, so no token file is written"

// projectedVolume holds the files of several sources (configMap, secret,
// downwardAPI, serviceAccountToken) in one directory, on a tmpfs.
type projectedVolume struct {
	apiDataVolume
	m      *Manager
	name   string
	source *corev1.ProjectedVolumeSource
	warned bool // the serviceAccountToken Event was recorded
}

func newProjectedVolume(m *Manager, name, dir string, source *corev1.ProjectedVolumeSource) *projectedVolume {
	return &projectedVolume{apiDataVolume: apiDataVolume{dir: dir, tmpfs: true}, m: m, name: name, source: source}
}

func (v *projectedVolume) SetUp(ctx context.Context, pod *corev1.Pod) (string, error) {
	payload, tokenPaths, err := v.payload(ctx, pod)
	if err != nil {
		return "", err
	}
	if err := v.write(payload); err != nil {
		return "", err
	}
	if len(tokenPaths) > 0 && !v.warned {
		// Only the token source is left out; the pod runs with the rest.
		v.warned = true
		msg := fmt.Sprintf("MountVolume.SetUp failed for the serviceAccountToken source of projected volume %q (path %s): %s",
			v.name, strings.Join(tokenPaths, ", "), errTokenIssuanceUnavailable)
		v.m.logger.Warn("serviceAccountToken projection not written", zap.String("pod", pod.Namespace+"/"+pod.Name),
			zap.String("volume", v.name), zap.Strings("paths", tokenPaths))
		v.m.event(pod, corev1.EventTypeWarning, "FailedMount", msg)
	}
	return v.dir, nil
}

// payload is upstream's projected collectData; it also returns the paths
// of the serviceAccountToken sources it could not fill.
func (v *projectedVolume) payload(ctx context.Context, pod *corev1.Pod) (map[string]FileProjection, []string, error) {
	mode := int32(corev1.ProjectedVolumeSourceDefaultMode)
	if v.source.DefaultMode != nil {
		mode = *v.source.DefaultMode
	}
	payload := map[string]FileProjection{}
	var tokenPaths []string
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
				return nil, nil, fmt.Errorf("configmap %q not found", s.ConfigMap.Name)
			case err != nil:
				return nil, nil, fmt.Errorf("get configmap %q: %w", s.ConfigMap.Name, err)
			}
			files, err := configMapPayload(s.ConfigMap.Items, cm, &mode, optional)
			if err != nil {
				return nil, nil, err
			}
			add(files)
		case s.Secret != nil:
			optional := s.Secret.Optional != nil && *s.Secret.Optional
			sec, err := v.m.secrets.get(ctx, pod.Namespace, s.Secret.Name)
			switch {
			case apierrors.IsNotFound(err) && optional:
				continue
			case apierrors.IsNotFound(err):
				return nil, nil, fmt.Errorf("secret %q not found", s.Secret.Name)
			case err != nil:
				return nil, nil, fmt.Errorf("get secret %q: %w", s.Secret.Name, err)
			}
			files, err := keysPayload(s.Secret.Items, sec.Data, &mode, optional, "secret references non-existent secret key: %s")
			if err != nil {
				return nil, nil, err
			}
			add(files)
		case s.DownwardAPI != nil:
			files, err := downwardAPIPayload(pod, s.DownwardAPI.Items, &mode, v.m.cfg.NodeAllocatable)
			if err != nil {
				return nil, nil, err
			}
			add(files)
		case s.ServiceAccountToken != nil:
			tokenPaths = append(tokenPaths, s.ServiceAccountToken.Path)
		default:
			return nil, nil, fmt.Errorf("projected source %d: only configMap, secret, downwardAPI and serviceAccountToken sources are supported", i)
		}
	}
	sort.Strings(tokenPaths)
	return payload, tokenPaths, nil
}
