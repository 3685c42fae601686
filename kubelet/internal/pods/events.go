package pods

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
)

// Event reasons of the containers' lifecycle, upstream's kubelet's
// (pkg/kubelet/events).
const (
	reasonPulling           = "Pulling"
	reasonPulled            = "Pulled"
	reasonCreated           = "Created"
	reasonStarted           = "Started"
	reasonFailed            = "Failed"
	reasonBackOff           = "BackOff"
	reasonKilling           = "Killing"
	reasonErrImageNeverPull = "ErrImageNeverPull"
	reasonInspectFailed     = "InspectFailed"
)

// imagePulled records upstream's Pulled Event: how long the pull took,
// or that the image was there.
func (w *worker) imagePulled(pod *corev1.Pod, c *corev1.Container, res containerruntime.PullResult) {
	if !res.Pulled {
		w.event(pod, c.Name, corev1.EventTypeNormal, reasonPulled, fmt.Sprintf("Container image %q already present on machine", c.Image))
		return
	}
	w.event(pod, c.Name, corev1.EventTypeNormal, reasonPulled, fmt.Sprintf("Successfully pulled image %q in %s (%s including waiting). Image size: %d bytes.",
		c.Image, res.Duration.Round(time.Millisecond), res.Waited.Round(time.Millisecond), res.Size))
}

// imageFailed records upstream's Events of an image the container could
// not have: the failure itself, then "Error: <reason>".
func (w *worker) imageFailed(pod *corev1.Pod, c *corev1.Container, reason string, err error) {
	switch {
	case errors.Is(err, containerruntime.ErrImageNeverPull):
		w.event(pod, c.Name, corev1.EventTypeWarning, reasonErrImageNeverPull, fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image))
	case errors.Is(err, containerruntime.ErrInvalidImage):
		w.event(pod, c.Name, corev1.EventTypeWarning, reasonInspectFailed, fmt.Sprintf("Failed to apply default image tag %q: %v", c.Image, err))
	default:
		w.event(pod, c.Name, corev1.EventTypeWarning, reasonFailed, fmt.Sprintf("Failed to pull image %q: %v", c.Image, err))
	}
	w.event(pod, c.Name, corev1.EventTypeWarning, reasonFailed, "Error: "+reason)
}

// createFailed makes the container wait with CreateContainerError and
// records upstream's Failed Event.
func (w *worker) createFailed(pod *corev1.Pod, c *corev1.Container, cs *containerState, err error) {
	cs.waitReason, cs.waitMessage = "CreateContainerError", err.Error()
	w.event(pod, c.Name, corev1.EventTypeWarning, reasonFailed, "Error: "+err.Error())
}

// backOff is called while the container's back-off holds its next start:
// an image pull that failed waits as ImagePullBackOff, a container that
// exited as CrashLoopBackOff, each with upstream's BackOff Event, once per
// back-off period.
func (w *worker) backOff(pod *corev1.Pod, c *corev1.Container, cs *containerState) {
	if cs.backoffNoted.Equal(cs.nextStart) {
		return
	}
	cs.backoffNoted = cs.nextStart
	switch {
	case cs.waitReason == "ErrImagePull" || cs.waitReason == "ImagePullBackOff":
		if cs.waitReason == "ErrImagePull" {
			cs.waitReason = "ImagePullBackOff"
			cs.waitMessage = fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.Image, cs.waitMessage)
		}
		w.event(pod, c.Name, corev1.EventTypeNormal, reasonBackOff, fmt.Sprintf("Back-off pulling image %q", c.Image))
		w.event(pod, c.Name, corev1.EventTypeWarning, reasonFailed, "Error: ImagePullBackOff")
	case cs.everRan && !cs.running && cs.waitReason == "":
		w.event(pod, c.Name, corev1.EventTypeWarning, reasonBackOff, fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.Name, podString(pod)))
	}
}
