package rest

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/fuzzer"
	metafuzzer "k8s.io/apimachinery/pkg/apis/meta/fuzzer"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"

	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// TestDecodeJSONTypedMatchesSerializer checks the one-pass JSON decode
// against apimachinery's strict serializer: whenever it takes a body, the
// serializer decodes the same object from it with no error or warning;
// clean bodies of every served kind take it.
func TestDecodeJSONTypedMatchesSerializer(t *testing.T) {
	f := fuzzer.FuzzerFor(metafuzzer.Funcs, rand.NewSource(2), scheme.Codecs).NilChance(0.3).NumElements(0, 3).Funcs(
		func(s *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*s = intstr.FromInt32(c.Int31n(1000))
			} else {
				*s = intstr.FromString(fmt.Sprintf("p%d", c.Intn(10)))
			}
		},
		func(e *runtime.RawExtension, c randfill.Continue) {
			*e = runtime.RawExtension{Raw: []byte(fmt.Sprintf(`{"a":%d}`, c.Intn(10)))}
		},
	)
	taken, kinds := 0, 0
	for _, res := range scheme.Resources() {
		gvk := res.GVK()
		if o, err := res.New(); err != nil {
			continue
		} else if _, ok := o.(runtime.Unstructured); ok {
			continue
		}
		kinds++
		for i := range 20 {
			obj, _ := res.New()
			f.Fill(obj)
			switch i % 4 {
			case 0:
				obj.GetObjectKind().SetGroupVersionKind(gvk)
			case 1:
				obj.GetObjectKind().SetGroupVersionKind(gvk.GroupVersion().WithKind(""))
			case 2:
				obj.GetObjectKind().SetGroupVersionKind(gvk.GroupKind().WithVersion(""))
			}
			raw, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			clean := string(raw)
			bodies := map[string]bool{clean: true} // body: must be taken
			for _, bad := range []string{
				`{"unknownField":1,` + clean[1:],
				`{"metadata":{"name":"dup"},` + clean[1:],
				`{"Kind":"` + gvk.Kind + `",` + clean[1:],
				`{"kind":"Other",` + clean[1:],
				`{"apiVersion":"other/v9",` + clean[1:],
				`{"apiVersion":"` + gvk.Group + `/",` + clean[1:],
				strings.Replace(clean, `"metadata":{`, `"metadata":{"nameX":"a",`, 1),
				clean[:len(clean)-1],
				`[]`,
			} {
				bodies[bad] = false
			}
			for body, mustTake := range bodies {
				took := checkTaken(t, gvk, []byte(body))
				if mustTake && !took {
					t.Errorf("%s: clean body not taken: %s", gvk, body)
				}
				if took {
					taken++
				}
			}
		}
	}
	t.Logf("%d kinds, %d bodies taken", kinds, taken)
	if kinds < 10 {
		t.Fatalf("only %d kinds", kinds)
	}
}

// edgeBodies are bodies where JSON decoders are known to part ways:
// number forms, base64, escapes, nulls, invalid UTF-8, duplicate and
// miscased names.
var edgeBodies = []struct {
	gvk  schema.GroupVersionKind
	body string
}{
	{podGVK, `{"apiVersion":"v1","kind":"Pod","spec":{"terminationGracePeriodSeconds":30}}`},
	{podGVK, `{"spec":{"terminationGracePeriodSeconds":1e2}}`},
	{podGVK, `{"spec":{"terminationGracePeriodSeconds":30.0}}`},
	{podGVK, `{"spec":{"terminationGracePeriodSeconds":-0}}`},
	{podGVK, `{"spec":{"terminationGracePeriodSeconds":"30"}}`},
	{podGVK, `{"spec":{"terminationGracePeriodSeconds":9223372036854775808}}`},
	{podGVK, `{"spec":{"priority":2147483648}}`},
	{podGVK, `{"spec":{"terminationGracePeriodSeconds":null,"containers":null}}`},
	{podGVK, `{"metadata":{"name":"caf\u00e9","labels":null,"annotations":{"a":"\ud800"}}}`},
	{podGVK, "{\"metadata\":{\"name\":\"\xff\"}}"},
	{podGVK, `{"metadata":{"labels":{"a":"1","a":"2"}}}`},
	{podGVK, `{"metadata":{"name":"a","Name":"b"}}`},
	{podGVK, `{"spec":{"containers":[{"name":"c","ports":[{"containerPort":"80"}]}]}}`},
	{podGVK, `{"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":1.5,"memory":"1Gi"}}}]}}`},
	{podGVK, `{"spec":{"containers":[{"name":"c","livenessProbe":{"httpGet":{"port":"web"},"exec":{}}}]}}`},
	{podGVK, `{"metadata":{"creationTimestamp":"2026-12-07T21:00:00Z","deletionTimestamp":null}}`},
	{podGVK, `{"metadata":{"creationTimestamp":"2026-12-07T21:00:00.5+01:00"}}`},
	{podGVK, ` {"kind":"Pod"} `},
	{podGVK, `{"kind":"Pod"}{}`},
	{secretGVK, `{"data":{"a":"YQ=="}}`},
	{secretGVK, `{"data":{"a":"YQ"}}`},
	{secretGVK, `{"data":{"a":"Y Q=="}}`},
	{secretGVK, `{"data":{"a":"YQ==\n"}}`},
	{secretGVK, `{"data":{"a":"YQ\r\n=="}}`},
	{secretGVK, `{"data":{"a":"_-8="}}`},
	{secretGVK, `{"data":{"a":null},"stringData":{"b":"c"}}`},
}

var (
	podGVK    = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}
	secretGVK = schema.GroupVersionKind{Version: "v1", Kind: "Secret"}
)

// checkTaken fails the test when decodeJSONTyped takes body and the
// strict serializer does not give the same object without a word.
func checkTaken(t *testing.T, gvk schema.GroupVersionKind, body []byte) bool {
	t.Helper()
	into, err := scheme.Scheme.New(gvk)
	if err != nil {
		t.Fatal(err)
	}
	if !decodeJSONTyped(body, gvk, into) {
		return false
	}
	fresh, _ := scheme.Scheme.New(gvk)
	want, got, err := jsonStrict.Decode(body, &gvk, fresh)
	if err != nil {
		t.Fatalf("%s: taken body the serializer refuses (%v): %q", gvk, err, body)
	}
	if *got != gvk {
		t.Fatalf("%s: taken body the serializer reads as %v: %q", gvk, got, body)
	}
	if !reflect.DeepEqual(want, into) {
		t.Fatalf("%s: decoded objects differ for %q:\nserializer: %#v\none pass:   %#v", gvk, body, want, into)
	}
	return true
}

func TestDecodeJSONTypedEdges(t *testing.T) {
	taken := 0
	for _, e := range edgeBodies {
		if checkTaken(t, e.gvk, []byte(e.body)) {
			taken++
		}
	}
	if taken < 5 {
		t.Fatalf("only %d of the edge bodies taken, want the clean ones", taken)
	}
}

// FuzzDecodeJSONTyped mutates JSON bodies: whatever the one-pass decode
// takes, the strict serializer must decode to the same object.
func FuzzDecodeJSONTyped(f *testing.F) {
	for _, e := range edgeBodies {
		f.Add(e.gvk.Kind, []byte(e.body))
	}
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		gvk := schema.GroupVersionKind{Version: "v1", Kind: kind}
		if !scheme.Scheme.Recognizes(gvk) {
			gvk = podGVK
		}
		checkTaken(t, gvk, body)
	})
}
