package events

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// step is one event given to the correlator, after advancing the clock.
type step struct {
	advance time.Duration
	object  string // involvedObject name; "pod" when empty
	reason  string // "Reason" when empty
	message string // "message" when empty

	drop     bool   // want the event dropped as spam
	existing bool   // want an update of an Event written before
	count    int32  // want this count
	combined bool   // want the combined message
	sameAs   string // want the Event object of the step labelled so
	label    string // labels this step's Event object
}

func repeat(n int, f func(i int) step) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func newEvent(now time.Time, s step) *corev1.Event {
	obj, reason, msg := s.object, s.reason, s.message
	if obj == "" {
		obj = "pod"
	}
	if reason == "" {
		reason = "Reason"
	}
	if msg == "" {
		msg = "message"
	}
	ts := metav1.NewTime(now)
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", obj, now.UnixNano()), Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "ns", Name: obj, UID: types.UID("uid-" + obj)},
		Reason:         reason, Message: msg, Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "test", Host: "h"},
		FirstTimestamp: ts, LastTimestamp: ts, Count: 1,
		ReportingController: "test", ReportingInstance: "test-h",
	}
}

func TestCorrelate(t *testing.T) {
	distinct := func(prefix string) func(i int) step {
		return func(i int) step { return step{message: fmt.Sprintf("%s %d", prefix, i), count: 1} }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "identical events count on one Event",
			steps: concat(
				[]step{{count: 1, label: "a"}},
				repeat(99, func(i int) step {
					return step{advance: time.Second, existing: true, count: int32(i + 2), sameAs: "a"}
				}),
			),
		},
		{
			name: "events differing in reason, object or type are not identical",
			steps: []step{
				{count: 1, label: "a"},
				{reason: "Other", count: 1, label: "b"},
				{object: "other", count: 1, label: "c"},
				{count: 2, existing: true, sameAs: "a"},
				{reason: "Other", count: 2, existing: true, sameAs: "b"},
			},
		},
		{
			name: "past MaxSimilar distinct messages, similar events are combined",
			steps: concat(
				repeat(MaxSimilar, distinct("m")),
				[]step{
					{message: "m 10", combined: true, count: 1, label: "combined"},
					{message: "m 11", combined: true, count: 2, existing: true, sameAs: "combined"},
					// A message seen before the threshold is still itself.
					{message: "m 3", count: 2, existing: true},
					// Other reasons are other similar groups.
					{reason: "Other", message: "m 12", count: 1},
				},
			),
		},
		{
			name: "the similar count starts over after SimilarWindow of quiet",
			steps: concat(
				repeat(MaxSimilar, distinct("m")),
				[]step{
					{advance: SimilarWindow + time.Second, message: "m 10", count: 1},
					{message: "m 11", count: 1},
				},
			),
		},
		{
			name: "similar events keep the window open",
			steps: concat(
				repeat(MaxSimilar, func(i int) step {
					return step{advance: SimilarWindow / 2, message: fmt.Sprintf("m %d", i), count: 1}
				}),
				[]step{{advance: SimilarWindow / 2, message: "m 10", combined: true, count: 1}},
			),
		},
		{
			name: "a source may create SpamBurst Events about an object, then one per SpamRefill",
			steps: concat(
				repeat(SpamBurst, func(i int) step { return step{reason: fmt.Sprintf("R%d", i), count: 1} }),
				[]step{
					{reason: "Late", drop: true},
					{reason: "Late", drop: true}, // the dropped one was not remembered
					{object: "other", count: 1},  // other objects have their own budget
					{reason: "R0", existing: true, count: 2},
					{advance: SpamRefill / 2, reason: "Late", drop: true},
					{advance: SpamRefill / 2, reason: "Late", count: 1},
					{reason: "Later", drop: true},
				},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			c := newCorrelator(func() time.Time { return now })
			names := map[string]string{}
			firsts := map[string]metav1.Time{}
			for i, s := range tt.steps {
				now = now.Add(s.advance)
				in := newEvent(now, s)
				orig := in.DeepCopy()
				got, ok := c.correlate(in)
				if diff := cmp.Diff(orig, in); diff != "" {
					t.Fatalf("step %d: correlate changed its input (-before +after):\n%s", i, diff)
				}
				if ok == s.drop {
					t.Fatalf("step %d: accepted %v, want %v", i, ok, !s.drop)
				}
				if !ok {
					continue
				}
				ev := got.event
				if got.existing != s.existing {
					t.Errorf("step %d: existing %v, want %v", i, got.existing, s.existing)
				}
				if ev.Count != s.count {
					t.Errorf("step %d: count %d, want %d", i, ev.Count, s.count)
				}
				wantMsg := in.Message
				if s.combined {
					wantMsg = CombinedPrefix + in.Message
				}
				if ev.Message != wantMsg {
					t.Errorf("step %d: message %q, want %q", i, ev.Message, wantMsg)
				}
				if !ev.LastTimestamp.Equal(&metav1.Time{Time: now}) {
					t.Errorf("step %d: lastTimestamp %v, want %v", i, ev.LastTimestamp, now)
				}
				if s.label != "" {
					names[s.label] = ev.Name
					firsts[s.label] = ev.FirstTimestamp
				}
				if s.sameAs != "" {
					if ev.Name != names[s.sameAs] {
						t.Errorf("step %d: event %s, want the Event of %q, %s", i, ev.Name, s.sameAs, names[s.sameAs])
					}
					if first := firsts[s.sameAs]; !ev.FirstTimestamp.Equal(&first) {
						t.Errorf("step %d: firstTimestamp %v, want %v", i, ev.FirstTimestamp, first)
					}
				}
				if !s.existing && ev.Name == "" {
					t.Errorf("step %d: new event has no name", i)
				}
			}
		})
	}
}

func TestCorrelatorCachesAreBounded(t *testing.T) {
	now := time.Now()
	c := newCorrelator(func() time.Time { return now })
	for i := range 2 * CacheSize {
		if _, ok := c.correlate(newEvent(now, step{object: fmt.Sprintf("pod-%d", i)})); !ok {
			t.Fatalf("event %d dropped", i)
		}
	}
	for name, n := range map[string]int{"similar": c.similar.len(), "observed": c.observed.len(), "spam": c.spam.len()} {
		if n != CacheSize {
			t.Errorf("%s cache holds %d entries, want %d", name, n, CacheSize)
		}
	}
	// The oldest entries were forgotten: pod-0's next event is new.
	got, ok := c.correlate(newEvent(now, step{object: "pod-0"}))
	if !ok || got.existing || got.event.Count != 1 {
		t.Errorf("pod-0 after eviction: accepted %v, existing %v, count %d; want a new event", ok, got.existing, got.event.Count)
	}
	got, ok = c.correlate(newEvent(now, step{object: fmt.Sprintf("pod-%d", 2*CacheSize-1)}))
	if !ok || !got.existing || got.event.Count != 2 {
		t.Errorf("newest pod: accepted %v, existing %v, count %d; want count 2 on the existing event", ok, got.existing, got.event.Count)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[int](2)
	c.add("a", 1)
	c.add("b", 2)
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.add("c", 3) // evicts b
	if _, ok := c.get("b"); ok {
		t.Error("b kept, want it evicted as least recently used")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if got, ok := c.get(k); !ok || got != want {
			t.Errorf("get(%q) = %d, %v; want %d, true", k, got, ok, want)
		}
	}
	c.add("a", 10)
	if got, _ := c.get("a"); got != 10 || c.len() != 2 {
		t.Errorf("after update: a=%d len=%d, want 10 and 2", got, c.len())
	}
}

func TestReference(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
		want corev1.ObjectReference
	}{
		{
			name: "pod without TypeMeta",
			obj:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7"}},
			want: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7"},
		},
		{
			name: "deployment without TypeMeta",
			obj:  &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"}},
			want: corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Name: "d", Namespace: "ns"},
		},
		{
			name: "node with TypeMeta",
			obj:  &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "n", UID: "nu"}},
			want: corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: "n", UID: "nu"},
		},
		{
			name: "object reference",
			obj:  &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", Namespace: "ns"},
			want: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", Namespace: "ns"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reference(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reference (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventfNeverBlocks(t *testing.T) {
	r := NewRecorder(nil, "test", "", nil) // never Run: nothing drains the buffer
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	for i := range 2 * BufferSize {
		r.Eventf(node, corev1.EventTypeNormal, "Reason", "", "event %d", i)
	}
	if got := len(r.w.ch); got != BufferSize {
		t.Fatalf("buffered %d events, want %d", got, BufferSize)
	}
	ev := <-r.w.ch
	if ev.Namespace != metav1.NamespaceDefault || ev.InvolvedObject.Namespace != "" || ev.InvolvedObject.Kind != "Node" {
		t.Errorf("event about a node: namespace %q, involvedObject %+v; want namespace default and a Node", ev.Namespace, ev.InvolvedObject)
	}
	if !ev.EventTime.IsZero() || ev.Action != "" {
		t.Errorf("event without action has eventTime %v, action %q; want neither", ev.EventTime, ev.Action)
	}
	if !strings.HasPrefix(ev.Name, "n1.") || ev.Source.Component != "test" || ev.ReportingController != "test" {
		t.Errorf("event name %q, source %+v, reportingController %q", ev.Name, ev.Source, ev.ReportingController)
	}
	var nilRecorder *Recorder
	nilRecorder.Eventf(node, corev1.EventTypeNormal, "Reason", "", "ignored") // must not panic
}
