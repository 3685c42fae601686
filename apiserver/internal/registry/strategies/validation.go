package strategies

import (
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

// Field validation helpers shared by the kinds, after upstream's
// pkg/apis/core/validation.

// invalid turns the messages of a validation.IsXxx check into Invalid errors.
func invalid(path *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

// check runs an IsXxx check on a string value.
func check(path *field.Path, value string, is func(string) []string) field.ErrorList {
	return invalid(path, value, is(value))
}

// required checks a non-empty value with an IsXxx check.
func required(path *field.Path, value string, is func(string) []string) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return check(path, value, is)
}

// oneOf checks that value is set and one of valid.
func oneOf[T ~string](path *field.Path, value T, valid ...T) field.ErrorList {
	switch {
	case value == "":
		return field.ErrorList{field.Required(path, "")}
	case !slices.Contains(valid, value):
		return field.ErrorList{field.NotSupported(path, value, valid)}
	}
	return nil
}

// optionalOneOf checks that value, when set, is one of valid.
func optionalOneOf[T ~string](path *field.Path, value T, valid ...T) field.ErrorList {
	if value == "" {
		return nil
	}
	return oneOf(path, value, valid...)
}

func nonNegative[T ~int32 | ~int64](path *field.Path, value T) field.ErrorList {
	if value < 0 {
		return field.ErrorList{field.Invalid(path, value, "must be greater than or equal to 0")}
	}
	return nil
}

func nonNegativePtr[T ~int32 | ~int64](path *field.Path, value *T) field.ErrorList {
	if value == nil {
		return nil
	}
	return nonNegative(path, *value)
}

func positive[T ~int32 | ~int64](path *field.Path, value T) field.ErrorList {
	if value <= 0 {
		return field.ErrorList{field.Invalid(path, value, "must be greater than 0")}
	}
	return nil
}

func portNum(path *field.Path, port int32) field.ErrorList {
	return invalid(path, port, validation.IsValidPortNum(int(port)))
}

func portNumOrName(path *field.Path, port intstr.IntOrString) field.ErrorList {
	if port.Type == intstr.String {
		return check(path, port.StrVal, fastvalidation.IsValidPortName)
	}
	return portNum(path, port.IntVal)
}

func nonNegativeQuantity(path *field.Path, q resource.Quantity) field.ErrorList {
	if q.Sign() < 0 {
		return field.ErrorList{field.Invalid(path, q.String(), "must be greater than or equal to 0")}
	}
	return nil
}

// immutable is apimachinery's ValidateImmutableField with Semantic equality.
func immutable(path *field.Path, value, old any) field.ErrorList {
	if !equality.Semantic.DeepEqual(value, old) {
		return field.ErrorList{field.Invalid(path, value, fieldImmutableErrorMsg)}
	}
	return nil
}

const fieldImmutableErrorMsg = "field is immutable"

// intOrPercent checks a maxSurge/maxUnavailable-like value: a non-negative
// integer or a percentage.
func intOrPercent(path *field.Path, v *intstr.IntOrString) field.ErrorList {
	switch {
	case v == nil:
		return nil
	case v.Type == intstr.String && len(fastvalidation.IsValidPercent(v.StrVal)) > 0:
		return field.ErrorList{field.Invalid(path, v, "must be an integer or percentage (e.g '5%')")}
	case v.Type == intstr.Int:
		return nonNegative(path, v.IntVal)
	}
	return nil
}

// notOver100Percent checks that a percentage is at most 100%.
func notOver100Percent(path *field.Path, v *intstr.IntOrString) field.ErrorList {
	if v != nil && v.Type == intstr.String && percentValue(v.StrVal) > 100 {
		return field.ErrorList{field.Invalid(path, v, "must not be greater than 100%")}
	}
	return nil
}

func percentValue(s string) int {
	p, _ := strconv.Atoi(strings.TrimSuffix(s, "%"))
	return p
}

// isZero reports whether an intOrPercent value is unset, 0 or 0%.
func isZero(v *intstr.IntOrString) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.String {
		return percentValue(v.StrVal) == 0
	}
	return v.IntVal == 0
}

// selectorForTemplate checks a workload's label selector: required,
// non-empty, valid and matching the template's labels.
func selectorForTemplate(kind string, selector *metav1.LabelSelector, templateLabels map[string]string, specPath *field.Path) field.ErrorList {
	path := specPath.Child("selector")
	if selector == nil {
		return field.ErrorList{field.Required(path, "")}
	}
	errs := fastvalidation.ValidateLabelSelector(selector, metav1validation.LabelSelectorValidationOptions{}, path)
	if len(selector.MatchLabels)+len(selector.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(path, selector, "empty selector is invalid for "+kind))
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return errs // reported by ValidateLabelSelector
	}
	if !sel.Empty() && !sel.Matches(labels.Set(templateLabels)) {
		errs = append(errs, field.Invalid(specPath.Child("template", "metadata", "labels"), templateLabels, "`selector` does not match template `labels`"))
	}
	return errs
}
