package client

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecodeAllKeepsOrder(t *testing.T) {
	for _, n := range []int{0, 3, parallelDecodeMin, 2*parallelDecodeMin + 7} {
		raws := make([][]byte, n)
		for i := range raws {
			raw, err := Encode(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("p-", i)}})
			if err != nil {
				t.Fatal(err)
			}
			raws[i] = raw
		}
		items, err := decodeAll(raws)
		if err != nil {
			t.Fatalf("%d items: %v", n, err)
		}
		if len(items) != n {
			t.Fatalf("%d items decoded, want %d", len(items), n)
		}
		for i, obj := range items {
			if p, ok := obj.(*corev1.Pod); !ok || p.Name != fmt.Sprint("p-", i) {
				t.Fatalf("item %d is %v, want pod p-%d", i, obj, i)
			}
		}
		if n > 0 {
			raws[n-1] = []byte("not protobuf")
			if _, err := decodeAll(raws); err == nil {
				t.Errorf("%d items with a corrupt last one: no error", n)
			}
		}
	}
}
