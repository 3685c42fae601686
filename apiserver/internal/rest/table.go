package rest

import (
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/rest/tables"
)

// table converts objects to the Table kubectl prints.
func (h *Handler) table(r *http.Request, req *request, objs []runtime.Object) (*metav1.Table, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	var to metav1.TableOptions
	q := r.URL.Query()
	if err := metav1.Convert_url_Values_To_v1_TableOptions(&q, &to, nil); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	policy := to.IncludeObject
	if policy == "" {
		policy = metav1.IncludeMetadata
	}
	t, err := tables.Convert(req.gvr, objs, tables.Options{Now: now(), NoHeaders: to.NoHeaders, IncludeObject: policy})
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	t.APIVersion, t.Kind = "meta.k8s.io/v1", "Table"
	return t, nil
}
