package deployment

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Reasons of the Progressing condition of a paused and a resumed
// Deployment, upstream's: no progress is expected while paused, and the
// progress deadline counts again from the resumption.
const (
	ReasonPaused  = "DeploymentPaused"
	ReasonResumed = "DeploymentResumed"
)

// checkPausedConditions sets the Progressing condition to Unknown,
// DeploymentPaused, when d is paused, and DeploymentResumed when it no
// longer is, unless the rollout has already timed out. d takes the
// written status.
func (dc *Controller) checkPausedConditions(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cur := getCondition(&d.Status, appsv1.DeploymentProgressing)
	if cur != nil && cur.Reason == ReasonTimedOut {
		return nil
	}
	paused := cur != nil && cur.Reason == ReasonPaused
	var c appsv1.DeploymentCondition
	switch {
	case d.Spec.Paused && !paused:
		c = newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonPaused, "Deployment is paused", dc.now())
	case !d.Spec.Paused && paused:
		c = newCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonResumed, "Deployment is resumed", dc.now())
	default:
		return nil
	}
	setCondition(&d.Status, c)
	updated, err := dc.deploys.UpdateStatus(ctx, d.Namespace, d)
	if err != nil {
		return fmt.Errorf("update paused condition of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	d.ObjectMeta, d.Status = updated.ObjectMeta, updated.Status
	return nil
}

// isScalingEvent says whether spec.replicas changed since the active
// ReplicaSets were last sized (their desired-replicas annotation).
func (dc *Controller) isScalingEvent(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (bool, error) {
	newRS, oldRSs, err := dc.replicaSetsAndRevision(ctx, d, rsList, false)
	if err != nil {
		return false, err
	}
	for _, rs := range activeReplicaSets(append(oldRSs, newRS)) {
		desired, ok := annotatedReplicas(rs, DesiredReplicasAnnotation)
		if ok && desired != deploymentReplicas(d) {
			return true, nil
		}
	}
	return false, nil
}

// syncScale resizes the ReplicaSets of a paused Deployment, or of one
// whose replicas changed, without rolling out, cleans up the history of a
// paused one and writes the status.
func (dc *Controller) syncScale(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, logger *zap.Logger) error {
	newRS, oldRSs, err := dc.replicaSetsAndRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := dc.scale(ctx, d, newRS, oldRSs, logger); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := dc.cleanup(ctx, oldRSs, d, logger); err != nil {
			return err
		}
	}
	return dc.syncStatusOnly(ctx, d, newRS, oldRSs)
}

// scale gives the replicas of d to its ReplicaSets: all of them to the
// only active one (or the newest, when none is), none to the old ones once
// the new one is saturated, and otherwise, rolling, the difference to
// replicas+maxSurge spread in proportion to their sizes. newRS (when not
// nil) and oldRSs take the written ReplicaSets.
func (dc *Controller) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet, logger *zap.Logger) error {
	replicas := deploymentReplicas(d)
	written := func(rs, updated *appsv1.ReplicaSet) {
		if newRS != nil && rs.UID == newRS.UID {
			*newRS = *updated
		}
		for i, old := range oldRSs {
			if old.UID == rs.UID {
				oldRSs[i] = updated
			}
		}
	}
	resize := func(rs *appsv1.ReplicaSet, n int32) error {
		_, updated, err := dc.scaleReplicaSet(ctx, rs, n, d, logger)
		if err != nil {
			return err
		}
		written(rs, updated)
		return nil
	}

	if rs := activeOrLatest(newRS, oldRSs); rs != nil {
		if replicasOf(rs) == replicas {
			return nil
		}
		return resize(rs, replicas)
	}
	if saturated(d, newRS) {
		for _, old := range activeReplicaSets(oldRSs) {
			if err := resize(old, 0); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRolling(d) {
		return nil
	}

	all := activeReplicaSets(append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS))
	for i, n := range proportionalSizes(d, all) {
		if err := resize(all[i], n); err != nil {
			return err
		}
	}
	return nil
}

// proportionalSizes sorts the active ReplicaSets of a rolling Deployment
// and returns their new sizes: together replicas+maxSurge, each grown or
// shrunk in proportion to its size.
func proportionalSizes(d *appsv1.Deployment, all []*appsv1.ReplicaSet) []int32 {
	replicas := deploymentReplicas(d)
	allowed := int32(0)
	if replicas > 0 {
		allowed = replicas + MaxSurge(d)
	}
	toAdd := allowed - specReplicas(all)
	// Larger first; among equals, newer first when growing, older first
	// when shrinking. The first takes the rounding leftover.
	sort.SliceStable(all, func(i, j int) bool {
		if a, b := replicasOf(all[i]), replicasOf(all[j]); a != b {
			return a > b
		}
		ti, tj := all[i].CreationTimestamp, all[j].CreationTimestamp
		if toAdd > 0 {
			return tj.Before(&ti)
		}
		return ti.Before(&tj)
	})
	sizes := make([]int32, len(all))
	var added int32
	for i, rs := range all {
		p := proportion(rs, d, toAdd, added)
		sizes[i] = replicasOf(rs) + p
		added += p
	}
	if len(all) > 0 {
		sizes[0] = max(sizes[0]+toAdd-added, 0)
	}
	return sizes
}

// activeOrLatest returns the only ReplicaSet with replicas, the newest of
// all when none has any, and nil when several have.
func activeOrLatest(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(oldRSs) == 0 {
		return nil
	}
	all := append([]*appsv1.ReplicaSet(nil), oldRSs...)
	if newRS != nil {
		all = append(all, newRS)
	}
	active := activeReplicaSets(all)
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		newest := append([]*appsv1.ReplicaSet(nil), oldRSs...)
		sortByCreation(newest)
		return newest[len(newest)-1]
	case 1:
		return active[0]
	}
	return nil
}

// saturated says whether the new ReplicaSet has all of d's replicas,
// sized for them, and available.
func saturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := annotatedReplicas(rs, DesiredReplicasAnnotation)
	replicas := deploymentReplicas(d)
	return ok && desired == replicas && replicasOf(rs) == replicas && rs.Status.AvailableReplicas == replicas
}

// proportion is rs's share of toAdd replicas (negative: to remove), of
// which added are already given out: its size scaled from the
// Deployment's max replicas it was sized for to the current ones, never
// beyond what is left.
func proportion(rs *appsv1.ReplicaSet, d *appsv1.Deployment, toAdd, added int32) int32 {
	if replicasOf(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	left := toAdd - added
	fraction := fractionOf(rs, d)
	if toAdd > 0 {
		return min(fraction, left)
	}
	return max(fraction, left)
}

// fractionOf is how much rs should grow (or shrink) with the Deployment.
func fractionOf(rs *appsv1.ReplicaSet, d *appsv1.Deployment) int32 {
	replicas := deploymentReplicas(d)
	if replicas == 0 {
		return -replicasOf(rs)
	}
	maxNow := replicas + MaxSurge(d)
	maxBefore, ok := annotatedReplicas(rs, MaxReplicasAnnotation)
	if !ok || maxBefore == 0 {
		// Unannotated (edited by hand, or scaled from zero): assume the
		// Deployment's current size.
		if maxBefore = d.Status.Replicas; maxBefore == 0 {
			return 0
		}
	}
	size := float64(replicasOf(rs)) * float64(maxNow) / float64(maxBefore)
	return int32(math.Round(size)) - replicasOf(rs)
}

// annotatedReplicas reads a replica count annotation of rs.
func annotatedReplicas(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}
