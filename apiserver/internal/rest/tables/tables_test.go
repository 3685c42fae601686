package tables

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// now is the reference time of every test.
var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func agoPtr(d time.Duration) *metav1.Time { t := ago(d); return &t }

func ptr[T any](v T) *T { return &v }

func gvr(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}

func objMeta(name string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(age), UID: "uid-x"}
}

// columnNames renders the columns as kubectl's headers, marking the -o wide
// ones: "IP (wide)".
func columnNames(cols []metav1.TableColumnDefinition) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = strings.ToUpper(c.Name)
		if c.Priority > 0 {
			out[i] += " (wide)"
		}
	}
	return out
}

type rowCase struct {
	name  string
	obj   runtime.Object
	cells []interface{}
}

// checkTable converts each case's object alone and compares the columns
// and the cells.
func checkTable(t *testing.T, resource schema.GroupVersionResource, wantColumns []string, cases []rowCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Convert(resource, []runtime.Object{tc.obj}, Options{Now: now})
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if diff := cmp.Diff(wantColumns, columnNames(table.ColumnDefinitions)); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			if len(table.Rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(table.Rows))
			}
			got := table.Rows[0].Cells
			if diff := cmp.Diff(tc.cells, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
			if len(got) != len(table.ColumnDefinitions) {
				t.Errorf("got %d cells for %d columns", len(got), len(table.ColumnDefinitions))
			}
		})
	}
}

func TestEveryServedResourceHasATable(t *testing.T) {
	for _, r := range scheme.Resources() {
		if !Has(r.GVR) {
			t.Errorf("%s has no dedicated table", r.GVR)
		}
	}
}

func TestColumnDefinitions(t *testing.T) {
	for resource, p := range printers {
		for i, c := range p.columns {
			switch c.Type {
			case "string", "integer", "boolean", "date":
			default:
				t.Errorf("%s column %q: type %q", resource, c.Name, c.Type)
			}
			if c.Description == "" {
				t.Errorf("%s column %q has no description", resource, c.Name)
			}
			if c.Name == "Name" && c.Format != "name" {
				t.Errorf("%s column Name: format %q, want name", resource, c.Format)
			}
			if i == 0 && resource.Resource != "events" && c.Name != "Name" {
				t.Errorf("%s first column is %q, want Name", resource, c.Name)
			}
		}
	}
}

func TestTableEnvelope(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: objMeta("p", time.Hour)}
	pod.Labels = map[string]string{"app": "web"}
	podGVR := gvr("", "v1", "pods")

	t.Run("metadata by default", func(t *testing.T) {
		for _, policy := range []metav1.IncludeObjectPolicy{"", metav1.IncludeMetadata} {
			table, err := Convert(podGVR, []runtime.Object{pod}, Options{Now: now, IncludeObject: policy})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := table.TypeMeta, (metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}); got != want {
				t.Errorf("table TypeMeta = %+v, want %+v", got, want)
			}
			partial, ok := table.Rows[0].Object.Object.(*metav1.PartialObjectMetadata)
			if !ok {
				t.Fatalf("includeObject %q: row object is %T, want *PartialObjectMetadata", policy, table.Rows[0].Object.Object)
			}
			want := &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"},
				ObjectMeta: pod.ObjectMeta,
			}
			if diff := cmp.Diff(want, partial); diff != "" {
				t.Errorf("partial object (-want +got):\n%s", diff)
			}
		}
	})

	t.Run("object", func(t *testing.T) {
		table, err := Convert(podGVR, []runtime.Object{pod}, Options{Now: now, IncludeObject: metav1.IncludeObject})
		if err != nil {
			t.Fatal(err)
		}
		if got := table.Rows[0].Object.Object; got != pod {
			t.Errorf("row object = %v, want the pod itself", got)
		}
	})

	t.Run("none", func(t *testing.T) {
		table, err := Convert(podGVR, []runtime.Object{pod}, Options{Now: now, IncludeObject: metav1.IncludeNone})
		if err != nil {
			t.Fatal(err)
		}
		if got := table.Rows[0].Object; got.Object != nil || got.Raw != nil {
			t.Errorf("row object = %+v, want none", got)
		}
	})

	t.Run("bad policy", func(t *testing.T) {
		if _, err := Convert(podGVR, []runtime.Object{pod}, Options{Now: now, IncludeObject: "Everything"}); err == nil {
			t.Error("got no error for an unknown includeObject policy")
		}
	})

	t.Run("no headers", func(t *testing.T) {
		table, err := Convert(podGVR, []runtime.Object{pod}, Options{Now: now, NoHeaders: true})
		if err != nil {
			t.Fatal(err)
		}
		if table.ColumnDefinitions != nil {
			t.Errorf("got columns %v with NoHeaders", columnNames(table.ColumnDefinitions))
		}
		if len(table.Rows) != 1 || len(table.Rows[0].Cells) != 9 {
			t.Errorf("got rows %+v, want one row of 9 cells", table.Rows)
		}
	})

	t.Run("empty list encodes rows as []", func(t *testing.T) {
		table, err := Convert(podGVR, nil, Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(table)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"rows":[]`) || !strings.Contains(string(data), `"kind":"Table","apiVersion":"meta.k8s.io/v1"`) {
			t.Errorf("got %s", data)
		}
	})

	t.Run("rows keep order", func(t *testing.T) {
		a, b := pod.DeepCopy(), pod.DeepCopy()
		a.Name, b.Name = "a", "b"
		table, err := Convert(podGVR, []runtime.Object{b, a}, Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var got []interface{}
		for _, r := range table.Rows {
			got = append(got, r.Cells[0])
		}
		if diff := cmp.Diff([]interface{}{"b", "a"}, got); diff != "" {
			t.Errorf("names (-want +got):\n%s", diff)
		}
	})

	t.Run("wrong type", func(t *testing.T) {
		if _, err := Convert(podGVR, []runtime.Object{&corev1.Service{}}, Options{Now: now}); err == nil {
			t.Error("got no error converting a Service as a pod")
		}
	})

	t.Run("unstructured input", func(t *testing.T) {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&corev1.Service{
			ObjectMeta: objMeta("web", 10*time.Minute),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.0.10"},
				Ports: []corev1.ServicePort{{Port: 80, NodePort: 30001, Protocol: corev1.ProtocolTCP}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: content}
		table, err := Convert(gvr("", "v1", "services"), []runtime.Object{u}, Options{Now: now, IncludeObject: metav1.IncludeObject})
		if err != nil {
			t.Fatal(err)
		}
		want := []interface{}{"web", "NodePort", "10.96.0.10", "<none>", "80:30001/TCP", "10m", "<none>"}
		if diff := cmp.Diff(want, table.Rows[0].Cells); diff != "" {
			t.Errorf("cells (-want +got):\n%s", diff)
		}
		if table.Rows[0].Object.Object != u {
			t.Errorf("row object is not the unstructured input")
		}
	})

	t.Run("now defaults to the clock", func(t *testing.T) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(time.Now().Add(-3 * time.Hour))}}
		table, err := Convert(podGVR, []runtime.Object{p}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := table.Rows[0].Cells[4]; got != "3h" {
			t.Errorf("age = %v, want 3h", got)
		}
	})
}

func TestDefault(t *testing.T) {
	cr := &unstructured.Unstructured{}
	cr.SetAPIVersion("example.com/v1")
	cr.SetKind("Widget")
	cr.SetName("w1")
	cr.SetCreationTimestamp(ago(50 * time.Hour))
	noTimestamp := &unstructured.Unstructured{}
	noTimestamp.SetName("w2")

	for name, convert := range map[string]func() (*metav1.Table, error){
		"Default": func() (*metav1.Table, error) { return Default([]runtime.Object{cr, noTimestamp}, Options{Now: now}) },
		"unknown to Convert": func() (*metav1.Table, error) {
			return Convert(gvr("example.com", "v1", "widgets"), []runtime.Object{cr, noTimestamp}, Options{Now: now})
		},
	} {
		t.Run(name, func(t *testing.T) {
			table, err := convert()
			if err != nil {
				t.Fatal(err)
			}
			wantCols := []metav1.TableColumnDefinition{
				{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
				{Name: "Age", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
			}
			if diff := cmp.Diff(wantCols, table.ColumnDefinitions); diff != "" {
				t.Errorf("columns (-want +got):\n%s", diff)
			}
			var got [][]interface{}
			for _, r := range table.Rows {
				got = append(got, r.Cells)
			}
			want := [][]interface{}{{"w1", "2d2h"}, {"w2", "<unknown>"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
			if p, ok := table.Rows[0].Object.Object.(*metav1.PartialObjectMetadata); !ok || p.Name != "w1" {
				t.Errorf("row object = %#v, want the partial metadata of w1", table.Rows[0].Object.Object)
			}
		})
	}
}

func TestAges(t *testing.T) {
	for _, tc := range []struct {
		age  time.Duration
		want string
	}{
		{0, "0s"},
		{59 * time.Second, "59s"},
		{5 * time.Minute, "5m"},
		{5*time.Minute + 30*time.Second, "5m30s"},
		{90 * time.Minute, "90m"},
		{5 * time.Hour, "5h"},
		{5*time.Hour + 20*time.Minute, "5h20m"},
		{20 * time.Hour, "20h"},
		{51 * time.Hour, "2d3h"},
		{10 * 24 * time.Hour, "10d"},
		{400 * 24 * time.Hour, "400d"},
		{-10 * time.Second, "<invalid>"},
	} {
		if got := since(ago(tc.age), now); got != tc.want {
			t.Errorf("since(now-%v) = %q, want %q", tc.age, got, tc.want)
		}
	}
	if got := since(metav1.Time{}, now); got != "<unknown>" {
		t.Errorf("since(zero) = %q, want <unknown>", got)
	}
}

// BenchmarkPods10k converts 10,000 pods, the `kubectl get pods -A` target
// of the REST API issue (the whole Table response within 300 ms).
func BenchmarkPods10k(b *testing.B) {
	objs := make([]runtime.Object, 10000)
	for i := range objs {
		objs[i] = &corev1.Pod{
			ObjectMeta: objMeta("pod", time.Hour),
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: containers("app", "sidecar")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.0.1"}},
				ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running(time.Hour)},
					{Name: "sidecar", Ready: true, RestartCount: 1, State: running(time.Minute),
						LastTerminationState: terminated("Error", 1, 0, 2*time.Minute)},
				}},
		}
	}
	gvr := gvr("", "v1", "pods")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Convert(gvr, objs, Options{Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}
