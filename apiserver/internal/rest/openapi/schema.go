package openapi

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// Extension names understood by kubectl and other Kubernetes clients.
const (
	extGVK           = "x-kubernetes-group-version-kind"
	extPatchStrategy = "x-kubernetes-patch-strategy"
	extPatchMergeKey = "x-kubernetes-patch-merge-key"
	extAction        = "x-kubernetes-action"
)

// Interfaces the Kubernetes API types implement for the OpenAPI generator.
type (
	modelNamer interface{ OpenAPIModelName() string }
	swaggerDoc interface{ SwaggerDoc() map[string]string }
	schemaType interface{ OpenAPISchemaType() []string }
	schemaFmt  interface{ OpenAPISchemaFormat() string }
	v3OneOf    interface{ OpenAPIV3OneOfTypes() []string }
)

// typeDescriptions holds the type-level descriptions of the few
// apimachinery types that have no SwaggerDoc method (upstream takes them
// from Go comments, which reflection cannot see).
var typeDescriptions = map[string]string{
	"io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\n" +
		"The serialization format is:\n\n```\n<quantity>        ::= <signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n\n" +
		"<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | <digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits> <sign>            ::= \"+\" | \"-\" <signedNumber>    ::= <number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n" +
		"\t(International System of units; See: http://physics.nist.gov/cuu/Units/binary.html)\n\n<decimalSI>       ::= m | \"\" | k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the capitalization.)\n\n<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber>\n```\n\n" +
		"No matter which of the three exponent forms is used, no quantity may represent a number greater than 2^63-1 in magnitude, nor may it have more than 3 decimal places. Numbers larger or more precise will be capped or rounded up. (E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we require larger or smaller quantities.\n\n" +
		"When a Quantity is parsed from a string, it will remember the type of suffix it had, and will use the same type again when it is serialized.\n\n" +
		"Before serializing, Quantity will be put in \"canonical form\". This means that Exponent/suffix will be adjusted up or down (with a corresponding increase or decrease in Mantissa) such that:\n\n" +
		"- No precision is lost - No fractional digits will be emitted - The exponent (or suffix) is as large as possible.\n\nThe sign will be omitted unless the number is negative.\n\n" +
		"Examples:\n\n- 1.5 will be serialized as \"1500m\" - 1.5Gi will be serialized as \"1536Mi\"\n\n" +
		"Note that the quantity will NEVER be internally represented by a floating point number. That is the whole point of this exercise.\n\n" +
		"Non-canonical values will still parse as long as they are well formed, but will be re-emitted in their canonical form. (So always use canonical form, or don't diff.)\n\n" +
		"This format is intended to make it difficult to use these numbers without writing some sort of special handling code in the hopes that that will cause implementors to also use a fixed point implementation.",
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString":  "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Time":        "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":   "MicroTime is version of Time with microsecond level precision.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Duration":    "Duration is a wrapper around time.Duration which supports correct marshaling to YAML and JSON. In particular, it marshals into strings, which can be used as map keys in json.",
	"io.k8s.apimachinery.pkg.runtime.RawExtension":     "RawExtension is used to hold extensions in external versions.\n\nTo use this, make a field which has RawExtension as its type in your external, versioned struct, and Object in your internal struct. You also need to register your various plugin types.\n\nSo what happens? Decode first uses json or yaml to unmarshal the serialized data into your external MyAPIObject. That causes the raw JSON to be stored, but not unpacked. The next step is to copy (using pkg/conversion) into the internal struct. The runtime package's DefaultScheme has conversion functions installed which will unpack the JSON stored in RawExtension, turning it into the correct object type, and storing it in the Object. (TODO: In the case where the object is of an unknown type, a runtime.Unknown object will be created and stored.)",
	"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1":    "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.\n\nEach key is either a '.' representing the field itself, and will always map to an empty set, or a string representing a sub-field or item. The string will follow one of these four formats: 'f:<name>', where <name> is the name of a field in a struct, or key in a map 'v:<value>', where <value> is the exact json formatted value of a list item 'i:<index>', where <index> is position of a item in a list 'k:<keys>', where <keys> is a map of  a list item's key fields to their unique values If a key maps to an empty Fields value, the field that key represents is part of the set.\n\nThe exact format is defined in sigs.k8s.io/structured-merge-diff",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Patch":       "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent":  "Event represents a single event to a watched resource.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.APIResource": "APIResource specifies the name of a resource and whether it is namespaced.",
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// generator turns Go types into OpenAPI schemas by reflection. One
// generator produces one flavour (v2 or v3) of every definition.
type generator struct {
	v3 bool
	// defs maps definition names to schemas; deps maps each definition to
	// the definitions its schema references.
	defs  map[string]*spec.Schema
	deps  map[string]map[string]bool
	types map[string]reflect.Type
	// gvks are the group-version-kinds of top-level kinds, by Go type.
	gvks map[reflect.Type][]schema.GroupVersionKind
	err  error
}

func newGenerator(v3 bool, gvks map[reflect.Type][]schema.GroupVersionKind) *generator {
	return &generator{
		v3:    v3,
		defs:  map[string]*spec.Schema{},
		deps:  map[string]map[string]bool{},
		types: map[string]reflect.Type{},
		gvks:  gvks,
	}
}

func (g *generator) refPrefix() string {
	if g.v3 {
		return "#/components/schemas/"
	}
	return "#/definitions/"
}

func (g *generator) refTo(name string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Ref: spec.MustCreateRef(g.refPrefix() + name)}}
}

// definitionName is the OpenAPI definition name of a named Go type, as
// upstream names it: the reversed-domain package path and the type name.
func definitionName(t reflect.Type) string {
	if n, ok := reflect.Zero(t).Interface().(modelNamer); ok {
		return n.OpenAPIModelName()
	}
	parts := strings.Split(t.PkgPath(), "/")
	if len(parts) > 0 && strings.Contains(parts[0], ".") {
		d := strings.Split(parts[0], ".")
		for i, j := 0, len(d)-1; i < j; i, j = i+1, j-1 {
			d[i], d[j] = d[j], d[i]
		}
		parts[0] = strings.Join(d, ".")
	}
	return strings.Join(parts, ".") + "." + t.Name()
}

func docsOf(t reflect.Type) map[string]string {
	if d, ok := reflect.Zero(t).Interface().(swaggerDoc); ok {
		return d.SwaggerDoc()
	}
	return nil
}

// define makes sure the named struct type t has a definition and returns
// its name.
func (g *generator) define(t reflect.Type) string {
	name := definitionName(t)
	if prev, ok := g.types[name]; ok {
		if prev != t && g.err == nil {
			g.err = fmt.Errorf("openapi: types %v and %v share the definition name %q", prev, t, name)
		}
		return name
	}
	g.types[name] = t
	g.deps[name] = map[string]bool{}
	s := &spec.Schema{}
	g.defs[name] = s // before building: recursive types refer to it
	*s = g.build(t, name)
	return name
}

// build makes the definition of the named struct type t.
func (g *generator) build(t reflect.Type, name string) spec.Schema {
	var s spec.Schema
	s.Description = docsOf(t)[""]
	if s.Description == "" {
		s.Description = typeDescriptions[name]
	}
	zero := reflect.Zero(t).Interface()
	if st, ok := zero.(schemaType); ok {
		format := ""
		if f, ok := zero.(schemaFmt); ok {
			format = f.OpenAPISchemaFormat()
		}
		s.Format = format
		if oo, ok := zero.(v3OneOf); ok && g.v3 {
			for _, typ := range oo.OpenAPIV3OneOfTypes() {
				s.OneOf = append(s.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}}})
			}
		} else {
			s.Type = st.OpenAPISchemaType()
		}
		return s
	}
	s.Type = []string{"object"}
	// Types with their own JSON encoding (RawExtension, FieldsV1) are
	// free-form objects.
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return s
	}
	g.addFields(&s, t, name)
	if gvks := g.gvks[t]; len(gvks) > 0 {
		list := make([]interface{}, 0, len(gvks))
		for _, gvk := range gvks {
			list = append(list, map[string]interface{}{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind})
		}
		s.AddExtension(extGVK, list)
	}
	return s
}

// addFields adds the JSON fields of struct type t to s, inlining embedded
// structs without a JSON name as encoding/json does.
func (g *generator) addFields(s *spec.Schema, t reflect.Type, owner string) {
	docs := docsOf(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				g.addFields(s, et, owner)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		prop := g.fieldSchema(ft, owner)
		ext := spec.Extensions{}
		if v := f.Tag.Get("patchStrategy"); v != "" {
			ext[extPatchStrategy] = v
		}
		if v := f.Tag.Get("patchMergeKey"); v != "" {
			ext[extPatchMergeKey] = v
		}
		desc := docs[name]
		if g.v3 && prop.Ref.String() != "" && (desc != "" || len(ext) > 0) {
			// OpenAPI v3 ignores siblings of $ref; wrap it as upstream does.
			prop = spec.Schema{SchemaProps: spec.SchemaProps{AllOf: []spec.Schema{prop}}}
		}
		prop.Description = desc
		if len(ext) > 0 {
			prop.Extensions = ext
		}
		if s.Properties == nil {
			s.Properties = map[string]spec.Schema{}
		}
		s.Properties[name] = prop
		if !hasOpt(opts, "omitempty") && !hasOpt(opts, "omitzero") {
			switch ft.Kind() {
			case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			default:
				s.Required = append(s.Required, name)
			}
		}
	}
}

func hasOpt(opts, opt string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

func simple(typ, format string) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{typ}, Format: format}}
}

// fieldSchema is the schema of a value of type t inside definition owner.
func (g *generator) fieldSchema(t reflect.Type, owner string) spec.Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && t.Name() != "" {
		name := g.define(t)
		g.deps[owner][name] = true
		return g.refTo(name)
	}
	switch t.Kind() {
	case reflect.String:
		return simple("string", "")
	case reflect.Bool:
		return simple("boolean", "")
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Int:
		return simple("integer", "int32")
	case reflect.Int64, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return simple("integer", "int64")
	case reflect.Float32:
		return simple("number", "float")
	case reflect.Float64:
		return simple("number", "double")
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return simple("string", "byte")
		}
		items := g.fieldSchema(t.Elem(), owner)
		return spec.Schema{SchemaProps: spec.SchemaProps{
			Type:  []string{"array"},
			Items: &spec.SchemaOrArray{Schema: &items},
		}}
	case reflect.Map:
		val := g.fieldSchema(t.Elem(), owner)
		return spec.Schema{SchemaProps: spec.SchemaProps{
			Type:                 []string{"object"},
			AdditionalProperties: &spec.SchemaOrBool{Allows: true, Schema: &val},
		}}
	case reflect.Struct: // anonymous struct
		s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
		g.addFields(&s, t, owner)
		return s
	default: // interfaces and the like: anything goes
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
	}
}

// closure returns the definitions reachable from roots.
func (g *generator) closure(roots []string) map[string]*spec.Schema {
	out := map[string]*spec.Schema{}
	var walk func(string)
	walk = func(n string) {
		if _, ok := out[n]; ok {
			return
		}
		s, ok := g.defs[n]
		if !ok {
			return
		}
		out[n] = s
		for d := range g.deps[n] {
			walk(d)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}
