package strategies

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

// The unprefixed job labels upstream still sets beside the
// batch.kubernetes.io ones.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

type jobStrategy struct{ withStatus }

func (jobStrategy) Default(obj runtime.Object) {
	job := obj.(*batchv1.Job)
	spec := &job.Spec
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = new(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = new(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = new(int32(1<<31 - 1))
		} else {
			spec.BackoffLimit = new(int32(6))
		}
	}
	if len(job.Labels) == 0 && len(spec.Template.Labels) > 0 {
		job.Labels = spec.Template.Labels
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = new(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.PodFailurePolicy != nil {
		for _, rule := range spec.PodFailurePolicy.Rules {
			for i := range rule.OnPodConditions {
				if rule.OnPodConditions[i].Status == "" {
					rule.OnPodConditions[i].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = new(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = new(batchv1.TerminatingOrFailed)
		}
	}
	DefaultPodSpec(&spec.Template.Spec)
}

func (s jobStrategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	s.withStatus.PrepareForCreate(ctx, obj)
	generateJobSelector(obj.(*batchv1.Job))
}

// generateJobSelector selects the job's pods by its uid, unless the user
// manages the selector: upstream does it in Validate, as the uid is only
// known then, and so do we, in case PrepareForCreate ran before the uid was
// set.
func generateJobSelector(job *batchv1.Job) {
	if manualSelector(job) || job.UID == "" {
		return
	}
	t := &job.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for k, v := range map[string]string{
		legacyJobNameLabel: job.Name, batchv1.JobNameLabel: job.Name,
		legacyControllerUIDLabel: string(job.UID), batchv1.ControllerUidLabel: string(job.UID),
	} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = v
		}
	}
	if job.Spec.Selector == nil {
		job.Spec.Selector = &metav1.LabelSelector{}
	}
	if job.Spec.Selector.MatchLabels == nil {
		job.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		job.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(job.UID)
	}
}

func manualSelector(job *batchv1.Job) bool {
	return job.Spec.ManualSelector != nil && *job.Spec.ManualSelector
}

func (jobStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	job := obj.(*batchv1.Job)
	generateJobSelector(job)
	errs := validateGeneratedSelector(job)
	return append(errs, validateJobSpec(&job.Spec, field.NewPath("spec"))...)
}

// validateGeneratedSelector checks that the generated selector and labels
// select the job's own pods.
func validateGeneratedSelector(job *batchv1.Job) field.ErrorList {
	if manualSelector(job) {
		return nil
	}
	if job.UID == "" {
		return field.ErrorList{field.Required(field.NewPath("metadata", "uid"), "")}
	}
	var errs field.ErrorList
	want := labels.Set{
		legacyControllerUIDLabel: string(job.UID), batchv1.ControllerUidLabel: string(job.UID),
		legacyJobNameLabel: job.Name, batchv1.JobNameLabel: job.Name,
	}
	for _, k := range []string{legacyControllerUIDLabel, legacyJobNameLabel, batchv1.ControllerUidLabel, batchv1.JobNameLabel} {
		if got := job.Spec.Template.Labels[k]; got != want[k] {
			errs = append(errs, field.Invalid(field.NewPath("spec", "template", "metadata", "labels").Key(k), got, fmt.Sprintf("must be '%s'", want[k])))
		}
	}
	if sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !sel.Matches(want) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

func validateJobSpec(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	errs := nonNegativePtr(path.Child("parallelism"), spec.Parallelism)
	errs = append(errs, nonNegativePtr(path.Child("completions"), spec.Completions)...)
	errs = append(errs, nonNegativePtr(path.Child("activeDeadlineSeconds"), spec.ActiveDeadlineSeconds)...)
	errs = append(errs, nonNegativePtr(path.Child("backoffLimit"), spec.BackoffLimit)...)
	errs = append(errs, nonNegativePtr(path.Child("ttlSecondsAfterFinished"), spec.TTLSecondsAfterFinished)...)
	if spec.Selector == nil {
		errs = append(errs, field.Required(path.Child("selector"), ""))
	} else {
		errs = append(errs, fastvalidation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, path.Child("selector"))...)
		if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
			errs = append(errs, field.Invalid(path.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
		}
	}
	return append(errs, validateJobTemplateSpec(spec, path)...)
}

// validateJobTemplateSpec checks what jobs and cronjobs' job templates share.
func validateJobTemplateSpec(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.CompletionMode != nil {
		errs = append(errs, oneOf(path.Child("completionMode"), *spec.CompletionMode, batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
		if *spec.CompletionMode == batchv1.IndexedCompletion && spec.Completions == nil {
			errs = append(errs, field.Required(path.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
		}
	}
	if spec.PodReplacementPolicy != nil {
		errs = append(errs, oneOf(path.Child("podReplacementPolicy"), *spec.PodReplacementPolicy, batchv1.TerminatingOrFailed, batchv1.Failed)...)
	}
	errs = append(errs, validateTemplate(&spec.Template, path.Child("template"))...)
	if rp := spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		errs = append(errs, field.NotSupported(path.Child("template", "spec", "restartPolicy"), rp,
			[]corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	return errs
}

func (s jobStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	spec, oldSpec := &obj.(*batchv1.Job).Spec, &old.(*batchv1.Job).Spec
	path := field.NewPath("spec")
	errs := validateJobSpec(spec, path)
	errs = append(errs, immutable(path.Child("selector"), spec.Selector, oldSpec.Selector)...)
	errs = append(errs, immutable(path.Child("template"), spec.Template, oldSpec.Template)...)
	errs = append(errs, immutable(path.Child("completionMode"), spec.CompletionMode, oldSpec.CompletionMode)...)
	errs = append(errs, immutable(path.Child("podFailurePolicy"), spec.PodFailurePolicy, oldSpec.PodFailurePolicy)...)
	if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
		errs = append(errs, immutable(path.Child("completions"), spec.Completions, oldSpec.Completions)...)
	}
	return errs
}

func (jobStrategy) Fields(obj runtime.Object) fields.Set {
	return fields.Set{"status.successful": strconv.Itoa(int(obj.(*batchv1.Job).Status.Succeeded))}
}

type cronJobStrategy struct{ withStatus }

func (cronJobStrategy) Default(obj runtime.Object) {
	spec := &obj.(*batchv1.CronJob).Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = new(int32(3))
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = new(int32(1))
	}
	DefaultPodSpec(&spec.JobTemplate.Spec.Template.Spec)
}

// maxCronJobNameLength leaves room for the 11-character suffix of the jobs'
// names.
const maxCronJobNameLength = 52

func (cronJobStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	cj := obj.(*batchv1.CronJob)
	var errs field.ErrorList
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, "must be no more than 52 characters"))
	}
	return append(errs, validateCronJobSpec(&cj.Spec, field.NewPath("spec"))...)
}

func (s cronJobStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return validateCronJobSpec(&obj.(*batchv1.CronJob).Spec, field.NewPath("spec"))
}

func validateCronJobSpec(spec *batchv1.CronJobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := path.Child("schedule")
	switch {
	case spec.Schedule == "":
		errs = append(errs, field.Required(sp, ""))
	case strings.Contains(spec.Schedule, "TZ"):
		errs = append(errs, field.Invalid(sp, spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	default:
		if err := parseCronSchedule(spec.Schedule); err != nil {
			errs = append(errs, field.Invalid(sp, spec.Schedule, err.Error()))
		}
	}
	errs = append(errs, oneOf(path.Child("concurrencyPolicy"), spec.ConcurrencyPolicy,
		batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)...)
	errs = append(errs, nonNegativePtr(path.Child("startingDeadlineSeconds"), spec.StartingDeadlineSeconds)...)
	errs = append(errs, nonNegativePtr(path.Child("successfulJobsHistoryLimit"), spec.SuccessfulJobsHistoryLimit)...)
	errs = append(errs, nonNegativePtr(path.Child("failedJobsHistoryLimit"), spec.FailedJobsHistoryLimit)...)
	jp := path.Child("jobTemplate")
	jobSpec := &spec.JobTemplate.Spec
	errs = append(errs, fastvalidation.ValidateLabels(spec.JobTemplate.Labels, jp.Child("metadata", "labels"))...)
	if jobSpec.Selector != nil && (jobSpec.ManualSelector == nil || !*jobSpec.ManualSelector) {
		errs = append(errs, field.Invalid(jp.Child("spec", "selector"), jobSpec.Selector, "`selector` will be auto-generated"))
	}
	errs = append(errs, nonNegativePtr(jp.Child("spec", "parallelism"), jobSpec.Parallelism)...)
	errs = append(errs, nonNegativePtr(jp.Child("spec", "completions"), jobSpec.Completions)...)
	errs = append(errs, nonNegativePtr(jp.Child("spec", "backoffLimit"), jobSpec.BackoffLimit)...)
	return append(errs, validateJobTemplateSpec(jobSpec, jp.Child("spec"))...)
}

// cronFields are the ranges of a cron schedule's five fields, with the
// names months and days of the week may use.
var cronFields = []struct {
	name     string
	min, max int
	names    []string
}{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// parseCronSchedule checks a standard five-field cron schedule or one of the
// @-descriptors, as the cronjob controller's parser accepts them.
func parseCronSchedule(s string) error {
	if strings.HasPrefix(s, "@") {
		switch s {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return nil
		}
		if d, ok := strings.CutPrefix(s, "@every "); ok {
			if _, err := time.ParseDuration(d); err != nil {
				return fmt.Errorf("failed to parse duration %s: %w", s, err)
			}
			return nil
		}
		return fmt.Errorf("unrecognized descriptor: %s", s)
	}
	parts := strings.Fields(s)
	if len(parts) != len(cronFields) {
		return fmt.Errorf("expected exactly 5 fields, found %d: %s", len(parts), s)
	}
	for i, part := range parts {
		f := cronFields[i]
		for _, item := range strings.Split(part, ",") {
			if err := parseCronItem(item, f.min, f.max, f.names); err != nil {
				return fmt.Errorf("invalid %s %q: %w", f.name, part, err)
			}
		}
	}
	return nil
}

func parseCronItem(item string, lo, hi int, names []string) error {
	rng, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		if n, err := strconv.Atoi(step); err != nil || n <= 0 {
			return fmt.Errorf("invalid step %q", step)
		}
	}
	if rng == "*" || rng == "?" {
		return nil
	}
	value := func(s string) (int, error) {
		for i, n := range names {
			if strings.EqualFold(s, n) {
				return i + lo, nil
			}
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < lo || v > hi {
			return 0, fmt.Errorf("value %q out of range [%d, %d]", s, lo, hi)
		}
		return v, nil
	}
	from, to, isRange := strings.Cut(rng, "-")
	start, err := value(from)
	if err != nil || !isRange {
		return err
	}
	end, err := value(to)
	if err != nil {
		return err
	}
	if start > end {
		return fmt.Errorf("beginning of range (%d) beyond end of range (%d)", start, end)
	}
	return nil
}
