package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ErrCompacted is returned for a read or watch at a compacted revision.
var ErrCompacted = rpctypes.ErrCompacted

// IsCompacted reports whether err comes from a compacted revision.
func IsCompacted(err error) bool {
	return errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, rpctypes.ErrGRPCCompacted)
}

// translate turns etcd client errors into API errors where the client
// deserves to know (unavailable, timeout); others pass through.
func translate(err error) error {
	switch {
	case IsCompacted(err):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, rpctypes.ErrGRPCNoLeader), errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrGRPCTimeout):
		return apierrors.NewServiceUnavailable(fmt.Sprintf("etcd: %v", err))
	}
	return err
}
