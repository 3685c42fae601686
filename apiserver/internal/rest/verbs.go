package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/coxswain/coxswain/apiserver/internal/fieldmanager"
	"github.com/coxswain/coxswain/apiserver/internal/registry/core"
	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
	"github.com/coxswain/coxswain/pkg/api/scheme"
)

func (h *Handler) respond(w http.ResponseWriter, r *http.Request, req *request, code int, obj runtime.Object) {
	a, err := negotiate(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if a.table {
		t, err := h.table(r, req, []runtime.Object{obj})
		if err != nil {
			writeError(w, r, err)
			return
		}
		a.table = false
		if a.media == mediaYAML {
			a.media = mediaJSON
		}
		writeObject(w, a, code, t)
		return
	}
	if a.partial {
		writeObject(w, a, code, partialMetadata(obj))
		return
	}
	writeObject(w, a, code, obj)
}

func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	acc, _ := meta.Accessor(obj)
	out := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if m, ok := acc.(*metav1.ObjectMeta); ok {
		out.ObjectMeta = *m
	}
	return out
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, req *request) {
	switch req.subresource {
	case "", "status":
	case "scale":
		h.getScale(w, r, req)
		return
	case "log":
		if req.gvr.Group == "" && req.gvr.Resource == "pods" {
			h.podLog(w, r, req)
			return
		}
		fallthrough
	default:
		writeError(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{Group: req.gvr.Group, Resource: req.gvr.Resource + "/" + req.subresource}, "get"))
		return
	}
	obj, err := req.store.Get(r.Context(), req.namespace, req.name, r.URL.Query().Get("resourceVersion"))
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.respond(w, r, req, http.StatusOK, obj)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, req *request) {
	a, err := negotiate(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	opts, err := listOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := req.store.List(r.Context(), req.namespace, opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if a.media == mediaProtobuf && !a.table && !a.partial {
		h.listProtobuf(w, r, req, res)
		return
	}
	objs := make([]runtime.Object, 0, len(res.Items))
	for _, e := range res.Items {
		obj, err := e.Object()
		if err != nil {
			writeError(w, r, apierrors.NewInternalError(err))
			return
		}
		objs = append(objs, obj)
	}
	lm := metav1.ListMeta{ResourceVersion: res.ResourceVersion, Continue: res.Continue, RemainingItemCount: res.Remaining}
	if a.table {
		t, err := h.table(r, req, objs)
		if err != nil {
			writeError(w, r, err)
			return
		}
		t.ListMeta = lm
		if a.media == mediaYAML {
			a.media = mediaJSON
		}
		writeObject(w, a, http.StatusOK, t)
		return
	}
	if a.partial {
		out := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}, ListMeta: lm}
		for _, o := range objs {
			out.Items = append(out.Items, *partialMetadata(o))
		}
		writeObject(w, a, http.StatusOK, out)
		return
	}
	list, err := req.store.Resource.NewList()
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	if err := meta.SetList(list, objs); err != nil {
		writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	if la, err := meta.ListAccessor(list); err == nil {
		la.SetResourceVersion(lm.ResourceVersion)
		la.SetContinue(lm.Continue)
		la.SetRemainingItemCount(lm.RemainingItemCount)
	}
	list.GetObjectKind().SetGroupVersionKind(req.gvr.GroupVersion().WithKind(req.store.Resource.ListKind))
	writeObject(w, a, http.StatusOK, list)
}

// listProtobuf writes a protobuf list assembled from the cached objects'
// bytes, decoding nothing.
func (h *Handler) listProtobuf(w http.ResponseWriter, r *http.Request, req *request, res *generic.ListResult) {
	lm := metav1.ListMeta{ResourceVersion: res.ResourceVersion, Continue: res.Continue, RemainingItemCount: res.Remaining}
	lmRaw, err := lm.Marshal()
	if err != nil {
		writeError(w, r, apierrors.NewInternalError(err))
		return
	}
	size := len(lmRaw) + 8
	for _, e := range res.Items {
		size += len(e.Raw) + 8
	}
	body := etcd.AppendBytesField(make([]byte, 0, size), 1, lmRaw)
	for _, e := range res.Items {
		raw := e.Raw
		if raw == nil {
			obj, err := e.Object()
			if err == nil {
				setKind(obj)
				raw, err = runtime.Encode(scheme.Protobuf, obj)
			}
			if err != nil {
				writeError(w, r, apierrors.NewInternalError(err))
				return
			}
		}
		inner, err := etcd.ObjectBytes(raw)
		if err != nil {
			writeError(w, r, apierrors.NewInternalError(err))
			return
		}
		body = etcd.AppendBytesField(body, 2, inner)
	}
	out := etcd.AppendEnvelope(make([]byte, 0, len(body)+64), req.gvr.GroupVersion().String(), req.store.Resource.ListKind, body)
	w.Header().Set("Content-Type", mediaProtobuf)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, req *request) {
	body, dry, err := readWrite(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	switch {
	case req.subresource == "" && req.name == "":
		obj, err := decodeBody(w, r, req.store.Resource.GVK(), body)
		if err != nil {
			writeError(w, r, err)
			return
		}
		created, err := req.store.Create(ctx, req.namespace, obj, dry)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h.respond(w, r, req, http.StatusCreated, created)
	case req.gvr.Group == "" && req.gvr.Resource == "pods" && req.subresource == "binding":
		obj, err := decodeBody(w, r, corev1.SchemeGroupVersion.WithKind("Binding"), body)
		if err != nil {
			writeError(w, r, err)
			return
		}
		b := obj.(*corev1.Binding)
		if b.Name == "" {
			b.Name = req.name
		}
		if _, err := core.Bind(ctx, req.store, req.namespace, b, dry); err != nil {
			writeError(w, r, err)
			return
		}
		writeObject(w, accept{media: mediaJSON}, http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
	case req.gvr.Group == "" && req.gvr.Resource == "pods" && req.subresource == "eviction":
		obj, err := decodeBody(w, r, policyv1.SchemeGroupVersion.WithKind("Eviction"), body)
		if err != nil {
			writeError(w, r, err)
			return
		}
		st, err := core.Evict(ctx, req.store, req.namespace, req.name, obj.(*policyv1.Eviction))
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeObject(w, accept{media: mediaJSON}, http.StatusCreated, st)
	case req.gvr.Group == "" && req.gvr.Resource == "serviceaccounts" && req.subresource == "token" && h.TokenRequests != nil:
		obj, err := decodeBody(w, r, authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"), body)
		if err != nil {
			writeError(w, r, err)
			return
		}
		out, err := h.TokenRequests.CreateToken(ctx, req.namespace, req.name, obj.(*authenticationv1.TokenRequest))
		if err != nil {
			writeError(w, r, err)
			return
		}
		a, err := negotiate(r)
		if err != nil || a.media == "" {
			a = accept{media: mediaJSON}
		}
		writeObject(w, accept{media: a.media}, http.StatusCreated, out)
	default:
		writeError(w, r, apierrors.NewMethodNotSupported(req.gvr.GroupResource(), "create"))
	}
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request, req *request) {
	body, dry, err := readWrite(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if req.subresource == "scale" {
		obj, err := decodeBody(w, r, autoscalingv1.SchemeGroupVersion.WithKind("Scale"), body)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h.setScale(w, r, req, obj.(*autoscalingv1.Scale).Spec.Replicas, dry)
		return
	}
	obj, err := decodeBody(w, r, req.store.Resource.GVK(), body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var out runtime.Object
	switch req.subresource {
	case "":
		out, err = req.store.Update(r.Context(), req.namespace, req.name, obj, dry)
	case "status":
		out, err = req.store.UpdateStatus(r.Context(), req.namespace, req.name, obj, dry)
	case "finalize":
		out, err = core.Finalize(r.Context(), req.store, req.name, obj, dry)
	default:
		err = apierrors.NewMethodNotSupported(req.gvr.GroupResource(), "update")
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.respond(w, r, req, http.StatusOK, out)
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request, req *request) {
	body, dry, err := readWrite(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	pt := types.PatchType(ct)
	ctx := r.Context()
	if req.subresource == "scale" {
		scale, err := h.scaleOf(r, req)
		if err != nil {
			writeError(w, r, err)
			return
		}
		patched, err := generic.ApplyPatch(scale, pt, body)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h.setScale(w, r, req, patched.(*autoscalingv1.Scale).Spec.Replicas, dry)
		return
	}
	if pt == types.ApplyPatchType || pt == "application/apply-patch+yaml" {
		h.apply(w, r, req, body, dry)
		return
	}
	if req.subresource != "" && req.subresource != "status" {
		writeError(w, r, apierrors.NewMethodNotSupported(req.gvr.GroupResource(), "patch"))
		return
	}
	out, err := req.store.Patch(ctx, req.namespace, req.name, pt, body, req.subresource == "status", dry)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h.respond(w, r, req, http.StatusOK, out)
}

// apply is server-side apply: the applied configuration is merged into the
// live object (or creates it) by the structured-merge-diff field manager,
// which records field ownership in managedFields and refuses, with 409,
// changes to fields another manager owns unless force=true.
func (h *Handler) apply(w http.ResponseWriter, r *http.Request, req *request, body []byte, dry bool) {
	manager := r.URL.Query().Get("fieldManager")
	if manager == "" {
		writeError(w, r, apierrors.NewBadRequest("PATCH with apply-patch+yaml requires a fieldManager"))
		return
	}
	force := false
	if f := r.URL.Query().Get("force"); f != "" {
		var err error
		if force, err = strconv.ParseBool(f); err != nil {
			writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("invalid force parameter %q", f)))
			return
		}
	}
	tracker, ok := req.store.Fields.(*fieldmanager.Tracker)
	if !ok {
		writeError(w, r, apierrors.NewMethodNotSupported(req.gvr.GroupResource(), "apply"))
		return
	}
	jsonBody, err := yaml.YAMLToJSON(body)
	if err != nil {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err)))
		return
	}
	applied := &unstructured.Unstructured{}
	if err := applied.UnmarshalJSON(jsonBody); err != nil {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the applied configuration is invalid: %v", err)))
		return
	}
	if gvk := applied.GroupVersionKind(); gvk != req.store.Resource.GVK() {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the applied configuration is a %s, the request is for %s", gvk, req.store.Resource.GVK())))
		return
	}
	if applied.GetName() != req.name {
		writeError(w, r, apierrors.NewBadRequest(fmt.Sprintf("the name of the applied configuration (%s) does not match the name in the URL (%s)", applied.GetName(), req.name)))
		return
	}
	ctx := fieldmanager.WithoutManager(r.Context())
	for attempt := 0; ; attempt++ {
		live, err := req.store.Get(ctx, req.namespace, req.name, "")
		create := apierrors.IsNotFound(err)
		if create {
			if req.subresource != "" {
				writeError(w, r, err)
				return
			}
			live, err = req.store.Resource.New()
			if err == nil {
				acc, _ := meta.Accessor(live)
				acc.SetName(req.name)
				acc.SetNamespace(req.namespace)
			}
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		merged, err := tracker.Apply(live, applied.DeepCopy(), manager, req.subresource, force)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var out runtime.Object
		switch {
		case create:
			out, err = req.store.Create(ctx, req.namespace, merged, dry)
		case req.subresource == "status":
			out, err = req.store.UpdateStatus(ctx, req.namespace, req.name, merged, dry)
		default:
			out, err = req.store.Update(ctx, req.namespace, req.name, merged, dry)
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue // the object moved on between the read and the write
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		code := http.StatusOK
		if create {
			code = http.StatusCreated
		}
		h.respond(w, r, req, code, out)
		return
	}
}

func deleteOptions(r *http.Request, body []byte) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	if len(body) > 0 {
		if _, _, err := jsonSerializer.Decode(body, nil, opts); err != nil {
			if err := json.Unmarshal(body, opts); err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid delete options: %v", err))
			}
		}
	}
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_DeleteOptions(&q, opts, nil); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	for _, v := range opts.DryRun {
		if v != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q", v))
		}
	}
	return opts, nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, req *request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	opts, err := deleteOptions(r, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	obj, finished, err := req.store.Delete(r.Context(), req.namespace, req.name, opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	code := http.StatusOK
	if !finished {
		code = http.StatusAccepted
	}
	h.respond(w, r, req, code, obj)
}

func (h *Handler) deleteCollection(w http.ResponseWriter, r *http.Request, req *request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	opts, err := deleteOptions(r, body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	lo, err := listOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := req.store.List(r.Context(), req.namespace, metav1.ListOptions{LabelSelector: lo.LabelSelector, FieldSelector: lo.FieldSelector})
	if err != nil {
		writeError(w, r, err)
		return
	}
	var deleted []runtime.Object
	for _, e := range res.Items {
		ns, name := namespaceName(e)
		obj, _, err := req.store.Delete(r.Context(), ns, name, opts)
		if err != nil && !apierrors.IsNotFound(err) {
			writeError(w, r, err)
			return
		}
		if obj != nil {
			deleted = append(deleted, obj)
		}
	}
	list, err := req.store.Resource.NewList()
	if err == nil {
		_ = meta.SetList(list, deleted)
	}
	h.respond(w, r, req, http.StatusOK, list)
}

func namespaceName(e *cacher.Entry) (string, string) {
	return e.Fields["metadata.namespace"], e.Fields["metadata.name"]
}

// scaleOf builds the autoscaling/v1 Scale of a scalable object.
func (h *Handler) scaleOf(r *http.Request, req *request) (*autoscalingv1.Scale, error) {
	obj, err := req.store.Get(r.Context(), req.namespace, req.name, "")
	if err != nil {
		return nil, err
	}
	return scaleFrom(obj)
}

func (h *Handler) getScale(w http.ResponseWriter, r *http.Request, req *request) {
	s, err := h.scaleOf(r, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeObject(w, accept{media: mediaJSON}, http.StatusOK, s)
}

func (h *Handler) setScale(w http.ResponseWriter, r *http.Request, req *request, replicas int32, dry bool) {
	if replicas < 0 {
		writeError(w, r, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), req.name, nil))
		return
	}
	patch := []byte(`{"spec":{"replicas":` + strconv.Itoa(int(replicas)) + `}}`)
	out, err := req.store.Patch(r.Context(), req.namespace, req.name, types.MergePatchType, patch, false, dry)
	if err != nil {
		writeError(w, r, err)
		return
	}
	s, err := scaleFrom(out)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeObject(w, accept{media: mediaJSON}, http.StatusOK, s)
}
