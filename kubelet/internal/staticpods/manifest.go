// Package staticpods runs the pods of the kubelet's --pod-manifest-path
// without the apiserver, as upstream's file config source does, and keeps
// a mirror pod of each in the apiserver once it is reachable.
package staticpods

import (
	"bytes"
	"crypto/md5" //nolint:gosec // upstream's static pod UID is an MD5 hash: not a security use
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// Upstream's annotations of the pods the kubelet gets from its sources.
const (
	// ConfigSourceAnnotation is where the pod came from: "file" here.
	ConfigSourceAnnotation = "kubernetes.io/config.source"
	// ConfigHashAnnotation is the static pod's hash, its UID.
	ConfigHashAnnotation = "kubernetes.io/config.hash"
	// ConfigSeenAnnotation is when the kubelet first saw this version of
	// the pod (RFC 3339, nanoseconds).
	ConfigSeenAnnotation = "kubernetes.io/config.seen"
	// ConfigMirrorAnnotation marks a mirror pod; its value is the hash of
	// the static pod it mirrors.
	ConfigMirrorAnnotation = corev1.MirrorPodAnnotationKey
	// FileSource is ConfigSourceAnnotation's value for manifest files.
	FileSource = "file"
)

// maxManifestSize bounds a manifest file, as upstream's 10 MiB.
const maxManifestSize = 10 << 20

// IsMirror reports whether pod is a mirror pod.
func IsMirror(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[ConfigMirrorAnnotation]
	return ok
}

// Decode reads the pods of a manifest: YAML or JSON, one or more
// documents, each a Pod, a PodList or a v1 List of Pods.
func Decode(data []byte) ([]*corev1.Pod, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*corev1.Pod
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		pods, err := decodeObject(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		out = append(out, pods...)
	}
	return out, nil
}

func decodeObject(raw []byte) ([]*corev1.Pod, error) {
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return []*corev1.Pod{o}, nil
	case *corev1.PodList:
		out := make([]*corev1.Pod, 0, len(o.Items))
		for i := range o.Items {
			out = append(out, &o.Items[i])
		}
		return out, nil
	case *corev1.List:
		var out []*corev1.Pod
		for i, item := range o.Items {
			raw := item.Raw
			if raw == nil && item.Object != nil {
				if raw, err = json.Marshal(item.Object); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			}
			pods, err := decodeObject(raw)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, pods...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("kind %s is not a Pod", gvk.Kind)
	}
}

// Complete makes a decoded manifest pod the static pod the kubelet runs,
// as upstream's file source: the API's defaults; a UID (unless the
// manifest has one) hashing the pod, the node and the file (source);
// the name <name>-<node>; namespace "default" when none; bound to the
// node; the hash, source and seen annotations; a toleration of every
// NoExecute taint. It returns an error when the pod is not valid.
func Complete(pod *corev1.Pod, source, nodeName string, seen time.Time) error {
	if pod.Name == "" {
		return errors.New("metadata.name: required")
	}
	setDefaults(pod)
	if pod.UID == "" {
		pod.UID = Hash(pod, source, nodeName)
	}
	pod.Name = pod.Name + "-" + strings.ToLower(nodeName)
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	pod.Spec.NodeName = nodeName
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[ConfigHashAnnotation] = string(pod.UID)
	pod.Annotations[ConfigSourceAnnotation] = FileSource
	pod.Annotations[ConfigSeenAnnotation] = seen.UTC().Format(time.RFC3339Nano)
	delete(pod.Annotations, ConfigMirrorAnnotation)
	addToleration(pod, corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending}
	return validate(pod)
}

// Hash is upstream's static pod UID: the MD5 of the pod (its deep dump)
// followed by "host:<node>" and "file:<source>", in hex. Upstream hashes
// its internal Pod type, so the value differs from upstream's for the
// same file; what matters holds: any change of the manifest, the node or
// the file's path makes another UID.
func Hash(pod *corev1.Pod, source, nodeName string) types.UID {
	h := md5.New() //nolint:gosec // see the import
	fmt.Fprintf(h, "%v", dump.ForHash(pod))
	fmt.Fprintf(h, "host:%s", nodeName)
	fmt.Fprintf(h, "file:%s", source)
	return types.UID(hex.EncodeToString(h.Sum(nil)))
}

// setDefaults applies the apiserver's defaults the kubelet relies on, as
// upstream decodes manifests with its scheme's defaulting.
func setDefaults(pod *corev1.Pod) {
	s := &pod.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = corev1.RestartPolicyAlways
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = corev1.DNSClusterFirst
	}
	if s.TerminationGracePeriodSeconds == nil {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		s.TerminationGracePeriodSeconds = &grace
	}
	if s.SecurityContext == nil {
		s.SecurityContext = &corev1.PodSecurityContext{}
	}
	if s.SchedulerName == "" {
		s.SchedulerName = corev1.DefaultSchedulerName
	}
	if s.EnableServiceLinks == nil {
		on := corev1.DefaultEnableServiceLinks
		s.EnableServiceLinks = &on
	}
	for i := range s.InitContainers {
		containerDefaults(&s.InitContainers[i])
	}
	for i := range s.Containers {
		containerDefaults(&s.Containers[i])
	}
}

func containerDefaults(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
		if latestTag(c.Image) {
			c.ImagePullPolicy = corev1.PullAlways
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
}

// latestTag reports whether image has the tag latest or none (and no
// digest): upstream's default pull policy is then Always.
func latestTag(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	_, tag, ok := strings.Cut(name, ":")
	return !ok || tag == "latest"
}

func addToleration(pod *corev1.Pod, t corev1.Toleration) {
	for _, have := range pod.Spec.Tolerations {
		if have.Key == t.Key && have.Operator == t.Operator && have.Effect == t.Effect && have.Value == t.Value {
			return
		}
	}
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
}

// validate checks what the kubelet needs of a static pod: valid names, at
// least one container, each with a unique name and an image.
func validate(pod *corev1.Pod) error {
	var errs []error
	for _, msg := range validation.IsDNS1123Subdomain(pod.Name) {
		errs = append(errs, fmt.Errorf("metadata.name %q: %s", pod.Name, msg))
	}
	for _, msg := range validation.IsDNS1123Label(pod.Namespace) {
		errs = append(errs, fmt.Errorf("metadata.namespace %q: %s", pod.Namespace, msg))
	}
	if len(pod.Spec.Containers) == 0 {
		errs = append(errs, errors.New("spec.containers: required"))
	}
	seen := map[string]bool{}
	check := func(field string, cs []corev1.Container) {
		for i, c := range cs {
			path := fmt.Sprintf("spec.%s[%d]", field, i)
			for _, msg := range validation.IsDNS1123Label(c.Name) {
				errs = append(errs, fmt.Errorf("%s.name %q: %s", path, c.Name, msg))
			}
			if seen[c.Name] {
				errs = append(errs, fmt.Errorf("%s.name %q: duplicate", path, c.Name))
			}
			seen[c.Name] = true
			if strings.TrimSpace(c.Image) == "" {
				errs = append(errs, fmt.Errorf("%s.image: required", path))
			}
		}
	}
	check("initContainers", pod.Spec.InitContainers)
	check("containers", pod.Spec.Containers)
	return errors.Join(errs...)
}

// MirrorOf is the mirror pod of a static pod: its copy for the apiserver,
// annotated with its hash and owned by the node, as upstream 1.2x makes
// it.
func MirrorOf(static *corev1.Pod, node *corev1.Node) *corev1.Pod {
	m := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        static.Name,
			Namespace:   static.Namespace,
			Labels:      static.Labels,
			Annotations: map[string]string{},
		},
		Spec: *static.Spec.DeepCopy(),
	}
	for k, v := range static.Annotations {
		m.Annotations[k] = v
	}
	m.Annotations[ConfigMirrorAnnotation] = static.Annotations[ConfigHashAnnotation]
	controller := true
	m.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: &controller,
	}}
	m.Spec.NodeName = node.Name
	return m
}
