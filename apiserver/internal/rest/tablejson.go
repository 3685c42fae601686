package rest

import (
	"bufio"
	"encoding/json"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// writeTableJSON writes a Table as JSON the way encoding/json would, but
// marshals each row's object once: through RawExtension, encoding/json
// marshals the object and then validates and compacts the result again,
// which was half the cost of a large `kubectl get`.
func writeTableJSON(w io.Writer, t *metav1.Table) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	write := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	}
	if _, err := bw.WriteString(`{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":`); err != nil {
		return err
	}
	if err := write(t.ListMeta); err != nil {
		return err
	}
	if _, err := bw.WriteString(`,"columnDefinitions":`); err != nil {
		return err
	}
	cols := t.ColumnDefinitions
	if cols == nil {
		cols = []metav1.TableColumnDefinition{}
	}
	if err := write(cols); err != nil {
		return err
	}
	if _, err := bw.WriteString(`,"rows":[`); err != nil {
		return err
	}
	for i, row := range t.Rows {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.WriteString(`{"cells":`)
		if err := write(row.Cells); err != nil {
			return err
		}
		if len(row.Conditions) > 0 {
			_, _ = bw.WriteString(`,"conditions":`)
			if err := write(row.Conditions); err != nil {
				return err
			}
		}
		switch {
		case row.Object.Object != nil:
			_, _ = bw.WriteString(`,"object":`)
			if err := write(row.Object.Object); err != nil {
				return err
			}
		case len(row.Object.Raw) > 0:
			_, _ = bw.WriteString(`,"object":`)
			_, _ = bw.Write(row.Object.Raw)
		default:
			_, _ = bw.WriteString(`,"object":null`)
		}
		_ = bw.WriteByte('}')
	}
	if _, err := bw.WriteString("]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}
