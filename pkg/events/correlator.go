package events

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The correlation settings, upstream's (client-go tools/record).
const (
	// CacheSize bounds each of the correlator's caches.
	CacheSize = 4096
	// MaxSimilar is how many similar events (differing only in message)
	// are recorded as themselves within SimilarWindow; further ones are
	// combined into one event.
	MaxSimilar = 10
	// SimilarWindow is how long after the last similar event the count
	// of similar events starts over.
	SimilarWindow = 10 * time.Minute
	// SpamBurst is how many new events a source may record about one
	// object at once.
	SpamBurst = 25
	// SpamRefill is how long a source waits for one more new event about
	// an object once its burst is spent.
	SpamRefill = 5 * time.Minute
	// CombinedPrefix starts the message of a combined event.
	CombinedPrefix = "(combined from similar events): "
)

// correlator decides what becomes of each event, as upstream's
// EventCorrelator: an identical event (same source, object, type, reason
// and message) counts on the Event already written; after MaxSimilar
// similar ones further similar events are combined into one Event; and a
// token bucket per source and object bounds how many new Events are
// written. It is owned by the recorder's writer goroutine and is not safe
// for concurrent use.
type correlator struct {
	now func() time.Time

	// similar holds the messages seen per similar-event key.
	similar *lru[*similarRecord]
	// observed holds the Event written per identical-event (or combined
	// event) key.
	observed *lru[observation]
	// spam holds the token bucket per source and object.
	spam *lru[*tokenBucket]
}

type similarRecord struct {
	messages map[string]struct{}
	last     time.Time
}

// observation is what the correlator knows of a written Event.
type observation struct {
	name  string
	count int32
	first metav1.Time
}

// correlation is the correlator's verdict on an event.
type correlation struct {
	// key identifies the Event object: events with the same key are
	// written to the same object.
	key string
	// event is the Event to write, with its name, count and timestamps.
	event *corev1.Event
	// existing says an Event object was written for key before: its
	// count, lastTimestamp and message are to be updated.
	existing bool
}

func newCorrelator(now func() time.Time) *correlator {
	if now == nil {
		now = time.Now
	}
	return &correlator{
		now:      now,
		similar:  newLRU[*similarRecord](CacheSize),
		observed: newLRU[observation](CacheSize),
		spam:     newLRU[*tokenBucket](CacheSize),
	}
}

func joinKey(kind byte, parts ...string) string {
	return string(kind) + "\x00" + strings.Join(parts, "\x00")
}

// identicalKey groups events that differ at most in their timestamps.
func identicalKey(ev *corev1.Event) string {
	o := ev.InvolvedObject
	return joinKey('e', ev.Source.Component, ev.Source.Host, o.Kind, o.Namespace, o.Name, o.FieldPath, string(o.UID), o.APIVersion,
		ev.Type, ev.Reason, ev.Message)
}

// similarKey groups events that differ at most in their message.
func similarKey(ev *corev1.Event) string {
	o := ev.InvolvedObject
	return joinKey('a', ev.Source.Component, ev.Source.Host, o.Kind, o.Namespace, o.Name, string(o.UID), o.APIVersion,
		ev.Type, ev.Reason, ev.ReportingController, ev.ReportingInstance)
}

// spamKey is the source and the object.
func spamKey(ev *corev1.Event) string {
	o := ev.InvolvedObject
	return joinKey('s', ev.Source.Component, ev.Source.Host, o.Kind, o.Namespace, o.Name, string(o.UID), o.APIVersion)
}

// correlate returns what to write for ev, or false when ev is dropped as
// spam. It does not change ev.
func (c *correlator) correlate(ev *corev1.Event) (correlation, bool) {
	now := c.now()
	out, key := c.aggregate(ev, now)

	prev, existing := c.observed.get(key)
	if !existing && !c.allow(out, now) {
		// Not remembered, so that the next identical event is judged as
		// a new one again rather than counted on an Event never written.
		return correlation{}, false
	}
	if existing {
		out.Name = prev.name
		out.FirstTimestamp = prev.first
		out.Count = prev.count + 1
	}
	c.observed.add(key, observation{name: out.Name, count: out.Count, first: out.FirstTimestamp})
	return correlation{key: key, event: out, existing: existing}, true
}

// aggregate counts ev among its similar events and returns the event to
// record and its key: a copy of ev under its identical-event key, or, past
// MaxSimilar distinct messages, a combined event under the similar-event
// key.
func (c *correlator) aggregate(ev *corev1.Event, now time.Time) (*corev1.Event, string) {
	skey := similarKey(ev)
	rec, ok := c.similar.get(skey)
	if !ok || now.Sub(rec.last) > SimilarWindow {
		rec = &similarRecord{messages: map[string]struct{}{}}
	}
	rec.last = now
	c.similar.add(skey, rec)

	if _, seen := rec.messages[ev.Message]; seen || len(rec.messages) < MaxSimilar {
		rec.messages[ev.Message] = struct{}{}
		return ev.DeepCopy(), identicalKey(ev)
	}
	ts := metav1.NewTime(now)
	combined := ev.DeepCopy()
	combined.Name = fmt.Sprintf("%s.%x", ev.InvolvedObject.Name, now.UnixNano())
	combined.Message = CombinedPrefix + ev.Message
	combined.Count = 1
	combined.FirstTimestamp, combined.LastTimestamp = ts, ts
	if !combined.EventTime.IsZero() {
		combined.EventTime = metav1.NewMicroTime(now)
	}
	return combined, skey
}

// allow takes a token from the bucket of ev's source and object.
func (c *correlator) allow(ev *corev1.Event, now time.Time) bool {
	key := spamKey(ev)
	b, ok := c.spam.get(key)
	if !ok {
		b = &tokenBucket{tokens: SpamBurst, last: now}
		c.spam.add(key, b)
	}
	return b.take(now)
}

// tokenBucket holds up to SpamBurst tokens and gains one per SpamRefill.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(SpamBurst, b.tokens+float64(elapsed)/float64(SpamRefill))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
