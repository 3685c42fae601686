package pods

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/credentials"
	"github.com/coxswain/coxswain/pkg/client"
)

// pullCredentials are the credentials of the pod's imagePullSecrets that
// match image, as upstream's keyring lookup; none without pull secrets or
// matching entries (an anonymous pull). Secrets that cannot be read are
// skipped with upstream's FailedToRetrieveImagePullSecret Event: the pull
// may still work. A malformed docker config secret is an error, as
// upstream's.
func (w *worker) pullCredentials(ctx context.Context, pod *corev1.Pod, image string) ([]containerruntime.Credentials, error) {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return nil, nil
	}
	var secrets []*corev1.Secret
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := client.For[*corev1.Secret](w.m.c).Get(ctx, pod.Namespace, ref.Name)
		if err != nil {
			w.logger.Info("read image pull secret", zap.String("secret", ref.Name), zap.Error(err))
			missing = append(missing, ref.Name)
			continue
		}
		secrets = append(secrets, s)
	}
	if len(missing) > 0 && w.m.cfg.Recorder != nil {
		w.m.cfg.Recorder.Eventf(pod, corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", "",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))
	}
	keyring, err := credentials.FromSecrets(secrets)
	if err != nil {
		return nil, fmt.Errorf("image pull secrets: %w", err)
	}
	repo := image
	if named, err := reference.ParseNormalizedNamed(image); err == nil {
		repo = reference.TrimNamed(named).String()
	}
	var out []containerruntime.Credentials
	for _, a := range keyring.Lookup(repo) {
		out = append(out, containerruntime.Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken})
	}
	return out, nil
}
