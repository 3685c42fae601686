// Package authz decides whether an authenticated user may do what a
// request asks.
package authz

import (
	"context"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
)

// Decision is an authorizer's verdict.
type Decision int

// Decisions, as upstream: NoOpinion lets the next authorizer in a chain decide.
const (
	DecisionDeny Decision = iota
	DecisionAllow
	DecisionNoOpinion
)

// Attributes describe a request. Resource requests set Resource (and the
// API group, version, namespace and name); others set Path.
type Attributes struct {
	User        *authn.User
	Verb        string // get, list, watch, create, update, patch, delete, deletecollection; or the HTTP verb for non-resource requests
	Group       string
	Version     string
	Resource    string
	Subresource string
	Namespace   string
	Name        string
	Path        string
}

// IsResourceRequest reports whether the request is for an API resource.
func (a Attributes) IsResourceRequest() bool { return a.Resource != "" }

// Authorizer decides a request.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (Decision, string, error)
}

// AlwaysAllow allows every request.
type AlwaysAllow struct{}

// Authorize allows.
func (AlwaysAllow) Authorize(context.Context, Attributes) (Decision, string, error) {
	return DecisionAllow, "", nil
}
