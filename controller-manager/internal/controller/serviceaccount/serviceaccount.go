// Package serviceaccount makes sure every active namespace has a
// "default" ServiceAccount.
package serviceaccount

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// Name is the name of the ServiceAccount every namespace gets.
const Name = "default"

// Creator is the part of the ServiceAccount client the controller uses.
type Creator interface {
	Create(ctx context.Context, ns string, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error)
}

// Controller creates missing default ServiceAccounts. Its keys are
// namespace names.
type Controller struct {
	sas      Creator
	nsLister *informer.Lister[*corev1.Namespace]
	saLister *informer.Lister[*corev1.ServiceAccount]
	synced   []func() bool
	queue    *workqueue.Typed[string]
	logger   *zap.Logger
	accounts []string
}

// New returns the controller, fed by f's informers.
func New(c *client.Client, f *informer.Factory, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	nsInf, nsLister := informer.ForType[*corev1.Namespace](f)
	saInf, saLister := informer.ForType[*corev1.ServiceAccount](f)
	sc := newController(client.For[*corev1.ServiceAccount](c), nsLister, saLister, logger, controller.NewQueue("serviceaccount", m))
	sc.synced = []func() bool{nsInf.HasSynced, saInf.HasSynced}
	if _, err := nsInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    sc.enqueueNamespace,
		UpdateFunc: func(_, cur any) { sc.enqueueNamespace(cur) },
	}); err != nil {
		return nil, fmt.Errorf("serviceaccount: watch namespaces: %w", err)
	}
	if _, err := saInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		DeleteFunc: sc.deleteServiceAccount,
	}); err != nil {
		return nil, fmt.Errorf("serviceaccount: watch serviceaccounts: %w", err)
	}
	return sc, nil
}

func newController(sas Creator, nsLister *informer.Lister[*corev1.Namespace], saLister *informer.Lister[*corev1.ServiceAccount], logger *zap.Logger, q *workqueue.Typed[string]) *Controller {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Controller{sas: sas, nsLister: nsLister, saLister: saLister, queue: q, logger: logger.Named("serviceaccount"), accounts: []string{Name}}
}

// Run reconciles with workers goroutines until ctx is done.
func (sc *Controller) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "serviceaccount", sc.logger, sc.queue, workers, sc.sync, sc.synced...)
}

func (sc *Controller) enqueueNamespace(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase != corev1.NamespaceTerminating {
		sc.queue.Add(ns.Name)
	}
}

func (sc *Controller) deleteServiceAccount(obj any) {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		tomb, ok := obj.(informer.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if sa, ok = tomb.Obj.(*corev1.ServiceAccount); !ok {
			return
		}
	}
	for _, name := range sc.accounts {
		if sa.Name == name {
			sc.queue.Add(sa.Namespace)
		}
	}
}

func (sc *Controller) sync(ctx context.Context, nsName string) error {
	ns, err := sc.nsLister.Get("", nsName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", nsName, err)
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	for _, name := range sc.accounts {
		if _, err := sc.saLister.Get(nsName, name); err == nil {
			continue
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: nsName}}
		_, err := sc.sas.Create(ctx, nsName, sa)
		switch {
		case err == nil:
			sc.logger.Info("created service account", zap.String("namespace", nsName), zap.String("name", name))
		case apierrors.IsAlreadyExists(err), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		default:
			return fmt.Errorf("create service account %s/%s: %w", nsName, name, err)
		}
	}
	return nil
}
