package deployment

import (
	"context"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
)

// Condition reasons, upstream's (kubectl rollout status reads them).
const (
	ReasonNewRSCreated          = "NewReplicaSetCreated"
	ReasonFoundNewRS            = "FoundNewReplicaSet"
	ReasonNewRSAvailable        = "NewReplicaSetAvailable"
	ReasonRSUpdated             = "ReplicaSetUpdated"
	ReasonTimedOut              = "ProgressDeadlineExceeded"
	ReasonMinimumReplicas       = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavai = "MinimumReplicasUnavailable"
)

func newCondition(t appsv1.DeploymentConditionType, st corev1.ConditionStatus, reason, msg string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: st, LastUpdateTime: ts, LastTransitionTime: ts, Reason: reason, Message: msg}
}

func getCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// setCondition sets c, keeping the transition time when the status does
// not change and leaving a condition with the same status and reason alone.
func setCondition(s *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(s, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(s, c.Type)
	s.Conditions = append(s.Conditions, c)
}

func removeCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	out := s.Conditions[:0]
	for _, c := range s.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	s.Conditions = out
}

// calculateStatus sums the ReplicaSets' counts into the Deployment's
// status and sets the Available condition.
func (dc *Controller) calculateStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) appsv1.DeploymentStatus {
	var s appsv1.DeploymentStatus
	for _, rs := range all {
		if rs == nil {
			continue
		}
		s.Replicas += rs.Status.Replicas
		s.ReadyReplicas += rs.Status.ReadyReplicas
		s.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		s.UpdatedReplicas = newRS.Status.Replicas
	}
	s.UnavailableReplicas = max(specReplicas(all)-s.AvailableReplicas, 0)
	s.ObservedGeneration = d.Generation
	s.CollisionCount = d.Status.CollisionCount
	s.Conditions = append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...)
	if s.AvailableReplicas >= deploymentReplicas(d)-MaxUnavailable(d) {
		setCondition(&s, newCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicas, "Deployment has minimum availability.", dc.now()))
	} else {
		setCondition(&s, newCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumReplicasUnavai, "Deployment does not have minimum availability.", dc.now()))
	}
	return s
}

// complete says whether the rollout is done: every pod updated and
// available, no old ones left, the spec observed.
func complete(d *appsv1.Deployment, s appsv1.DeploymentStatus) bool {
	replicas := deploymentReplicas(d)
	return s.UpdatedReplicas == replicas && s.Replicas == replicas && s.AvailableReplicas == replicas && s.ObservedGeneration >= d.Generation
}

// progressing says whether the new status moved the rollout forward.
func progressing(d *appsv1.Deployment, s appsv1.DeploymentStatus) bool {
	old := d.Status
	return s.UpdatedReplicas > old.UpdatedReplicas ||
		s.Replicas-s.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		s.ReadyReplicas > old.ReadyReplicas ||
		s.AvailableReplicas > old.AvailableReplicas
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != int32(^uint32(0)>>1)
}

// timedOut says whether the rollout has made no progress for
// progressDeadlineSeconds.
func timedOut(d *appsv1.Deployment, s appsv1.DeploymentStatus, now time.Time) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	c := getCondition(&s, appsv1.DeploymentProgressing)
	if c == nil || c.Reason == ReasonNewRSAvailable {
		return false
	}
	if c.Reason == ReasonTimedOut {
		return true
	}
	return c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Before(now)
}

// syncRolloutStatus writes the status with the Progressing condition, and
// asks to look again when the progress deadline would pass.
func (dc *Controller) syncRolloutStatus(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	s := dc.calculateStatus(all, newRS, d)
	now := dc.now()
	if !hasProgressDeadline(d) {
		removeCondition(&s, appsv1.DeploymentProgressing)
	}
	cur := getCondition(&s, appsv1.DeploymentProgressing)
	done := s.Replicas == s.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewRSAvailable
	if hasProgressDeadline(d) && !done && newRS != nil {
		switch {
		case complete(d, s):
			setCondition(&s, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name), now))
		case progressing(d, s):
			c := newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonRSUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name), now)
			if cur != nil && cur.Status == corev1.ConditionTrue {
				c.LastTransitionTime = cur.LastTransitionTime
			}
			removeCondition(&s, appsv1.DeploymentProgressing)
			s.Conditions = append(s.Conditions, c)
		case timedOut(d, s, now):
			setCondition(&s, newCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonTimedOut, fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name), now))
		}
	}
	if !apiequality.Semantic.DeepEqual(d.Status, s) {
		cp := d.DeepCopy()
		cp.Status = s
		if _, err := dc.deploys.UpdateStatus(ctx, cp.Namespace, cp); err != nil {
			return fmt.Errorf("update status of deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
	}
	// No event announces a deadline passing: look again then.
	if c := getCondition(&s, appsv1.DeploymentProgressing); hasProgressDeadline(d) && c != nil && !complete(d, s) &&
		c.Reason != ReasonNewRSAvailable && c.Reason != ReasonTimedOut {
		after := c.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(now)
		return controller.RequeueAfter(max(after, time.Second), "progress deadline")
	}
	return nil
}

// syncStatusOnly writes the status of a paused or deleted Deployment.
func (dc *Controller) syncStatusOnly(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	s := dc.calculateStatus(all, newRS, d)
	if apiequality.Semantic.DeepEqual(d.Status, s) {
		return nil
	}
	cp := d.DeepCopy()
	cp.Status = s
	if _, err := dc.deploys.UpdateStatus(ctx, cp.Namespace, cp); err != nil {
		return fmt.Errorf("update status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

func sortByRevision(rss []*appsv1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		ri, rj := Revision(rss[i]), Revision(rss[j])
		if ri == rj {
			a, b := rss[i].CreationTimestamp, rss[j].CreationTimestamp
			return a.Before(&b)
		}
		return ri < rj
	})
}
