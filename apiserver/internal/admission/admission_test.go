package admission

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

type labeler struct{}

func (labeler) Admit(_ context.Context, _ Attributes, obj runtime.Object) error {
	u := obj.(*unstructured.Unstructured)
	u.SetLabels(map[string]string{"admitted": "yes"})
	return nil
}

type refuser struct{ err error }

func (r refuser) Admit(context.Context, Attributes, runtime.Object) error { return r.err }

func TestChain(t *testing.T) {
	errNo := errors.New("no")
	tests := []struct {
		name      string
		chain     Chain
		wantErr   error
		wantLabel string
	}{
		{name: "empty", chain: nil},
		{name: "allow all", chain: Chain{AllowAll{}}},
		{name: "mutates", chain: Chain{AllowAll{}, labeler{}}, wantLabel: "yes"},
		{name: "stops at first refusal", chain: Chain{refuser{errNo}, labeler{}}, wantErr: errNo},
		{name: "refusal after mutation", chain: Chain{labeler{}, refuser{errNo}}, wantErr: errNo, wantLabel: "yes"},
	}
	for _, tc := range tests {
		obj := &unstructured.Unstructured{Object: map[string]any{}}
		var i Interface = tc.chain
		err := i.Admit(context.Background(), Attributes{Operation: Create, Resource: "pods"}, obj)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: Admit error = %v, want %v", tc.name, err, tc.wantErr)
		}
		if got := obj.GetLabels()["admitted"]; got != tc.wantLabel {
			t.Errorf("%s: label = %q, want %q", tc.name, got, tc.wantLabel)
		}
	}
}
