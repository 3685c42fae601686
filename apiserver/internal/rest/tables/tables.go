// Package tables converts served objects into metav1.Table responses
// (Accept: application/json;as=Table;g=meta.k8s.io;v=v1), with the same
// columns and cell formats as upstream Kubernetes' server-side printers, so
// that `kubectl get` prints exactly what it prints against upstream.
//
// Like upstream's apiserver, every row carries all cells, the `-o wide` ones
// included; kubectl hides the columns whose Priority is above 0 unless asked.
package tables

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Options control a conversion.
type Options struct {
	// Now is the reference time for ages and durations; zero means time.Now().
	Now time.Time
	// NoHeaders leaves out the column definitions (TableOptions.noHeaders).
	NoHeaders bool
	// IncludeObject says what each row's Object holds: the object's metadata
	// as a PartialObjectMetadata ("Metadata", also when empty: kubectl's
	// default), the whole object ("Object"), or nothing ("None").
	IncludeObject metav1.IncludeObjectPolicy
}

// A rowFunc computes the cells (and, for some kinds, the conditions) of one
// object's row; Object is filled in by the caller.
type rowFunc func(obj runtime.Object, now time.Time) (metav1.TableRow, error)

// printer is the table definition of one resource.
type printer struct {
	columns []metav1.TableColumnDefinition
	row     rowFunc
}

// printers holds the table definitions of the built-in served resources.
var printers = map[schema.GroupVersionResource]printer{}

func register(group, version, resource string, p printer) {
	printers[schema.GroupVersionResource{Group: group, Version: version, Resource: resource}] = p
}

// handler adapts a typed row function. Objects that arrive as unstructured
// content are converted to the typed struct first.
func handler[T any, PT interface {
	*T
	runtime.Object
}](columns []metav1.TableColumnDefinition, f func(PT, time.Time) (metav1.TableRow, error)) printer {
	return printer{
		columns: columns,
		row: func(obj runtime.Object, now time.Time) (metav1.TableRow, error) {
			typed, ok := obj.(PT)
			if !ok {
				u, isUnstructured := obj.(runtime.Unstructured)
				if !isUnstructured {
					return metav1.TableRow{}, fmt.Errorf("tables: expected %T, got %T", PT(nil), obj)
				}
				typed = PT(new(T))
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), typed); err != nil {
					return metav1.TableRow{}, fmt.Errorf("tables: converting %T: %w", typed, err)
				}
			}
			return f(typed, now)
		},
	}
}

// Has says whether gvr has a dedicated table (not the default NAME AGE one).
func Has(gvr schema.GroupVersionResource) bool {
	_, ok := printers[gvr]
	return ok
}

// Columns returns the column definitions of gvr's table.
func Columns(gvr schema.GroupVersionResource) []metav1.TableColumnDefinition {
	if p, ok := printers[gvr]; ok {
		return append([]metav1.TableColumnDefinition(nil), p.columns...)
	}
	return append([]metav1.TableColumnDefinition(nil), defaultColumns...)
}

// Convert builds the metav1.Table (apiVersion meta.k8s.io/v1, kind Table) for
// objects of one served resource. Resources without a dedicated table get the
// default NAME AGE one (see Default). The caller fills in the list metadata
// (resourceVersion, continue, remainingItemCount).
func Convert(gvr schema.GroupVersionResource, objs []runtime.Object, opts Options) (*metav1.Table, error) {
	p, ok := printers[gvr]
	if !ok {
		return Default(objs, opts)
	}
	return convert(p, objs, opts)
}

var defaultColumns = []metav1.TableColumnDefinition{
	nameColumn(),
	{Name: "Age", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
}

var defaultPrinter = printer{
	columns: defaultColumns,
	row: func(obj runtime.Object, now time.Time) (metav1.TableRow, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return metav1.TableRow{}, fmt.Errorf("tables: %T has no object metadata: %w", obj, err)
		}
		return cells(m.GetName(), since(m.GetCreationTimestamp(), now))
	},
}

// Default builds the NAME AGE table that upstream serves for custom resources
// without additional printer columns. It accepts any object with ObjectMeta,
// typed or unstructured.
func Default(objs []runtime.Object, opts Options) (*metav1.Table, error) {
	return convert(defaultPrinter, objs, opts)
}

func convert(p printer, objs []runtime.Object, opts Options) (*metav1.Table, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	table := &metav1.Table{
		TypeMeta: metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "Table"},
		Rows:     make([]metav1.TableRow, 0, len(objs)),
	}
	if !opts.NoHeaders {
		table.ColumnDefinitions = append([]metav1.TableColumnDefinition(nil), p.columns...)
	}
	for _, obj := range objs {
		row, err := p.row(obj, now)
		if err != nil {
			return nil, err
		}
		switch opts.IncludeObject {
		case metav1.IncludeObject:
			row.Object = runtime.RawExtension{Object: obj}
		case metav1.IncludeNone:
		case metav1.IncludeMetadata, "":
			m, err := meta.Accessor(obj)
			if err != nil {
				return nil, fmt.Errorf("tables: %T has no object metadata: %w", obj, err)
			}
			partial := meta.AsPartialObjectMetadata(m)
			partial.TypeMeta = metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "PartialObjectMetadata"}
			row.Object = runtime.RawExtension{Object: partial}
		default:
			return nil, fmt.Errorf("tables: unknown includeObject policy %q", opts.IncludeObject)
		}
		table.Rows = append(table.Rows, row)
	}
	return table, nil
}

// cells makes a row of the given cells.
func cells(c ...interface{}) (metav1.TableRow, error) {
	return metav1.TableRow{Cells: c}, nil
}

// since is upstream's translateTimestampSince: the human-readable time
// elapsed since t, "<unknown>" for a zero time.
func since(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// sinceMicro is upstream's translateMicroTimestampSince.
func sinceMicro(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// Column definitions shared by many tables.

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

const (
	containersDoc = "Names of each container in the template."
	imagesDoc     = "Images referenced by each container in the template."
)

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
}

func ageColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMetaDoc["creationTimestamp"]}
}

func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wide is a column that kubectl shows only with -o wide.
func wide(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description, Priority: 1}
}

func printBool(v bool) string {
	if v {
		return "True"
	}
	return "False"
}

func printBoolPtr(v *bool) string {
	if v == nil {
		return "<unset>"
	}
	return printBool(*v)
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
