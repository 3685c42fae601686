package rest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The hand-written Table encoding decodes to the same Table as
// encoding/json's.
func TestWriteTableJSON(t *testing.T) {
	tbl := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ListMeta:          metav1.ListMeta{ResourceVersion: "42", Continue: "c"},
		ColumnDefinitions: []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name"}, {Name: "Age", Type: "string"}},
		Rows: []metav1.TableRow{
			{Cells: []any{"a", "5m"}, Object: runtime.RawExtension{Object: &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}, ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"x": "y"}}}}},
			{Cells: []any{"b", int64(3)}, Conditions: []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue}}, Object: runtime.RawExtension{Raw: []byte(`{"kind":"X"}`)}},
			{Cells: []any{"c", nil}},
		},
	}
	var fast bytes.Buffer
	if err := writeTableJSON(&fast, tbl); err != nil {
		t.Fatal(err)
	}
	slow, err := json.Marshal(tbl)
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(fast.Bytes(), &got); err != nil {
		t.Fatalf("fast encoding is not JSON: %v\n%s", err, fast.Bytes())
	}
	if err := json.Unmarshal(slow, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("table JSON differs from encoding/json's (-want +got):\n%s", diff)
	}
}
