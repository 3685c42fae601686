package status

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A Status survives the trip through gRPC whole: code, reason, message and
// causes.
func TestRoundTrip(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"not found", apierrors.NewNotFound(gr, "p"), codes.NotFound},
		{"conflict", apierrors.NewConflict(gr, "p", errors.New("modified")), codes.Aborted},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{field.Required(field.NewPath("spec", "containers"), "")}), codes.InvalidArgument},
		{"gone", apierrors.NewResourceExpired("too old resource version: 1 (5)"), codes.OutOfRange},
		{"too large", apierrors.NewRequestEntityTooLargeError("limit is 3145728"), codes.InvalidArgument},
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), codes.Unauthenticated},
		{"wrapped", fmt.Errorf("bind: %w", apierrors.NewAlreadyExists(gr, "p")), codes.Aborted},
		{"plain", errors.New("boom"), codes.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := ToGRPC(tc.err)
			if got := grpcstatus.Code(g); got != tc.code {
				t.Fatalf("gRPC code = %v, want %v", got, tc.code)
			}
			back := FromGRPC(g)
			want, got := FromError(tc.err), FromError(back)
			if got.Code != want.Code || got.Reason != want.Reason || got.Message != want.Message {
				t.Fatalf("round trip = %d %s %q, want %d %s %q", got.Code, got.Reason, got.Message, want.Code, want.Reason, want.Message)
			}
			if (want.Details == nil) != (got.Details == nil) || (want.Details != nil && len(want.Details.Causes) != len(got.Details.Causes)) {
				t.Fatalf("details = %+v, want %+v", got.Details, want.Details)
			}
		})
	}
	if ToGRPC(nil) != nil || FromGRPC(nil) != nil {
		t.Fatal("nil errors must stay nil")
	}
	if got := FromError(context.DeadlineExceeded).Code; got != 504 {
		t.Fatalf("deadline exceeded maps to %d, want 504", got)
	}
}

// Errors from peers that carry no Status map from their gRPC code.
func TestFromGRPCWithoutStatus(t *testing.T) {
	if err := FromGRPC(grpcstatus.Error(codes.Unavailable, "down")); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("Unavailable -> %v, want 503", err)
	}
	if err := FromGRPC(grpcstatus.Error(codes.Canceled, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Canceled -> %v, want context.Canceled", err)
	}
}
