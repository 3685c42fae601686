// Package status carries Kubernetes Status errors across gRPC: the server
// turns an error into a gRPC status whose details hold the metav1.Status, and
// the client turns it back into an *apierrors.StatusError.
package status

import (
	"context"
	"errors"
	"net/http"

	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FromError returns the metav1.Status of any error: a StatusError's own, or an
// InternalError for anything else.
func FromError(err error) metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		st.Kind, st.APIVersion = "Status", "v1"
		return st
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		st := apierrors.NewTimeoutError(err.Error(), 0).Status()
		st.Kind, st.APIVersion = "Status", "v1"
		return st
	}
	st := apierrors.NewInternalError(err).Status()
	st.Kind, st.APIVersion = "Status", "v1"
	return st
}

// CodeForHTTP maps an HTTP status code to the nearest gRPC code.
func CodeForHTTP(code int32) codes.Code {
	switch code {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusNotAcceptable:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.Aborted
	case http.StatusGone:
		return codes.OutOfRange
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusMethodNotAllowed:
		return codes.Unimplemented
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return codes.DeadlineExceeded
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	if code >= 200 && code < 300 {
		return codes.OK
	}
	return codes.Internal
}

// ToGRPC converts err to a gRPC status error that carries its metav1.Status.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := grpcstatus.FromError(err); ok {
		var se apierrors.APIStatus
		if !errors.As(err, &se) {
			return err
		}
	}
	st := FromError(err)
	raw, merr := st.Marshal()
	gs := grpcstatus.New(CodeForHTTP(st.Code), st.Message)
	if merr == nil {
		if withDetails, derr := gs.WithDetails(&resourcev1.KubeStatus{Status: raw}); derr == nil {
			gs = withDetails
		}
	}
	return gs.Err()
}

// FromGRPC converts a gRPC error back into an *apierrors.StatusError; errors
// without a carried Status are mapped from their gRPC code.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	gs, ok := grpcstatus.FromError(err)
	if !ok {
		return err
	}
	for _, d := range gs.Details() {
		if ks, ok := d.(*resourcev1.KubeStatus); ok {
			var st metav1.Status
			if uerr := st.Unmarshal(ks.Status); uerr == nil {
				return &apierrors.StatusError{ErrStatus: st}
			}
		}
	}
	switch gs.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.Unauthenticated:
		return apierrors.NewUnauthorized(gs.Message())
	case codes.PermissionDenied:
		return apierrors.NewForbidden(schema.GroupResource{}, "", errors.New(gs.Message()))
	case codes.Unavailable:
		return apierrors.NewServiceUnavailable(gs.Message())
	case codes.ResourceExhausted:
		return apierrors.NewRequestEntityTooLargeError(gs.Message())
	}
	return err
}
