package rest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// podLog serves pods/log by streaming the container's log from the
// kubelet API of the pod's node (GET /containerLogs/<ns>/<pod>/<container>),
// as upstream's apiserver does.
func (h *Handler) podLog(w http.ResponseWriter, r *http.Request, req *request) {
	if h.KubeletClient == nil {
		writeError(w, r, apierrors.NewServiceUnavailable("the apiserver has no kubelet client credentials"))
		return
	}
	obj, err := req.store.Get(r.Context(), req.namespace, req.name, "")
	if err != nil {
		writeError(w, r, err)
		return
	}
	pod := obj.(*corev1.Pod)
	q := r.URL.Query()
	container := q.Get("container")
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			names := make([]string, 0, len(pod.Spec.Containers))
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " "))))
			return
		}
		container = pod.Spec.Containers[0].Name
	}
	found := false
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		found = found || c.Name == container
	}
	if !found {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name)))
		return
	}
	if pod.Spec.NodeName == "" {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	host, err := h.kubeletHost(r.Context(), pod.Spec.NodeName)
	if err != nil {
		writeError(w, r, err)
		return
	}
	fwd := url.Values{}
	for _, k := range []string{"follow", "previous", "timestamps", "tailLines", "limitBytes", "sinceSeconds"} {
		if v := q.Get(k); v != "" {
			fwd.Set(k, v)
		}
	}
	target := url.URL{Scheme: "https", Host: host,
		Path: "/containerLogs/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container), RawQuery: fwd.Encode()}
	kreq, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target.String(), nil)
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	resp, err := h.KubeletClient.Do(kreq)
	if err != nil {
		writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("kubelet %s: %v", pod.Spec.NodeName, err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := make([]byte, 4096)
		n, _ := resp.Body.Read(msg)
		writeError(w, r, apierrors.NewBadRequest(strings.TrimSpace(string(msg[:n]))))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
