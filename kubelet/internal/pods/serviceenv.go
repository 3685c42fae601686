package pods

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
)

// serviceEnv returns the Docker-links style variables upstream's kubelet
// gives every container for the Services of its namespace (when
// enableServiceLinks is not false) and for default/kubernetes, e.g.
// REDIS_MASTER_SERVICE_HOST and REDIS_MASTER_PORT_6379_TCP_ADDR.
func (w *worker) serviceEnv(ctx context.Context, pod *corev1.Pod) ([]corev1.EnvVar, error) {
	svcs := client.For[*corev1.Service](w.m.c)
	var all []*corev1.Service
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		items, _, err := svcs.List(ctx, pod.Namespace, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil && !IsStatic(pod) {
			return nil, fmt.Errorf("list services for the environment: %w", err)
		}
		// As upstream, a static pod starts without the services' variables
		// when the apiserver cannot say what they are.
		all = items
	}
	if pod.Namespace != metav1.NamespaceDefault {
		if kube, err := svcs.Get(ctx, metav1.NamespaceDefault, "kubernetes"); err == nil {
			all = append(all, kube)
		}
	}
	return ServiceEnv(all), nil
}

// ServiceEnv builds the variables of services, sorted by service name.
func ServiceEnv(services []*corev1.Service) []corev1.EnvVar {
	sorted := append([]*corev1.Service{}, services...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var out []corev1.EnvVar
	seen := map[string]bool{}
	for _, s := range sorted {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || s.Spec.Type == corev1.ServiceTypeExternalName || seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		add := func(k, v string) { out = append(out, corev1.EnvVar{Name: k, Value: v}) }
		add(prefix+"_SERVICE_HOST", ip)
		if len(s.Spec.Ports) == 0 {
			continue
		}
		first := s.Spec.Ports[0]
		add(prefix+"_SERVICE_PORT", strconv.Itoa(int(first.Port)))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				add(prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port)))
			}
		}
		proto := strings.ToLower(string(first.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		add(prefix+"_PORT", fmt.Sprintf("%s://%s", proto, joinHostPort(ip, first.Port)))
		for _, p := range s.Spec.Ports {
			pr := strings.ToLower(string(p.Protocol))
			if pr == "" {
				pr = "tcp"
			}
			base := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(pr))
			add(base, fmt.Sprintf("%s://%s", pr, joinHostPort(ip, p.Port)))
			add(base+"_PROTO", pr)
			add(base+"_PORT", strconv.Itoa(int(p.Port)))
			add(base+"_ADDR", ip)
		}
	}
	return out
}

func joinHostPort(ip string, port int32) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(int(port))
	}
	return ip + ":" + strconv.Itoa(int(port))
}
