package strategies

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func newJob() *batchv1.Job {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", UID: "uid-1"},
		Spec:       batchv1.JobSpec{Template: template(nil)},
	}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	jobStrategy{}.Default(job)
	jobStrategy{}.PrepareForCreate(ctx, job)
	return job
}

func TestJobDefaultsAndSelector(t *testing.T) {
	job := newJob()
	s := job.Spec
	if *s.Parallelism != 1 || *s.Completions != 1 || *s.BackoffLimit != 6 || *s.CompletionMode != batchv1.NonIndexedCompletion ||
		*s.Suspend || *s.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("job spec not defaulted: %+v", s)
	}
	if got := s.Selector.MatchLabels[batchv1.ControllerUidLabel]; got != "uid-1" {
		t.Errorf("selector controller-uid = %q, want uid-1", got)
	}
	for _, k := range []string{"job-name", batchv1.JobNameLabel} {
		if got := s.Template.Labels[k]; got != "pi" {
			t.Errorf("template label %s = %q, want pi", k, got)
		}
	}
	checkErrs(t, jobStrategy{}.Validate(ctx, job), nil)
}

func TestValidateJob(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*batchv1.Job)
		want   []string
	}{
		{"restartPolicy Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]string{"spec.template.spec.restartPolicy: Unsupported value"}},
		{"negative parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = new(int32(-1)) }, []string{"spec.parallelism: Invalid value"}},
		{"foreign selector", func(j *batchv1.Job) { j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = "other" },
			[]string{"spec.selector: Invalid value", "spec.template.metadata.labels: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := newJob()
			tt.mutate(job)
			checkErrs(t, jobStrategy{}.Validate(ctx, job), tt.want)
		})
	}
}

func TestJobUpdateImmutable(t *testing.T) {
	old := newJob()
	job := old.DeepCopy()
	job.Spec.Template.Spec.Containers[0].Image = "perl"
	checkErrs(t, jobStrategy{}.ValidateUpdate(ctx, job, old), []string{"spec.template: Invalid value"})
	job = old.DeepCopy()
	job.Spec.Parallelism = new(int32(3))
	checkErrs(t, jobStrategy{}.ValidateUpdate(ctx, job, old), nil)
}

func TestCronJob(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: batchv1.CronJobSpec{
		Schedule:    "*/5 * * * mon-fri",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(nil)}},
	}}
	cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	cronJobStrategy{}.Default(cj)
	if s := cj.Spec; s.ConcurrencyPolicy != batchv1.AllowConcurrent || *s.Suspend || *s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 {
		t.Errorf("cronjob spec not defaulted: %+v", s)
	}
	checkErrs(t, cronJobStrategy{}.Validate(ctx, cj), nil)

	tests := []struct {
		schedule string
		valid    bool
	}{
		{"0 0 * * *", true},
		{"@hourly", true},
		{"@every 1h30m", true},
		{"0 0 1,15 jan-jun ?", true},
		{"", false},
		{"* * * *", false},
		{"60 * * * *", false},
		{"* * * * 8", false},
		{"5-1 * * * *", false},
		{"*/0 * * * *", false},
		{"@sometimes", false},
		{"TZ=UTC 0 0 * * *", false},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			c := cj.DeepCopy()
			c.Spec.Schedule = tt.schedule
			errs := cronJobStrategy{}.Validate(ctx, c)
			if got := len(errs) == 0; got != tt.valid {
				t.Errorf("valid = %v, want %v (errors: %v)", got, tt.valid, errs)
			}
		})
	}
}
