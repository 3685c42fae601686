package grpcapi

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/apiserver/internal/registry/strategies"
	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/api/status"
)

// FuzzDecodeObject feeds arbitrary bytes to the request decoder and the
// patch appliers: they return a Status error or an object, never panic.
func FuzzDecodeObject(f *testing.F) {
	res, _ := scheme.LookupResource(corev1.SchemeGroupVersion.WithResource("pods"))
	strat, _ := strategies.For(res.GVR)
	store := generic.NewStore(res, strat, nil, 10, nil)
	good, err := encode(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte(`{"metadata":{"labels":{"a":"b"}}}`))
	f.Add([]byte("k8s\x00garbage"), []byte(`[{"op":"add","path":"/spec/x","value":1}]`))
	f.Add([]byte{}, []byte(`{"spec":{"containers":[{"name":"c","$patch":"delete"}]}}`))
	f.Fuzz(func(t *testing.T, raw, patch []byte) {
		obj, err := decodeFor(store, raw)
		if err != nil {
			if st := status.FromError(err); st.Code != 400 && st.Code != 413 {
				t.Fatalf("decode error with code %d: %v", st.Code, err)
			}
			return
		}
		for _, pt := range []types.PatchType{types.MergePatchType, types.StrategicMergePatchType, types.JSONPatchType} {
			if _, err := generic.ApplyPatch(obj, pt, patch); err != nil {
				if st := status.FromError(err); st.Code >= 500 {
					t.Fatalf("patch %s gave a server error: %v", pt, err)
				}
			}
		}
	})
}
