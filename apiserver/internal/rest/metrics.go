package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// The metrics.k8s.io API (NodeMetrics, PodMetrics), which upstream serves
// from metrics-server through API aggregation, is served here in-process:
// each request reads the summary API (/stats/summary) of the Ready
// kubelets it needs, with the apiserver's kubelet client certificate, as
// pods/log does. The kubelets answer from their last two samples, so a
// request costs one small HTTPS round trip per node.

// metricsGV is the served metrics group version.
var metricsGV = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}

// metricsResources are the resources of metrics.k8s.io as discovery lists
// them: read-only, not stored.
var metricsResources = []scheme.Resource{
	{GVR: metricsGV.WithResource("nodes"), Kind: "NodeMetrics", ListKind: "NodeMetricsList"},
	{GVR: metricsGV.WithResource("pods"), Kind: "PodMetrics", ListKind: "PodMetricsList", Namespaced: true},
}

// metricsVerbs are the verbs of the metrics resources.
var metricsVerbs = metav1.Verbs{"get", "list"}

// metricsWindow is the window reported with the usage: the kubelet's
// sampling interval (upstream's housekeeping interval), over which its
// CPU rate is taken.
const metricsWindow = 10 * time.Second

// kubeletScrapeTimeout bounds the wait for one kubelet's summary.
const kubeletScrapeTimeout = 5 * time.Second

// maxParallelScrapes bounds the kubelets asked at once.
const maxParallelScrapes = 16

// discoveryResources are the resources discovery lists: the stored ones
// and metrics.k8s.io's.
func discoveryResources() []scheme.Resource {
	return append(scheme.Resources(), metricsResources...)
}

// resourceVerbs are the verbs discovery reports for r.
func resourceVerbs(r scheme.Resource) metav1.Verbs {
	if r.GVR.GroupVersion() == metricsGV {
		return metricsVerbs
	}
	return collectionVerbs
}

// The types of metrics.k8s.io/v1beta1 (k8s.io/metrics/pkg/apis/metrics/
// v1beta1), with upstream's JSON names.

// NodeMetrics is the resource usage of a node.
type NodeMetrics struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Timestamp is the end of the window the usage was measured over.
	Timestamp metav1.Time     `json:"timestamp"`
	Window    metav1.Duration `json:"window"`
	// Usage is the memory working set and the CPU rate.
	Usage corev1.ResourceList `json:"usage"`
}

// NodeMetricsList is a list of NodeMetrics.
type NodeMetricsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeMetrics `json:"items"`
}

// PodMetrics is the resource usage of a pod's containers.
type PodMetrics struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Timestamp         metav1.Time        `json:"timestamp"`
	Window            metav1.Duration    `json:"window"`
	Containers        []ContainerMetrics `json:"containers"`
}

// ContainerMetrics is the resource usage of one container.
type ContainerMetrics struct {
	Name  string              `json:"name"`
	Usage corev1.ResourceList `json:"usage"`
}

// PodMetricsList is a list of PodMetrics.
type PodMetricsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PodMetrics `json:"items"`
}

// kubeletSummary is the part of the kubelet's summary (upstream's
// stats/v1alpha1 Summary) the metrics API reads.
type kubeletSummary struct {
	Node struct {
		NodeName string         `json:"nodeName"`
		CPU      *summaryCPU    `json:"cpu"`
		Memory   *summaryMemory `json:"memory"`
	} `json:"node"`
	Pods []struct {
		PodRef struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			UID       string `json:"uid"`
		} `json:"podRef"`
		Containers []struct {
			Name   string         `json:"name"`
			CPU    *summaryCPU    `json:"cpu"`
			Memory *summaryMemory `json:"memory"`
		} `json:"containers"`
	} `json:"pods"`
}

type summaryCPU struct {
	Time           metav1.Time `json:"time"`
	UsageNanoCores *uint64     `json:"usageNanoCores"`
}

type summaryMemory struct {
	Time            metav1.Time `json:"time"`
	WorkingSetBytes *uint64     `json:"workingSetBytes"`
}

// usage is the ResourceList of a CPU rate and a working set, as
// metrics-server writes it (CPU in nanocores, memory in Ki).
func usage(cpu *summaryCPU, mem *summaryMemory) (corev1.ResourceList, metav1.Time, bool) {
	if cpu == nil || cpu.UsageNanoCores == nil || mem == nil || mem.WorkingSetBytes == nil {
		return nil, metav1.Time{}, false
	}
	ts := cpu.Time
	if mem.Time.After(ts.Time) {
		ts = mem.Time
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(*cpu.UsageNanoCores), -9),
		corev1.ResourceMemory: *resource.NewQuantity(int64(*mem.WorkingSetBytes), resource.BinarySI),
	}, ts, true
}

// isMetricsPath reports whether parts (the URL path split at "/") is under
// /apis/metrics.k8s.io/v1beta1/.
func isMetricsPath(parts []string) bool {
	return len(parts) >= 4 && parts[0] == "apis" && parts[1] == metricsGV.Group && parts[2] == metricsGV.Version
}

// serveMetrics serves GET .../nodes[/NAME], .../pods and
// .../namespaces/NS/pods[/NAME] of metrics.k8s.io/v1beta1, with label
// and field selectors (metadata.name, and metadata.namespace for pods).
func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request, parts []string) {
	req := &request{}
	rest := parts[3:]
	if len(rest) >= 3 && rest[0] == "namespaces" {
		req.namespace, rest = rest[1], rest[2:]
	}
	notFound := apierrors.NewNotFound(schema.GroupResource{}, "")
	notFound.ErrStatus.Message = "the server could not find the requested resource"
	if len(rest) == 0 || len(rest) > 2 || (rest[0] != "nodes" && rest[0] != "pods") || (rest[0] == "nodes" && req.namespace != "") {
		writeError(w, r, notFound)
		return
	}
	req.gvr = metricsGV.WithResource(rest[0])
	if len(rest) == 2 {
		req.name = rest[1]
	}
	verb := "list"
	if req.name != "" {
		verb = "get"
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		if h.Metrics != nil {
			h.Metrics.Requests.WithLabelValues(verb, req.gvr.Resource, "rest", fmt.Sprint(rec.code)).Inc()
			h.Metrics.Latency.WithLabelValues(verb, req.gvr.Resource).Observe(time.Since(start).Seconds())
		}
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(rec, r, apierrors.NewMethodNotSupported(req.gvr.GroupResource(), strings.ToLower(r.Method)))
		return
	}
	if v := r.URL.Query().Get("watch"); v == "1" || v == "true" {
		writeError(rec, r, apierrors.NewMethodNotSupported(req.gvr.GroupResource(), "watch"))
		return
	}
	if err := h.authorize(r, verb, req); err != nil {
		writeError(rec, r, err)
		return
	}
	media, err := metricsMedia(r)
	if err != nil {
		writeError(rec, r, err)
		return
	}
	if h.KubeletClient == nil {
		writeError(rec, r, apierrors.NewServiceUnavailable("the apiserver has no kubelet client credentials"))
		return
	}
	q := r.URL.Query()
	labelSel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		writeError(rec, r, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err)))
		return
	}
	fieldSel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		writeError(rec, r, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err)))
		return
	}
	var out any
	if req.gvr.Resource == "nodes" {
		out, err = h.nodeMetrics(r.Context(), req.name, labelSel, fieldSel)
	} else {
		out, err = h.podMetrics(r.Context(), req.namespace, req.name, labelSel, fieldSel)
	}
	if err != nil {
		writeError(rec, r, err)
		return
	}
	var b []byte
	if media == mediaYAML {
		b, err = yaml.Marshal(out)
	} else {
		b, err = json.Marshal(out)
	}
	if err != nil {
		writeError(rec, r, apierrors.NewInternalError(err))
		return
	}
	rec.Header().Set("Content-Type", media)
	rec.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = rec.Write(b)
	}
}

// metricsMedia is the media type of a metrics answer: JSON unless the
// client accepts only YAML; the types have no protobuf encoding.
func metricsMedia(r *http.Request) (string, error) {
	h := r.Header.Get("Accept")
	if h == "" {
		return mediaJSON, nil
	}
	yamlOK := false
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["as"] != "" {
			// Table and the like are not served: the client falls back to
			// its next choice.
			continue
		}
		switch mt {
		case mediaJSON, "*/*", "application/*":
			return mediaJSON, nil
		case mediaYAML:
			yamlOK = true
		}
	}
	if yamlOK {
		return mediaYAML, nil
	}
	return "", apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", fmt.Sprintf("only the following media types are accepted: %s, %s", mediaJSON, mediaYAML), 0, false)
}

// nodeReady reports whether the node's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeMetrics answers NodeMetrics of name, or the NodeMetricsList of the
// Ready nodes matching the selectors.
func (h *Handler) nodeMetrics(ctx context.Context, name string, labelSel labels.Selector, fieldSel fields.Selector) (any, error) {
	nodes, _ := h.Registry.Store(corev1.SchemeGroupVersion.WithResource("nodes"))
	notFound := apierrors.NewNotFound(metricsGV.WithResource("nodemetrics").GroupResource(), name)
	var list []*corev1.Node
	if name != "" {
		obj, err := nodes.Get(ctx, "", name, "")
		if apierrors.IsNotFound(err) {
			return nil, notFound
		}
		if err != nil {
			return nil, err
		}
		list = append(list, obj.(*corev1.Node))
	} else {
		res, err := nodes.List(ctx, "", metav1.ListOptions{LabelSelector: labelSel.String()})
		if err != nil {
			return nil, err
		}
		for _, e := range res.Items {
			obj, err := e.Object()
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			n := obj.(*corev1.Node)
			if fieldSel.Matches(fields.Set{"metadata.name": n.Name}) {
				list = append(list, n)
			}
		}
	}
	var ready []*corev1.Node
	for _, n := range list {
		if nodeReady(n) {
			ready = append(ready, n)
		}
	}
	sums := h.scrapeKubelets(ctx, ready)
	now := metav1.Now()
	out := &NodeMetricsList{TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: metricsGV.String()}, Items: []NodeMetrics{}}
	for _, n := range ready {
		s := sums[n.Name]
		if s == nil {
			continue
		}
		u, ts, ok := usage(s.Node.CPU, s.Node.Memory)
		if !ok {
			continue
		}
		out.Items = append(out.Items, NodeMetrics{
			TypeMeta:   metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: metricsGV.String()},
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: now},
			Timestamp:  ts, Window: metav1.Duration{Duration: metricsWindow}, Usage: u,
		})
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].Name < out.Items[j].Name })
	if name != "" {
		if len(out.Items) == 0 {
			return nil, notFound
		}
		return &out.Items[0], nil
	}
	return out, nil
}

// podMetrics answers PodMetrics of namespace/name, or the PodMetricsList
// of the pods (of namespace, when set) matching the selectors whose
// containers' usage their Ready node's kubelet reports.
func (h *Handler) podMetrics(ctx context.Context, namespace, name string, labelSel labels.Selector, fieldSel fields.Selector) (any, error) {
	podStore, _ := h.Registry.Store(corev1.SchemeGroupVersion.WithResource("pods"))
	nodeStore, _ := h.Registry.Store(corev1.SchemeGroupVersion.WithResource("nodes"))
	notFound := apierrors.NewNotFound(metricsGV.WithResource("podmetrics").GroupResource(), namespace+"/"+name)
	var pods []*corev1.Pod
	if name != "" {
		obj, err := podStore.Get(ctx, namespace, name, "")
		if apierrors.IsNotFound(err) {
			return nil, notFound
		}
		if err != nil {
			return nil, err
		}
		pods = append(pods, obj.(*corev1.Pod))
	} else {
		res, err := podStore.List(ctx, namespace, metav1.ListOptions{LabelSelector: labelSel.String()})
		if err != nil {
			return nil, err
		}
		for _, e := range res.Items {
			obj, err := e.Object()
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			p := obj.(*corev1.Pod)
			if fieldSel.Matches(fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace}) {
				pods = append(pods, p)
			}
		}
	}
	var nodes []*corev1.Node
	seen := map[string]bool{}
	for _, p := range pods {
		if p.Spec.NodeName == "" || seen[p.Spec.NodeName] {
			continue
		}
		seen[p.Spec.NodeName] = true
		obj, err := nodeStore.Get(ctx, "", p.Spec.NodeName, "")
		if err != nil {
			continue
		}
		if n := obj.(*corev1.Node); nodeReady(n) {
			nodes = append(nodes, n)
		}
	}
	sums := h.scrapeKubelets(ctx, nodes)
	now := metav1.Now()
	out := &PodMetricsList{TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: metricsGV.String()}, Items: []PodMetrics{}}
	for _, p := range pods {
		s := sums[p.Spec.NodeName]
		if s == nil {
			continue
		}
		for _, ps := range s.Pods {
			if ps.PodRef.Namespace != p.Namespace || ps.PodRef.Name != p.Name || (ps.PodRef.UID != "" && ps.PodRef.UID != string(p.UID)) {
				continue
			}
			pm := PodMetrics{
				TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metricsGV.String()},
				ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, CreationTimestamp: now},
				Window:     metav1.Duration{Duration: metricsWindow}, Containers: []ContainerMetrics{},
			}
			complete := len(ps.Containers) > 0
			for _, c := range ps.Containers {
				u, ts, ok := usage(c.CPU, c.Memory)
				if !ok {
					// A container sampled once has no CPU rate yet:
					// metrics-server leaves such a pod out too.
					complete = false
					break
				}
				if ts.After(pm.Timestamp.Time) {
					pm.Timestamp = ts
				}
				pm.Containers = append(pm.Containers, ContainerMetrics{Name: c.Name, Usage: u})
			}
			if complete {
				out.Items = append(out.Items, pm)
			}
			break
		}
	}
	sort.Slice(out.Items, func(i, j int) bool {
		a, b := out.Items[i], out.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	if name != "" {
		if len(out.Items) == 0 {
			return nil, notFound
		}
		return &out.Items[0], nil
	}
	return out, nil
}

// scrapeKubelets reads the summaries of the nodes' kubelets, in parallel;
// a kubelet that fails is logged and left out.
func (h *Handler) scrapeKubelets(ctx context.Context, nodes []*corev1.Node) map[string]*kubeletSummary {
	out := make(map[string]*kubeletSummary, len(nodes))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxParallelScrapes)
	)
	for _, n := range nodes {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			s, err := h.scrapeKubelet(ctx, n)
			if err != nil {
				if h.Logger != nil {
					h.Logger.Warn("kubelet summary failed", zap.String("node", n.Name), zap.Error(err))
				}
				return
			}
			mu.Lock()
			out[n.Name] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// scrapeKubelet reads the CPU and memory summary of node's kubelet.
func (h *Handler) scrapeKubelet(ctx context.Context, n *corev1.Node) (*kubeletSummary, error) {
	host, err := nodeKubeletHost(n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, kubeletScrapeTimeout)
	defer cancel()
	u := url.URL{Scheme: "https", Host: host, Path: "/stats/summary", RawQuery: "only_cpu_and_memory=true"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.KubeletClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: read summary: %w", n.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kubelet %s: summary: HTTP %d: %s", n.Name, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 512)])))
	}
	var s kubeletSummary
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("kubelet %s: decode summary: %w", n.Name, err)
	}
	return &s, nil
}
