package validation

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/types"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// stringValidators pairs each fast string checker with its apimachinery
// original.
var stringValidators = []struct {
	name       string
	fast, orig func(string) []string
}{
	{"IsDNS1123Label", IsDNS1123Label, utilvalidation.IsDNS1123Label},
	{"IsDNS1123Subdomain", IsDNS1123Subdomain, utilvalidation.IsDNS1123Subdomain},
	{"IsQualifiedName", IsQualifiedName, utilvalidation.IsQualifiedName},
	{"IsValidLabelValue", IsValidLabelValue, utilvalidation.IsValidLabelValue},
	{"IsEnvVarName", IsEnvVarName, utilvalidation.IsEnvVarName},
	{"IsValidPortName", IsValidPortName, utilvalidation.IsValidPortName},
	{"IsConfigMapKey", IsConfigMapKey, utilvalidation.IsConfigMapKey},
	{"IsHTTPHeaderName", IsHTTPHeaderName, utilvalidation.IsHTTPHeaderName},
	{"IsValidPercent", IsValidPercent, utilvalidation.IsValidPercent},
	{"NameIsDNSSubdomain", func(s string) []string { return NameIsDNSSubdomain(s, false) }, func(s string) []string { return apivalidation.NameIsDNSSubdomain(s, false) }},
	{"NameIsDNSSubdomain/prefix", func(s string) []string { return NameIsDNSSubdomain(s, true) }, func(s string) []string { return apivalidation.NameIsDNSSubdomain(s, true) }},
	{"NameIsDNSLabel", func(s string) []string { return NameIsDNSLabel(s, false) }, func(s string) []string { return apivalidation.NameIsDNSLabel(s, false) }},
	{"NameIsDNSLabel/prefix", func(s string) []string { return NameIsDNSLabel(s, true) }, func(s string) []string { return apivalidation.NameIsDNSLabel(s, true) }},
	{"ValidateNamespaceName", func(s string) []string { return ValidateNamespaceName(s, false) }, func(s string) []string { return apivalidation.ValidateNamespaceName(s, false) }},
}

var fp = field.NewPath("metadata")

// errorListValidators pairs the field.ErrorList validators, fed one string.
var errorListValidators = []struct {
	name       string
	fast, orig func(string) field.ErrorList
}{
	{"ValidateLabelName",
		func(s string) field.ErrorList { return ValidateLabelName(s, fp) },
		func(s string) field.ErrorList { return metav1validation.ValidateLabelName(s, fp) }},
	{"ValidateLabels/key",
		func(s string) field.ErrorList { return ValidateLabels(map[string]string{s: "v"}, fp) },
		func(s string) field.ErrorList { return metav1validation.ValidateLabels(map[string]string{s: "v"}, fp) }},
	{"ValidateLabels/value",
		func(s string) field.ErrorList { return ValidateLabels(map[string]string{"k": s}, fp) },
		func(s string) field.ErrorList { return metav1validation.ValidateLabels(map[string]string{"k": s}, fp) }},
	{"ValidateAnnotations",
		func(s string) field.ErrorList { return ValidateAnnotations(map[string]string{s: s}, fp) },
		func(s string) field.ErrorList { return apivalidation.ValidateAnnotations(map[string]string{s: s}, fp) }},
	{"ValidateFinalizerName",
		func(s string) field.ErrorList { return ValidateFinalizerName(s, fp) },
		func(s string) field.ErrorList { return apivalidation.ValidateFinalizerName(s, fp) }},
	{"ValidateFinalizers",
		func(s string) field.ErrorList { return ValidateFinalizers([]string{s, "a/b"}, fp) },
		func(s string) field.ErrorList { return apivalidation.ValidateFinalizers([]string{s, "a/b"}, fp) }},
	{"ValidateLabelSelector",
		func(s string) field.ErrorList {
			return ValidateLabelSelector(selectorFor(s), metav1validation.LabelSelectorValidationOptions{}, fp)
		},
		func(s string) field.ErrorList {
			return metav1validation.ValidateLabelSelector(selectorFor(s), metav1validation.LabelSelectorValidationOptions{}, fp)
		}},
	{"ValidateLabelSelector/relaxed",
		func(s string) field.ErrorList { return ValidateLabelSelector(selectorFor(s), relaxed, fp) },
		func(s string) field.ErrorList {
			return metav1validation.ValidateLabelSelector(selectorFor(s), relaxed, fp)
		}},
	{"ValidateObjectMetaAccessor",
		func(s string) field.ErrorList {
			return ValidateObjectMetaAccessor(metaFor(s), true, NameIsDNSSubdomain, fp)
		},
		func(s string) field.ErrorList {
			return apivalidation.ValidateObjectMetaAccessor(metaFor(s), true, apivalidation.NameIsDNSSubdomain, fp)
		}},
	{"ValidateObjectMetaAccessor/cluster",
		func(s string) field.ErrorList {
			return ValidateObjectMetaAccessor(metaFor(s), false, NameIsDNSLabel, fp)
		},
		func(s string) field.ErrorList {
			return apivalidation.ValidateObjectMetaAccessor(metaFor(s), false, apivalidation.NameIsDNSLabel, fp)
		}},
	{"ValidateObjectMetaAccessorUpdate",
		func(s string) field.ErrorList {
			return ValidateObjectMetaAccessorUpdate(metaFor(s), metaFor("old"), fp)
		},
		func(s string) field.ErrorList {
			return apivalidation.ValidateObjectMetaAccessorUpdate(metaFor(s), metaFor("old"), fp)
		}},
}

var relaxed = metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: true, AllowUnknownOperatorInRequirement: true}

func selectorFor(s string) *metav1.LabelSelector {
	return &metav1.LabelSelector{
		MatchLabels: map[string]string{s: "x"},
		MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: s, Operator: metav1.LabelSelectorOpIn, Values: []string{s}},
			{Key: "k", Operator: metav1.LabelSelectorOperator(s)},
		},
	}
}

// metaFor puts s everywhere ObjectMeta validation looks at a string.
func metaFor(s string) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{
		Name:         s,
		GenerateName: s,
		Namespace:    s,
		Labels:       map[string]string{s: s},
		Annotations:  map[string]string{s: s},
		Finalizers:   []string{s},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: s, Kind: s, Name: s, UID: types.UID(s), Controller: ptrTo(true),
		}},
		ManagedFields: []metav1.ManagedFieldsEntry{{
			Manager: s, Operation: metav1.ManagedFieldsOperationType(s), FieldsType: s, Subresource: s,
		}},
		ResourceVersion: s,
		UID:             types.UID(s),
	}
}

// testInputs is the differential table: edge cases of every rule.
func testInputs() []string {
	r := strings.Repeat
	in := []string{
		"", "a", "A", "0", "-", ".", "_", "/", "%", "a-", "-a", "a.", ".a", "a_", "_a",
		"a..b", "a.-b", "a-.b", "a._b", "a_b", "a.b", "a-b", "a--b", "ab", "AB", "Ab-c", "a.B",
		"my-name", "123-abc", "example.com", "Example.com", "EXAMPLE.COM", "example.com.", "a.b.c.d",
		"MyName", "my.name", "my_name", "-my_name", "my_name_", "MyValue", "my_value", "12345",
		"a/b", "/b", "a/", "/", "//", "a//b", "a/b/c", "example.com/MyName", "Example.com/x",
		"EXAMPLE.COM/x", "example.com/", "/x", "ex_ample.com/x", "ex..ample/x", "-ex.com/x", "ex.com-/x",
		"app.kubernetes.io/name", "kubernetes.io/hostname", "Kubernetes.IO/Foo-Bar_baz.qux",
		"my.env-name", "MY_ENV.NAME", "MyEnvName1", "1abc", "_abc", ".abc", "..abc", "..", "...", ".a.",
		"-abc", "a=b", "a b", "a\tb", "a\n", "\na", "a\x00", "\x00", "\xff", "a\xffb", "é", "aé", "é.com/x",
		"\u212A", "a\u212Ab", "\u212A.com/x", "x.\u212A/y", "\u0130", "İ.com/x", "ǅ", "ǅ.com/x",
		"http", "h-t-t-p", "h--p", "123", "1-2", "a1", "-http", "http-", "http--", "--", "a-1-b",
		"5%", "%", "a%", "100%", "5%%", "05%",
		"X-Header", "x_header", "x.header",
		"foregroundDeletion", "orphan", metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents,
		"v1", "apps/v1", "apps/", "/v1", "a/b/c", "Event", "Apply", "Update", "FieldsV1",
	}
	for _, n := range []int{14, 15, 16, 62, 63, 64, 252, 253, 254, 255, 256, 300} {
		in = append(in,
			r("a", n), r("A", n), r("1", n), "a"+r("-", n-2)+"a", r("a", n-1)+"-", r("a", n-1)+".",
			r("a", n-1)+"%", "x/"+r("a", n), r("a", n)+"/x", r("a", n)+"/"+r("b", 63), r("a", n)+"/"+r("b", 64),
		)
	}
	// Subdomains around 253 bytes built from labels (long labels are fine
	// in a subdomain).
	for _, n := range []int{251, 252, 253, 254} {
		s := r("abcdefghi.", n/10)
		s += r("z", n-len(s))
		in = append(in, s, s+"/x", strings.ToUpper(s)+"/x", s+"-", "a"+s[1:])
	}
	// Every string of up to 4 bytes over a small alphabet.
	const alphabet = "aZ0-._/"
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		in = append(in, prefix)
		if depth == 0 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			gen(prefix+alphabet[i:i+1], depth-1)
		}
	}
	gen("", 4)
	return in
}

// sortErrors orders errors from map iteration deterministically.
func sortErrors(l field.ErrorList) field.ErrorList {
	if len(l) < 2 {
		return l
	}
	keys := make([]string, len(l))
	for i, e := range l {
		keys[i] = e.Error()
	}
	sort.Sort(byKey{keys, l})
	return l
}

type byKey struct {
	keys []string
	errs field.ErrorList
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.errs[i], b.errs[j] = b.errs[j], b.errs[i]
}

// same is go-cmp equality, with reflect.DeepEqual as a cheap first try
// (DeepEqual implies cmp.Equal for these types) to keep the fuzzer fast.
func same(want, got any) bool {
	return reflect.DeepEqual(want, got) || cmp.Equal(want, got)
}

func checkAll(t *testing.T, s string) {
	t.Helper()
	for _, v := range stringValidators {
		if want, got := v.orig(s), v.fast(s); !same(want, got) {
			t.Errorf("%s(%q) differs from apimachinery (-want +got):\n%s", v.name, s, cmp.Diff(want, got))
		}
	}
	for _, v := range errorListValidators {
		if want, got := sortErrors(v.orig(s)), sortErrors(v.fast(s)); !same(want, got) {
			t.Errorf("%s(%q) differs from apimachinery (-want +got):\n%s", v.name, s, cmp.Diff(want, got))
		}
	}
}

func TestDifferential(t *testing.T) {
	inputs := testInputs()
	valid := map[string]int{}
	for _, s := range inputs {
		checkAll(t, s)
		for _, v := range stringValidators {
			if len(v.orig(s)) == 0 {
				valid[v.name]++
			}
		}
	}
	// The table must exercise both outcomes of every rule.
	for _, v := range stringValidators {
		if n := valid[v.name]; n == 0 || n == len(inputs) {
			t.Errorf("%s: %d of %d inputs valid; the table does not cover both outcomes", v.name, n, len(inputs))
		}
	}
}

func TestAnnotationsSize(t *testing.T) {
	for _, extra := range []int{-1, 0, 1} {
		big := strings.Repeat("x", apivalidation.TotalAnnotationSizeLimitB-len("a")-len("b")+extra)
		m := map[string]string{"a": big, "b": ""}
		if diff := cmp.Diff(apivalidation.ValidateAnnotations(m, fp), ValidateAnnotations(m, fp)); diff != "" {
			t.Errorf("size %+d: (-want +got):\n%s", extra, diff)
		}
	}
}

func TestObjectMeta(t *testing.T) {
	now := metav1.NewTime(time.Unix(1700000000, 5))
	later := metav1.NewTime(now.Add(time.Second))
	valid := func() *metav1.ObjectMeta {
		return &metav1.ObjectMeta{
			Name: "web-7d9f8-abcde", GenerateName: "web-7d9f8-", Namespace: "default",
			UID: "uid-1", ResourceVersion: "42", Generation: 3, CreationTimestamp: now,
			Labels:      map[string]string{"app.kubernetes.io/name": "web", "pod-template-hash": "7d9f8"},
			Annotations: map[string]string{"Example.com/Note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9f8", UID: "rs-uid", Controller: ptrTo(true)},
				{APIVersion: "v1", Kind: "ConfigMap", Name: "cm", UID: "cm-uid", Controller: ptrTo(false)},
			},
			Finalizers: []string{"example.com/cleanup"},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1"},
				{Manager: "kubectl-\u00e9", Operation: metav1.ManagedFieldsOperationApply, Subresource: "status"},
			},
		}
	}
	mutations := map[string]func(m *metav1.ObjectMeta){
		"valid":                  func(*metav1.ObjectMeta) {},
		"no name":                func(m *metav1.ObjectMeta) { m.Name = "" },
		"no name or generate":    func(m *metav1.ObjectMeta) { m.Name, m.GenerateName = "", "" },
		"bad generateName":       func(m *metav1.ObjectMeta) { m.GenerateName = "Web-" },
		"generateName one dash":  func(m *metav1.ObjectMeta) { m.GenerateName = "-" },
		"no namespace":           func(m *metav1.ObjectMeta) { m.Namespace = "" },
		"bad namespace":          func(m *metav1.ObjectMeta) { m.Namespace = "a.b" },
		"negative generation":    func(m *metav1.ObjectMeta) { m.Generation = -1 },
		"bad labels":             func(m *metav1.ObjectMeta) { m.Labels["-x"] = "y_"; m.Labels["ok"] = "-" },
		"bad annotation":         func(m *metav1.ObjectMeta) { m.Annotations["a/b/c"] = "" },
		"banned owner":           func(m *metav1.ObjectMeta) { m.OwnerReferences[1].Kind = "Event" },
		"two controllers":        func(m *metav1.ObjectMeta) { m.OwnerReferences[1].Controller = ptrTo(true) },
		"owner missing fields":   func(m *metav1.ObjectMeta) { m.OwnerReferences[0] = metav1.OwnerReference{} },
		"owner bad apiVersion":   func(m *metav1.ObjectMeta) { m.OwnerReferences[0].APIVersion = "a/b/c" },
		"owner group only":       func(m *metav1.ObjectMeta) { m.OwnerReferences[0].APIVersion = "apps/" },
		"owner slash":            func(m *metav1.ObjectMeta) { m.OwnerReferences[0].APIVersion = "/" },
		"conflicting finalizers": func(m *metav1.ObjectMeta) { m.Finalizers = []string{"orphan", "foregroundDeletion"} },
		"bad finalizer":          func(m *metav1.ObjectMeta) { m.Finalizers = append(m.Finalizers, "a b") },
		"managed no operation":   func(m *metav1.ObjectMeta) { m.ManagedFields[0].Operation = "" },
		"managed bad type":       func(m *metav1.ObjectMeta) { m.ManagedFields[0].FieldsType = "FieldsV2" },
		"managed long manager":   func(m *metav1.ObjectMeta) { m.ManagedFields[0].Manager = strings.Repeat("m", 129) },
		"managed max manager":    func(m *metav1.ObjectMeta) { m.ManagedFields[0].Manager = strings.Repeat("m", 128) },
		"managed unprintable":    func(m *metav1.ObjectMeta) { m.ManagedFields[1].Manager = "a\u200bb\x01" },
		"managed bad utf8":       func(m *metav1.ObjectMeta) { m.ManagedFields[1].Manager = "a\xffb" },
		"managed subresource":    func(m *metav1.ObjectMeta) { m.ManagedFields[0].Subresource = strings.Repeat("s", 257) },
		"no resourceVersion":     func(m *metav1.ObjectMeta) { m.ResourceVersion = "" },
		"renamed":                func(m *metav1.ObjectMeta) { m.Name = "other" },
		"moved":                  func(m *metav1.ObjectMeta) { m.Namespace = "other" },
		"new uid":                func(m *metav1.ObjectMeta) { m.UID = "uid-2" },
		"new creation":           func(m *metav1.ObjectMeta) { m.CreationTimestamp = later },
		"same creation, zone":    func(m *metav1.ObjectMeta) { m.CreationTimestamp = metav1.NewTime(now.In(time.FixedZone("x", 3600))) },
		"deleted":                func(m *metav1.ObjectMeta) { m.DeletionTimestamp = &later },
		"grace":                  func(m *metav1.ObjectMeta) { m.DeletionGracePeriodSeconds = ptrTo[int64](30) },
		"decremented generation": func(m *metav1.ObjectMeta) { m.Generation = 2 },
	}
	olds := map[string]func(m *metav1.ObjectMeta){
		"live": func(*metav1.ObjectMeta) {},
		"deleting": func(m *metav1.ObjectMeta) {
			m.DeletionTimestamp, m.DeletionGracePeriodSeconds = &now, ptrTo[int64](30)
			m.Finalizers = []string{"a/x"}
		},
		"deleting, same finalizers": func(m *metav1.ObjectMeta) { m.DeletionTimestamp = &later },
	}
	for name, mutate := range mutations {
		m := valid()
		mutate(m)
		for _, ns := range []bool{true, false} {
			for _, fns := range [][2]ValidateNameFunc{{NameIsDNSSubdomain, apivalidation.NameIsDNSSubdomain}, {NameIsDNSLabel, apivalidation.NameIsDNSLabel}} {
				want := sortErrors(apivalidation.ValidateObjectMetaAccessor(m, ns, fns[1], fp))
				got := sortErrors(ValidateObjectMetaAccessor(m, ns, fns[0], fp))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (namespaced %v): ValidateObjectMetaAccessor (-want +got):\n%s", name, ns, diff)
				}
			}
		}
		for oldName, mutateOld := range olds {
			old := valid()
			mutateOld(old)
			want := sortErrors(apivalidation.ValidateObjectMetaAccessorUpdate(m, old, fp))
			got := sortErrors(ValidateObjectMetaAccessorUpdate(m, old, fp))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (old %s): ValidateObjectMetaAccessorUpdate (-want +got):\n%s", name, oldName, diff)
			}
		}
	}
	if errs := ValidateObjectMetaAccessor(valid(), true, NameIsDNSSubdomain, fp); errs != nil {
		t.Errorf("valid metadata: %v", errs)
	}
}

func TestNoAllocsWhenValid(t *testing.T) {
	m := &metav1.ObjectMeta{
		Name: "web-7d9f8-abcde", GenerateName: "web-7d9f8-", Namespace: "default", ResourceVersion: "1",
		Labels:          map[string]string{"app.kubernetes.io/name": "web", "pod-template-hash": "7d9f8"},
		Annotations:     map[string]string{"example.com/note": "x"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u", Controller: ptrTo(true)}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kcm", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1"}},
	}
	allocs := testing.AllocsPerRun(100, func() {
		_ = IsQualifiedName("app.kubernetes.io/name")
		_ = IsValidLabelValue("my-app_1.0")
		_ = NameIsDNSSubdomain("web-7d9f8-", true)
		_ = NameIsDNSLabel("web-", true)
		_ = IsEnvVarName("MY_ENV")
		_ = IsValidPortName("http-metrics")
		_ = ValidateObjectMetaAccessor(m, true, NameIsDNSSubdomain, fp)
		_ = ValidateObjectMetaAccessorUpdate(m, m, fp)
	})
	if allocs != 0 {
		t.Errorf("valid inputs allocate %v times per run, want 0", allocs)
	}
}

func ptrTo[T any](v T) *T { return &v }
