package rest

import (
	"encoding"
	stdjson "encoding/json"
	"reflect"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// decodeJSONTyped decodes a JSON body into a typed object of gvk in one
// pass when the body is clean: valid UTF-8 JSON with no unknown, duplicate
// or miscased fields, and an apiVersion and kind that are gvk's or absent.
// That is the object apimachinery's strict serializer would give, with
// nothing to warn about. Otherwise it reports false and the serializer
// decodes the body again into a fresh object, for its exact errors and
// warnings.
//
// The pass is encoding/json v2 (go-json-experiment), which decodes a pod
// in less than half the time of sigs.k8s.io/json and, by default, matches
// names case-sensitively and refuses duplicate names and invalid UTF-8:
// every way it differs from the serializer on a body it takes is a
// refusal, and the serializer then decides. The one difference in what
// they produce, whole numbers in an interface value (float64 here, int64
// there), is kept out by taking only kinds without interface values.
func decodeJSONTyped(body []byte, gvk schema.GroupVersionKind, into runtime.Object) bool {
	if _, ok := into.(runtime.Unstructured); ok || !oneAnswer(reflect.TypeOf(into)) {
		return false
	}
	if err := jsonv2.Unmarshal(body, into, jsonv2.RejectUnknownMembers(true)); err != nil {
		return false
	}
	got := into.GetObjectKind().GroupVersionKind()
	if got.Kind == "" {
		got.Kind = gvk.Kind
	}
	if got.Version == "" && (got.Group == "" || got.Group == gvk.Group) {
		got.Group, got.Version = gvk.Group, gvk.Version
	}
	return got == gvk
}

// oneAnswers caches oneAnswer per type: read on every JSON write, filled once per kind.
var oneAnswers sync.Map // reflect.Type -> bool

// oneAnswer reports whether t holds no interface value that json would
// decode itself: a type that decodes itself (UnmarshalJSON or
// UnmarshalText, as RawExtension and Quantity) is the same code under both
// decoders and is not looked into.
func oneAnswer(t reflect.Type) bool {
	if v, ok := oneAnswers.Load(t); ok {
		return v.(bool)
	}
	v := noInterfaces(t, map[reflect.Type]bool{})
	oneAnswers.Store(t, v)
	return v
}

var (
	jsonUnmarshaler = reflect.TypeFor[stdjson.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func noInterfaces(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler) {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Interface:
		return false
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return noInterfaces(t.Elem(), seen)
	case reflect.Map:
		return noInterfaces(t.Key(), seen) && noInterfaces(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous || f.Tag.Get("json") == "-" {
				continue
			}
			if !noInterfaces(f.Type, seen) {
				return false
			}
		}
	}
	return true
}
