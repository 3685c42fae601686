package endpoints

import (
	"context"
	"testing"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/pkg/informer"
)

// existsClient refuses every create: the object is already in the API.
type existsClient struct{ creates int }

func (c *existsClient) Create(_ context.Context, _ string, ep *corev1.Endpoints) (*corev1.Endpoints, error) {
	c.creates++
	return nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "endpoints"}, ep.Name)
}

func (c *existsClient) Update(_ context.Context, _ string, ep *corev1.Endpoints) (*corev1.Endpoints, error) {
	return ep, nil
}

func (c *existsClient) Delete(context.Context, string, string, metav1.DeleteOptions) (bool, error) {
	return true, nil
}

// TestCreateAlreadyExistsRetries: when the Endpoints lister has not yet seen
// what an earlier sync created, the create fails with AlreadyExists; the
// sync must fail (and be retried, when the lister has it) rather than
// succeed with its subsets unwritten.
func TestCreateAlreadyExistsRetries(t *testing.T) {
	idx := func() informer.Indexer {
		return informer.NewIndexer(informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc})
	}
	svcs, pods, eps := idx(), idx(), idx()
	if err := svcs.Add(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}); err != nil {
		t.Fatal(err)
	}
	c := &existsClient{}
	ec := &Controller{
		eps: c, svcLister: informer.NewLister[*corev1.Service](svcs), podLister: informer.NewLister[*corev1.Pod](pods),
		epLister: informer.NewLister[*corev1.Endpoints](eps), logger: zap.NewNop(),
	}
	err := ec.sync(context.Background(), "ns/web")
	if c.creates != 1 {
		t.Fatalf("%d creates, want 1", c.creates)
	}
	if err == nil || !apierrors.IsAlreadyExists(err) {
		t.Fatalf("sync = %v, want the AlreadyExists error, so that the key is retried", err)
	}
}
