// Package admission runs the plugins that may change (mutate) or refuse
// (validate) an object after authorization and before it is stored.
package admission

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
)

// Operation is the kind of write being admitted.
type Operation string

// Operations, as upstream.
const (
	Create  Operation = "CREATE"
	Update  Operation = "UPDATE"
	Delete  Operation = "DELETE"
	Connect Operation = "CONNECT"
)

// Attributes describe the write being admitted.
type Attributes struct {
	User        *authn.User
	Operation   Operation
	Group       string
	Version     string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	// OldObject is the stored object for Update and Delete, else nil.
	OldObject runtime.Object
	DryRun    bool
}

// Interface admits a write: it may change obj in place, or return an error
// (typically a Kubernetes Status error, e.g. Forbidden or Invalid) to refuse it.
type Interface interface {
	Admit(ctx context.Context, a Attributes, obj runtime.Object) error
}

// Chain runs plugins in order and stops at the first refusal.
type Chain []Interface

// Admit runs each plugin.
func (c Chain) Admit(ctx context.Context, a Attributes, obj runtime.Object) error {
	for _, p := range c {
		if err := p.Admit(ctx, a, obj); err != nil {
			return err
		}
	}
	return nil
}

// AllowAll admits everything unchanged.
type AllowAll struct{}

// Admit admits.
func (AllowAll) Admit(context.Context, Attributes, runtime.Object) error { return nil }
