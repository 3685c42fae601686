package events_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/events"
	"github.com/coxswain/coxswain/pkg/harness"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond) // poll interval, not synchronisation
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
}

// eventsAbout lists the Events in ns about the object named name.
func eventsAbout(ctx context.Context, c *client.Client, ns, name string) ([]*corev1.Event, error) {
	evs, _, err := client.For[*corev1.Event](c).List(ctx, ns, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	return evs, err
}

// startRecorder runs a recorder against a real apiserver until the test
// ends.
func startRecorder(t *testing.T) (*events.Recorder, *client.Client) {
	t.Helper()
	h := harness.Start(t)
	r := events.NewRecorder(h.Client, "test-component", "host-1", zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r, h.Client
}

func TestRecorderAgainstAPIServer(t *testing.T) {
	r, c := startRecorder(t)
	ctx := context.Background()

	t.Run("identical events become one Event with their count", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "repeated", Namespace: "default", UID: "uid-repeated"}}
		for range 100 {
			r.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Pulling", "Back-off pulling image %q", "nginx")
		}
		var got []*corev1.Event
		waitFor(t, "an Event with count 100", func() (bool, error) {
			evs, err := eventsAbout(ctx, c, "default", "repeated")
			got = evs
			return err == nil && len(evs) > 0 && evs[0].Count == 100, err
		})
		if len(got) != 1 {
			t.Fatalf("%d Events about the pod, want 1", len(got))
		}
		ev := got[0]
		if ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.APIVersion != "v1" || ev.InvolvedObject.UID != "uid-repeated" {
			t.Errorf("involvedObject %+v, want the pod", ev.InvolvedObject)
		}
		if ev.Message != `Back-off pulling image "nginx"` || ev.Reason != "BackOff" || ev.Type != corev1.EventTypeWarning || ev.Action != "Pulling" {
			t.Errorf("event %s %s %q action %q", ev.Type, ev.Reason, ev.Message, ev.Action)
		}
		if ev.Source.Component != "test-component" || ev.Source.Host != "host-1" {
			t.Errorf("source %+v", ev.Source)
		}
		if ev.LastTimestamp.Before(&ev.FirstTimestamp) {
			t.Errorf("lastTimestamp %v before firstTimestamp %v", ev.LastTimestamp, ev.FirstTimestamp)
		}
	})

	t.Run("a deleted Event is created again with the count", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "deleted", Namespace: "default", UID: "uid-deleted"}}
		r.Eventf(pod, corev1.EventTypeNormal, "Pulled", "", "pulled")
		var name string
		waitFor(t, "the first Event", func() (bool, error) {
			evs, err := eventsAbout(ctx, c, "default", "deleted")
			if err != nil || len(evs) != 1 {
				return false, err
			}
			name = evs[0].Name
			return true, nil
		})
		if _, err := client.For[*corev1.Event](c).Delete(ctx, "default", name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r.Eventf(pod, corev1.EventTypeNormal, "Pulled", "", "pulled")
		waitFor(t, "the Event again with count 2", func() (bool, error) {
			evs, err := eventsAbout(ctx, c, "default", "deleted")
			return err == nil && len(evs) == 1 && evs[0].Name == name && evs[0].Count == 2, err
		})
	})

	t.Run("a flood about one object is capped", func(t *testing.T) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "flooded", UID: "uid-flooded"}}
		const flood = 100
		for i := range flood {
			r.Eventf(node, corev1.EventTypeWarning, fmt.Sprintf("Reason%d", i), "", "event %d", i)
		}
		// The writer handles events in order: once an event queued after
		// the flood is written, the whole flood has been.
		marker := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "marker", UID: "uid-marker"}}
		r.Eventf(marker, corev1.EventTypeNormal, "Marker", "", "after the flood")
		waitFor(t, "the marker Event", func() (bool, error) {
			evs, err := eventsAbout(ctx, c, "default", "marker")
			return err == nil && len(evs) == 1, err
		})
		evs, err := eventsAbout(ctx, c, "default", "flooded")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != events.SpamBurst {
			t.Fatalf("%d Events about the node after a flood of %d, want %d", len(evs), flood, events.SpamBurst)
		}
		for _, ev := range evs {
			if ev.Namespace != metav1.NamespaceDefault || ev.InvolvedObject.Kind != "Node" || ev.InvolvedObject.Namespace != "" {
				t.Errorf("event %s/%s about %+v; want namespace default, about the Node", ev.Namespace, ev.Name, ev.InvolvedObject)
			}
			if !strings.HasPrefix(ev.Name, "flooded.") {
				t.Errorf("event name %q, want flooded.<time>", ev.Name)
			}
		}
	})
}
