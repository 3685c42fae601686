package rest

import (
	"net"
	"net/http"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// verbs a resource serves, as discovery reports them.
var (
	collectionVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	statusVerbs     = metav1.Verbs{"get", "patch", "update"}
)

func subresourceVerbs(sub string) metav1.Verbs {
	switch sub {
	case "status", "scale":
		return statusVerbs
	case "binding", "eviction", "token":
		return metav1.Verbs{"create"}
	case "log":
		return metav1.Verbs{"get"}
	case "exec", "attach", "portforward":
		return metav1.Verbs{"create", "get"}
	case "finalize":
		return metav1.Verbs{"update"}
	}
	return metav1.Verbs{"get"}
}

func subresourceKind(r scheme.Resource, sub string) (group, version, kind string) {
	switch sub {
	case "scale":
		return "autoscaling", "v1", "Scale"
	case "binding":
		return "", "v1", "Binding"
	case "eviction":
		return "policy", "v1", "Eviction"
	case "token":
		return "authentication.k8s.io", "v1", "TokenRequest"
	case "log":
		return "", "v1", "Pod"
	case "exec":
		return "", "v1", "PodExecOptions"
	case "attach":
		return "", "v1", "PodAttachOptions"
	case "portforward":
		return "", "v1", "PodPortForwardOptions"
	}
	return r.GVR.Group, r.GVR.Version, r.Kind
}

// groupVersions returns the served group versions, core first, then the
// groups sorted by name.
func groupVersions() []schema.GroupVersion {
	seen := map[schema.GroupVersion]bool{}
	var out []schema.GroupVersion
	for _, r := range discoveryResources() {
		gv := r.GVR.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Group == "") != (out[j].Group == "") {
			return out[i].Group == ""
		}
		return out[i].Group < out[j].Group
	})
	return out
}

func resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	for _, r := range discoveryResources() {
		if r.GVR.GroupVersion() != gv {
			continue
		}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: r.GVR.Resource, SingularName: r.SingularName, Namespaced: r.Namespaced, Kind: r.Kind,
			Verbs: resourceVerbs(r), ShortNames: r.ShortNames, Categories: r.Categories,
			StorageVersionHash: "",
		})
		for _, sub := range r.Subresources {
			g, v, k := subresourceKind(r, sub)
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: r.GVR.Resource + "/" + sub, Namespaced: r.Namespaced, Kind: k, Group: g, Version: v,
				Verbs: subresourceVerbs(sub),
			})
		}
	}
	return list
}

func serverAddress(r *http.Request) []metav1.ServerAddressByClientCIDR {
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "443")
	}
	return []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: host}}
}

func apiGroupList(r *http.Request) *metav1.APIGroupList {
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, gv := range groupVersions() {
		if gv.Group == "" {
			continue
		}
		gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		list.Groups = append(list.Groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{gvd}, PreferredVersion: gvd})
	}
	return list
}

// wantsAggregated reports whether the client asked for aggregated
// discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList).
func wantsAggregated(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if strings.Contains(part, "g=apidiscovery.k8s.io") && strings.Contains(part, "v=v2") && !strings.Contains(part, "v=v2beta1") && strings.Contains(part, "as=APIGroupDiscoveryList") {
			return true
		}
	}
	return false
}

// aggregated builds the aggregated discovery document of the core group
// (legacy=true) or of the named groups.
func aggregated(legacy bool) *apidiscoveryv2.APIGroupDiscoveryList {
	out := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
	for _, gv := range groupVersions() {
		if (gv.Group == "") != legacy {
			continue
		}
		vd := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, r := range discoveryResources() {
			if r.GVR.GroupVersion() != gv {
				continue
			}
			scope := apidiscoveryv2.ScopeCluster
			if r.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			rd := apidiscoveryv2.APIResourceDiscovery{
				Resource: r.GVR.Resource, SingularResource: r.SingularName, Scope: scope,
				ResponseKind: &metav1.GroupVersionKind{Group: r.GVR.Group, Version: r.GVR.Version, Kind: r.Kind},
				Verbs:        resourceVerbs(r), ShortNames: r.ShortNames, Categories: r.Categories,
			}
			for _, sub := range r.Subresources {
				g, v, k := subresourceKind(r, sub)
				rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
					Subresource: sub, ResponseKind: &metav1.GroupVersionKind{Group: g, Version: v, Kind: k}, Verbs: subresourceVerbs(sub),
				})
			}
			vd.Resources = append(vd.Resources, rd)
		}
		out.Items = append(out.Items, apidiscoveryv2.APIGroupDiscovery{
			ObjectMeta: metav1.ObjectMeta{Name: gv.Group},
			Versions:   []apidiscoveryv2.APIVersionDiscovery{vd},
		})
	}
	return out
}

func (h *Handler) serveDiscovery(w http.ResponseWriter, r *http.Request, parts []string) bool {
	a := accept{media: mediaJSON}
	switch {
	case len(parts) == 1 && parts[0] == "api":
		if wantsAggregated(r) {
			writeAggregated(w, aggregated(true))
			return true
		}
		writeObject(w, a, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}, ServerAddressByClientCIDRs: serverAddress(r)})
	case len(parts) == 1 && parts[0] == "apis":
		if wantsAggregated(r) {
			writeAggregated(w, aggregated(false))
			return true
		}
		writeObject(w, a, http.StatusOK, apiGroupList(r))
	case len(parts) == 2 && parts[0] == "api" && parts[1] == "v1":
		writeObject(w, a, http.StatusOK, resourceList(schema.GroupVersion{Version: "v1"}))
	case len(parts) == 2 && parts[0] == "apis":
		for _, gv := range groupVersions() {
			if gv.Group == parts[1] {
				gvd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
				writeObject(w, a, http.StatusOK, &metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{gvd}, PreferredVersion: gvd})
				return true
			}
		}
		return false
	case len(parts) == 3 && parts[0] == "apis":
		gv := schema.GroupVersion{Group: parts[1], Version: parts[2]}
		for _, g := range groupVersions() {
			if g == gv {
				writeObject(w, a, http.StatusOK, resourceList(gv))
				return true
			}
		}
		return false
	default:
		return false
	}
	return true
}

func writeAggregated(w http.ResponseWriter, list *apidiscoveryv2.APIGroupDiscoveryList) {
	w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
	w.WriteHeader(http.StatusOK)
	_ = jsonSerializer.Encode(list, w)
}
