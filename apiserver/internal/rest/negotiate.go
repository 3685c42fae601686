package rest

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/api/status"
)

const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
	// maxBody is upstream's request body limit.
	maxBody = 3 << 20
)

var (
	jsonSerializer = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{})
	jsonStrict     = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Strict: true})
	yamlSerializer = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Yaml: true})
	yamlStrict     = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
)

// accept is what the client asked the response to be.
type accept struct {
	media string // mediaJSON, mediaYAML or mediaProtobuf
	table bool   // as=Table;g=meta.k8s.io;v=v1
	// partial: as=PartialObjectMetadata(List)
	partial bool
}

// negotiate picks the first acceptable media type of the Accept header.
func negotiate(r *http.Request) (accept, error) {
	h := r.Header.Get("Accept")
	if h == "" {
		return accept{media: mediaJSON}, nil
	}
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		a := accept{}
		switch mt {
		case mediaJSON, "*/*", "application/*", "":
			a.media = mediaJSON
		case mediaYAML:
			a.media = mediaYAML
		case mediaProtobuf:
			a.media = mediaProtobuf
		default:
			continue
		}
		switch params["as"] {
		case "":
		case "Table":
			if params["g"] != "meta.k8s.io" || params["v"] != "v1" {
				continue
			}
			a.table = true
		case "PartialObjectMetadata", "PartialObjectMetadataList":
			if params["g"] != "meta.k8s.io" || params["v"] != "v1" {
				continue
			}
			a.partial = true
		default:
			continue
		}
		return a, nil
	}
	return accept{}, apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", fmt.Sprintf("only the following media types are accepted: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf), 0, false)
}

// encode writes obj in the negotiated media type. obj's apiVersion and
// kind must be set.
func encode(w io.Writer, media string, obj runtime.Object) error {
	switch media {
	case mediaYAML:
		return yamlSerializer.Encode(obj, w)
	case mediaProtobuf:
		return scheme.Protobuf.Encode(obj, w)
	}
	return jsonSerializer.Encode(obj, w)
}

// setKind sets obj's apiVersion and kind from the scheme.
func setKind(obj runtime.Object) {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return
	}
	if gvks, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
}

func writeObject(w http.ResponseWriter, a accept, code int, obj runtime.Object) {
	setKind(obj)
	w.Header().Set("Content-Type", a.media)
	w.WriteHeader(code)
	if t, ok := obj.(*metav1.Table); ok && a.media == mediaJSON {
		_ = writeTableJSON(w, t)
		return
	}
	_ = encode(w, a.media, obj)
}

// writeError writes err as a Status in JSON (or the negotiated type).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := status.FromError(err)
	a, nerr := negotiate(r)
	if nerr != nil || a.media == "" {
		a = accept{media: mediaJSON}
	}
	a.table = false
	writeObject(w, a, int(st.Code), &st)
}

// readBody reads a request body up to the limit.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	// Sized from Content-Length when given, so the read does not regrow
	// the buffer; a body longer than announced still meets the limit.
	size := int64(bytes.MinRead)
	if r.ContentLength > 0 && r.ContentLength <= maxBody {
		size += r.ContentLength
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1))
	body := buf.Bytes()
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("read request body: %v", err))
	}
	if len(body) > maxBody {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBody))
	}
	return body, nil
}

// fieldValidation is the fieldValidation query parameter.
type fieldValidation string

const (
	validationStrict fieldValidation = "Strict"
	validationWarn   fieldValidation = "Warn"
	validationIgnore fieldValidation = "Ignore"
)

func parseFieldValidation(r *http.Request) (fieldValidation, error) {
	switch v := r.URL.Query().Get("fieldValidation"); v {
	case "", string(validationWarn):
		return validationWarn, nil
	case string(validationStrict), string(validationIgnore):
		return fieldValidation(v), nil
	default:
		return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation parameter unsupported: %v", v))
	}
}

// decodeBody decodes a JSON, YAML or protobuf body into an object of gvk,
// applying field validation to JSON and YAML.
func decodeBody(w http.ResponseWriter, r *http.Request, gvk schema.GroupVersionKind, body []byte) (runtime.Object, error) {
	if len(body) == 0 {
		return nil, apierrors.NewBadRequest("the request body is empty")
	}
	fv, err := parseFieldValidation(r)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	into, err := scheme.Scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var dec runtime.Decoder
	switch ct {
	case "", mediaJSON:
		dec = jsonSerializer
		if fv != validationIgnore {
			dec = jsonStrict
		}
	case mediaYAML, "application/yml", "text/yaml":
		dec = yamlSerializer
		if fv != validationIgnore {
			dec = yamlStrict
		}
	case mediaProtobuf:
		dec = scheme.Protobuf
	default:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s, %s", mediaJSON, mediaYAML, mediaProtobuf), 0, false)
	}
	if ct == "" || ct == mediaJSON {
		if decodeJSONTyped(body, gvk, into) {
			return into, nil
		}
		if into, err = scheme.Scheme.New(gvk); err != nil { // the failed try wrote into it
			return nil, apierrors.NewInternalError(err)
		}
	}
	obj, got, err := dec.Decode(body, &gvk, into)
	if err != nil {
		if runtime.IsStrictDecodingError(err) && obj != nil {
			switch fv {
			case validationStrict:
				return nil, apierrors.NewBadRequest(err.Error())
			case validationWarn:
				for _, e := range strictErrors(err) {
					w.Header().Add("Warning", fmt.Sprintf(`299 - %q`, e))
				}
			}
		} else {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized or invalid: %v", err))
		}
	}
	if got != nil && got.Kind != "" && (got.Kind != gvk.Kind || got.GroupVersion() != gvk.GroupVersion()) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
	}
	return obj, nil
}

func strictErrors(err error) []string {
	if se, ok := runtime.AsStrictDecodingError(err); ok {
		out := make([]string, 0, len(se.Errors()))
		for _, e := range se.Errors() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// listOptions reads list and watch options from the query.
func listOptions(r *http.Request) (metav1.ListOptions, error) {
	var o metav1.ListOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_ListOptions(&q, &o, nil); err != nil {
		return o, apierrors.NewBadRequest(err.Error())
	}
	return o, nil
}

// readWrite reads what every write request carries: its body and whether
// it is a dry run.
func readWrite(r *http.Request) ([]byte, bool, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, false, err
	}
	dry, err := dryRun(r)
	return body, dry, err
}

// dryRun reports whether the query asks for dryRun=All.
func dryRun(r *http.Request) (bool, error) {
	for _, v := range r.URL.Query()["dryRun"] {
		if v != metav1.DryRunAll {
			return false, apierrors.NewBadRequest(fmt.Sprintf("dryRun: Unsupported value: %q: supported values: %q", v, metav1.DryRunAll))
		}
		return true, nil
	}
	return false, nil
}
