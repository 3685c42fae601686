package openapi

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// param is one operation parameter.
type param struct {
	name, in, desc, typ string
	required            bool
}

// operation is one HTTP operation on a path, rendered later as OpenAPI v2
// or v3.
type operation struct {
	method, id, action, desc string
	gvk                      schema.GroupVersionKind
	params                   []param
	body                     string   // definition name of the request body; "" for none
	bodyTypes                []string // request content types
	resp                     string   // definition name of the response; "" for a plain string
	codes                    []string // success status codes
}

// pathItem is one path of a group-version with its operations.
type pathItem struct {
	path   string
	params []param // path-level parameters
	ops    []operation
}

const (
	nameStatus        = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
	nameDeleteOptions = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
	namePatch         = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
	nameWatchEvent    = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"
	nameResourceList  = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"
	nameScale         = "io.k8s.api.autoscaling.v1.Scale"
	nameBinding       = "io.k8s.api.core.v1.Binding"
	nameEviction      = "io.k8s.api.policy.v1.Eviction"
)

var (
	pName      = param{name: "name", in: "path", desc: "name of the resource", typ: "string", required: true}
	pNamespace = param{name: "namespace", in: "path", desc: "object name and auth scope, such as for teams and projects", typ: "string", required: true}
	pPretty    = param{name: "pretty", in: "query", desc: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).", typ: "string"}

	pDryRun          = param{name: "dryRun", in: "query", desc: "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed", typ: "string"}
	pFieldManager    = param{name: "fieldManager", in: "query", desc: "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.", typ: "string"}
	pFieldValidation = param{name: "fieldValidation", in: "query", desc: "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.", typ: "string"}
	pForce           = param{name: "force", in: "query", desc: "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", typ: "boolean"}

	pGracePeriod = param{name: "gracePeriodSeconds", in: "query", desc: "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.", typ: "integer"}
	pPropagation = param{name: "propagationPolicy", in: "query", desc: "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.", typ: "string"}

	listParams = []param{
		{name: "allowWatchBookmarks", in: "query", desc: "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.", typ: "boolean"},
		{name: "continue", in: "query", desc: "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.", typ: "string"},
		{name: "fieldSelector", in: "query", desc: "A selector to restrict the list of returned objects by their fields. Defaults to everything.", typ: "string"},
		{name: "labelSelector", in: "query", desc: "A selector to restrict the list of returned objects by their labels. Defaults to everything.", typ: "string"},
		{name: "limit", in: "query", desc: "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.", typ: "integer"},
		{name: "resourceVersion", in: "query", desc: "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset", typ: "string"},
		{name: "resourceVersionMatch", in: "query", desc: "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset", typ: "string"},
		{name: "sendInitialEvents", in: "query", desc: "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.", typ: "boolean"},
		{name: "timeoutSeconds", in: "query", desc: "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.", typ: "integer"},
		{name: "watch", in: "query", desc: "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.", typ: "boolean"},
	}

	patchTypes = []string{
		"application/apply-patch+yaml",
		"application/json-patch+json",
		"application/merge-patch+json",
		"application/strategic-merge-patch+json",
	}
)

// groupTitle is the group as upstream spells it in operation IDs:
// "" → Core, "rbac.authorization.k8s.io" → RbacAuthorization.
func groupTitle(group string) string {
	if group == "" {
		return "Core"
	}
	group = strings.TrimSuffix(group, ".k8s.io")
	var b strings.Builder
	for _, p := range strings.Split(group, ".") {
		if p != "" {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}

// gvTag is the operation tag: core_v1, apps_v1, rbacAuthorization_v1.
func gvTag(gv schema.GroupVersion) string {
	t := groupTitle(gv.Group)
	return strings.ToLower(t[:1]) + t[1:] + "_" + gv.Version
}

// gvPath is the URL prefix of a group-version without the leading slash:
// api/v1 or apis/<group>/<version>.
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// subKind is the kind a subresource (scale, binding, eviction) takes.
type subKind struct {
	gvk schema.GroupVersionKind
	def string
}

// served is one served resource with the definition names of its kind and
// list kind.
type served struct {
	resource           string
	gvk                schema.GroupVersionKind
	listKind           string
	namespaced         bool
	kindName, listName string
	hasStatus          bool
	hasFinalize        bool
	hasLog, hasExec    bool
	scale, binding     *subKind
	eviction           *subKind
}

// pathsFor lists the paths of one served resource.
func pathsFor(s served) []pathItem {
	gv := s.gvk.GroupVersion()
	prefix := "/" + gvPath(gv)
	idGV := groupTitle(gv.Group) + strings.ToUpper(gv.Version[:1]) + gv.Version[1:]
	kind := s.gvk.Kind
	scope := ""
	coll := prefix + "/" + s.resource
	base := []param{pPretty}
	if s.namespaced {
		scope = "Namespaced"
		coll = prefix + "/namespaces/{namespace}/" + s.resource
		base = []param{pNamespace, pPretty}
	}
	item := coll + "/{name}"
	itemParams := append([]param{pName}, base...)
	write := []param{pDryRun, pFieldManager, pFieldValidation}
	patch := []param{pDryRun, pFieldManager, pFieldValidation, pForce}
	del := []param{pDryRun, pGracePeriod, pPropagation}

	var out []pathItem
	out = append(out, pathItem{path: coll, params: base, ops: []operation{
		{method: "get", id: "list" + idGV + scope + kind, action: "list", desc: "list or watch objects of kind " + kind,
			gvk: s.gvk, params: listParams, resp: s.listName, codes: []string{"200"}},
		{method: "post", id: "create" + idGV + scope + kind, action: "post", desc: "create a " + kind,
			gvk: s.gvk, params: write, body: s.kindName, bodyTypes: []string{"*/*"}, resp: s.kindName, codes: []string{"200", "201", "202"}},
		{method: "delete", id: "delete" + idGV + "Collection" + scope + kind, action: "deletecollection", desc: "delete collection of " + kind,
			gvk: s.gvk, params: append(append([]param{}, del...), listParams...), body: nameDeleteOptions, bodyTypes: []string{"*/*"}, resp: nameStatus, codes: []string{"200"}},
	}})
	out = append(out, pathItem{path: item, params: itemParams, ops: []operation{
		{method: "get", id: "read" + idGV + scope + kind, action: "get", desc: "read the specified " + kind,
			gvk: s.gvk, resp: s.kindName, codes: []string{"200"}},
		{method: "put", id: "replace" + idGV + scope + kind, action: "put", desc: "replace the specified " + kind,
			gvk: s.gvk, params: write, body: s.kindName, bodyTypes: []string{"*/*"}, resp: s.kindName, codes: []string{"200", "201"}},
		{method: "patch", id: "patch" + idGV + scope + kind, action: "patch", desc: "partially update the specified " + kind,
			gvk: s.gvk, params: patch, body: namePatch, bodyTypes: patchTypes, resp: s.kindName, codes: []string{"200", "201"}},
		{method: "delete", id: "delete" + idGV + scope + kind, action: "delete", desc: "delete a " + kind,
			gvk: s.gvk, params: del, body: nameDeleteOptions, bodyTypes: []string{"*/*"}, resp: nameStatus, codes: []string{"200", "202"}},
	}})
	if s.namespaced {
		out = append(out, pathItem{path: prefix + "/" + s.resource, params: []param{pPretty}, ops: []operation{
			{method: "get", id: "list" + idGV + kind + "ForAllNamespaces", action: "list", desc: "list or watch objects of kind " + kind,
				gvk: s.gvk, params: listParams, resp: s.listName, codes: []string{"200"}},
		}})
	}
	if s.hasStatus {
		out = append(out, pathItem{path: item + "/status", params: itemParams, ops: []operation{
			{method: "get", id: "read" + idGV + scope + kind + "Status", action: "get", desc: "read status of the specified " + kind,
				gvk: s.gvk, resp: s.kindName, codes: []string{"200"}},
			{method: "put", id: "replace" + idGV + scope + kind + "Status", action: "put", desc: "replace status of the specified " + kind,
				gvk: s.gvk, params: write, body: s.kindName, bodyTypes: []string{"*/*"}, resp: s.kindName, codes: []string{"200", "201"}},
			{method: "patch", id: "patch" + idGV + scope + kind + "Status", action: "patch", desc: "partially update status of the specified " + kind,
				gvk: s.gvk, params: patch, body: namePatch, bodyTypes: patchTypes, resp: s.kindName, codes: []string{"200", "201"}},
		}})
	}
	if s.scale != nil {
		out = append(out, pathItem{path: item + "/scale", params: itemParams, ops: []operation{
			{method: "get", id: "read" + idGV + scope + kind + "Scale", action: "get", desc: "read scale of the specified " + kind,
				gvk: s.scale.gvk, resp: s.scale.def, codes: []string{"200"}},
			{method: "put", id: "replace" + idGV + scope + kind + "Scale", action: "put", desc: "replace scale of the specified " + kind,
				gvk: s.scale.gvk, params: write, body: s.scale.def, bodyTypes: []string{"*/*"}, resp: s.scale.def, codes: []string{"200", "201"}},
			{method: "patch", id: "patch" + idGV + scope + kind + "Scale", action: "patch", desc: "partially update scale of the specified " + kind,
				gvk: s.scale.gvk, params: patch, body: namePatch, bodyTypes: patchTypes, resp: s.scale.def, codes: []string{"200", "201"}},
		}})
	}
	if s.binding != nil {
		out = append(out, pathItem{path: item + "/binding", params: itemParams, ops: []operation{
			{method: "post", id: "create" + idGV + scope + kind + "Binding", action: "post", desc: "create binding of a " + kind,
				gvk: s.binding.gvk, params: write, body: s.binding.def, bodyTypes: []string{"*/*"}, resp: s.binding.def, codes: []string{"200", "201", "202"}},
		}})
	}
	if s.eviction != nil {
		out = append(out, pathItem{path: item + "/eviction", params: itemParams, ops: []operation{
			{method: "post", id: "create" + idGV + scope + kind + "Eviction", action: "post", desc: "create eviction of a " + kind,
				gvk: s.eviction.gvk, params: write, body: s.eviction.def, bodyTypes: []string{"*/*"}, resp: s.eviction.def, codes: []string{"200", "201", "202"}},
		}})
	}
	if s.hasFinalize {
		out = append(out, pathItem{path: item + "/finalize", params: itemParams, ops: []operation{
			{method: "put", id: "replace" + idGV + scope + kind + "Finalize", action: "put", desc: "replace finalize of the specified " + kind,
				gvk: s.gvk, params: write, body: s.kindName, bodyTypes: []string{"*/*"}, resp: s.kindName, codes: []string{"200", "201"}},
		}})
	}
	if s.hasLog {
		out = append(out, pathItem{path: item + "/log", params: itemParams, ops: []operation{
			{method: "get", id: "read" + idGV + scope + kind + "Log", action: "get", desc: "read log of the specified " + kind,
				gvk: schema.GroupVersionKind{Version: gv.Version, Kind: kind}, params: []param{
					{name: "container", in: "query", desc: "The container for which to stream logs. Defaults to only container if there is one container in the pod.", typ: "string"},
					{name: "follow", in: "query", desc: "Follow the log stream of the pod. Defaults to false.", typ: "boolean"},
					{name: "previous", in: "query", desc: "Return previous terminated container logs. Defaults to false.", typ: "boolean"},
					{name: "tailLines", in: "query", desc: "If set, the number of lines from the end of the logs to show.", typ: "integer"},
					{name: "timestamps", in: "query", desc: "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.", typ: "boolean"},
				}, codes: []string{"200"}},
		}})
	}
	if s.hasExec {
		out = append(out, pathItem{path: item + "/exec", params: itemParams, ops: []operation{
			{method: "get", id: "connect" + idGV + "GetNamespacedPodExec", action: "connect", desc: "connect GET requests to exec of Pod",
				gvk: schema.GroupVersionKind{Version: gv.Version, Kind: "PodExecOptions"}, params: execParams, codes: []string{"200"}},
			{method: "post", id: "connect" + idGV + "PostNamespacedPodExec", action: "connect", desc: "connect POST requests to exec of Pod",
				gvk: schema.GroupVersionKind{Version: gv.Version, Kind: "PodExecOptions"}, params: execParams, codes: []string{"200"}},
		}})
	}
	return out
}

var execParams = []param{
	{name: "command", in: "query", desc: "Command is the remote command to execute. argv array. Not executed within a shell.", typ: "string"},
	{name: "container", in: "query", desc: "Container in which to execute the command. Defaults to only container if there is only one container in the pod.", typ: "string"},
	{name: "stderr", in: "query", desc: "Redirect the standard error stream of the pod for this call.", typ: "boolean"},
	{name: "stdin", in: "query", desc: "Redirect the standard input stream of the pod for this call. Defaults to false.", typ: "boolean"},
	{name: "stdout", in: "query", desc: "Redirect the standard output stream of the pod for this call.", typ: "boolean"},
	{name: "tty", in: "query", desc: "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.", typ: "boolean"},
}

var statusText = map[string]string{"200": "OK", "201": "Created", "202": "Accepted", "401": "Unauthorized"}

func gvkExt(gvk schema.GroupVersionKind) map[string]interface{} {
	return map[string]interface{}{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// renderV2 renders a path item as a Swagger 2.0 path object.
func renderV2(p pathItem) map[string]interface{} {
	out := map[string]interface{}{}
	if len(p.params) > 0 {
		out["parameters"] = paramsV2(p.params)
	}
	for _, op := range p.ops {
		params := paramsV2(op.params)
		if op.body != "" {
			params = append(params, map[string]interface{}{
				"name": "body", "in": "body", "required": true,
				"schema": map[string]interface{}{"$ref": "#/definitions/" + op.body},
			})
		}
		responses := map[string]interface{}{"401": map[string]interface{}{"description": "Unauthorized"}}
		for _, c := range op.codes {
			r := map[string]interface{}{"description": statusText[c]}
			if op.resp != "" {
				r["schema"] = map[string]interface{}{"$ref": "#/definitions/" + op.resp}
			} else {
				r["schema"] = map[string]interface{}{"type": "string"}
			}
			responses[c] = r
		}
		o := map[string]interface{}{
			"operationId": op.id,
			"description": op.desc,
			"tags":        []string{gvTag(op.gvk.GroupVersion())},
			"schemes":     []string{"https"},
			"produces":    []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"},
			"responses":   responses,
			extAction:     op.action,
			extGVK:        gvkExt(op.gvk),
		}
		if op.resp == "" {
			o["produces"] = []string{"*/*"}
		}
		if op.action == "list" {
			o["produces"] = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"}
		}
		if len(op.bodyTypes) > 0 {
			o["consumes"] = op.bodyTypes
		} else {
			o["consumes"] = []string{"*/*"}
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		out[op.method] = o
	}
	return out
}

func paramsV2(ps []param) []interface{} {
	out := make([]interface{}, 0, len(ps))
	for _, p := range ps {
		m := map[string]interface{}{"name": p.name, "in": p.in, "description": p.desc, "type": p.typ, "uniqueItems": true}
		if p.required {
			m["required"] = true
		}
		out = append(out, m)
	}
	return out
}

// renderV3 renders a path item as an OpenAPI 3.0 path object.
func renderV3(p pathItem) map[string]interface{} {
	out := map[string]interface{}{}
	if len(p.params) > 0 {
		out["parameters"] = paramsV3(p.params)
	}
	ref := func(name string) map[string]interface{} {
		return map[string]interface{}{"$ref": "#/components/schemas/" + name}
	}
	for _, op := range p.ops {
		responses := map[string]interface{}{"401": map[string]interface{}{"description": "Unauthorized"}}
		for _, c := range op.codes {
			var content map[string]interface{}
			if op.resp != "" {
				content = map[string]interface{}{
					"application/json":                    map[string]interface{}{"schema": ref(op.resp)},
					"application/yaml":                    map[string]interface{}{"schema": ref(op.resp)},
					"application/vnd.kubernetes.protobuf": map[string]interface{}{"schema": ref(op.resp)},
				}
			} else {
				content = map[string]interface{}{"*/*": map[string]interface{}{"schema": map[string]interface{}{"type": "string"}}}
			}
			responses[c] = map[string]interface{}{"description": statusText[c], "content": content}
		}
		o := map[string]interface{}{
			"operationId": op.id,
			"description": op.desc,
			"tags":        []string{gvTag(op.gvk.GroupVersion())},
			"responses":   responses,
			extAction:     op.action,
			extGVK:        gvkExt(op.gvk),
		}
		if len(op.params) > 0 {
			o["parameters"] = paramsV3(op.params)
		}
		if op.body != "" {
			content := map[string]interface{}{}
			for _, t := range op.bodyTypes {
				content[t] = map[string]interface{}{"schema": ref(op.body)}
			}
			rb := map[string]interface{}{"content": content}
			if op.method != "delete" {
				rb["required"] = true
			}
			o["requestBody"] = rb
		}
		out[op.method] = o
	}
	return out
}

func paramsV3(ps []param) []interface{} {
	out := make([]interface{}, 0, len(ps))
	for _, p := range ps {
		m := map[string]interface{}{
			"name": p.name, "in": p.in, "description": p.desc,
			"schema": map[string]interface{}{"type": p.typ, "uniqueItems": true},
		}
		if p.required {
			m["required"] = true
		}
		out = append(out, m)
	}
	return out
}

// refsOf lists the definitions the operations of a path refer to.
func refsOf(p pathItem) []string {
	var out []string
	for _, op := range p.ops {
		if op.body != "" {
			out = append(out, op.body)
		}
		if op.resp != "" {
			out = append(out, op.resp)
		}
	}
	return out
}
