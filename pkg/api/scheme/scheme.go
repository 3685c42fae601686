// Package scheme holds the runtime.Scheme of every API type Coxswain serves,
// the codecs built on it, and the table of served resources.
package scheme

import (
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// Scheme knows every served Go type.
var Scheme = runtime.NewScheme()

// Codecs builds serializers for Scheme.
var Codecs serializer.CodecFactory

// Protobuf is the Kubernetes protobuf serializer ("k8s\x00" envelope) used
// for storage and the gRPC API.
var Protobuf *protobuf.Serializer

func init() {
	builders := []func(*runtime.Scheme) error{
		corev1.AddToScheme,
		appsv1.AddToScheme,
		authenticationv1.AddToScheme, // TokenRequest, for serviceaccounts/token
		batchv1.AddToScheme,
		autoscalingv1.AddToScheme, // Scale, for the scale subresource
		autoscalingv2.AddToScheme,
		coordinationv1.AddToScheme,
		discoveryv1.AddToScheme,
		policyv1.AddToScheme,
		rbacv1.AddToScheme,
		schedulingv1.AddToScheme,
	}
	for _, add := range builders {
		if err := add(Scheme); err != nil {
			panic(err) // programming error: the static type set is inconsistent
		}
	}
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Codecs = serializer.NewCodecFactory(Scheme)
	Protobuf = protobuf.NewSerializer(Scheme, Scheme)
}
