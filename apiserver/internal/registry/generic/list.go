package generic

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
)

// ListResult is one page of a list.
type ListResult struct {
	Items           []*cacher.Entry
	ResourceVersion string
	Continue        string
	// Remaining is the count of items after this page, when known.
	Remaining *int64
}

// Predicate parses and checks label and field selectors.
func (s *Store) Predicate(ns, labelSel, fieldSel string) (cacher.Predicate, error) {
	p := cacher.Predicate{Namespace: ns}
	if labelSel != "" {
		sel, err := labels.Parse(labelSel)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		p.Label = sel
	}
	if fieldSel != "" {
		sel, err := fields.ParseSelector(fieldSel)
		if err != nil {
			return p, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		for _, r := range sel.Requirements() {
			if !s.fieldKeys[r.Field] {
				return p, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
		p.Field = sel
	}
	return p, nil
}

type continueToken struct {
	APIVersion string `json:"v"`
	RV         int64  `json:"rv"`
	Start      string `json:"start"`
}

func encodeContinue(rv int64, start string) string {
	raw, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", RV: rv, Start: start})
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeContinue(tok string) (continueToken, error) {
	var t continueToken
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return t, apierrors.NewBadRequest("continue key is not valid: " + err.Error())
	}
	if err := json.Unmarshal(raw, &t); err != nil || t.APIVersion != "meta.k8s.io/v1" || t.RV <= 0 || strings.Contains(t.Start, "/..") {
		return t, apierrors.NewBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	return t, nil
}

// List lists objects as upstream: resourceVersion "" is a consistent read
// (the cache waits for etcd's current revision), "0" any cached state, N at
// least as fresh as N (or exactly N with resourceVersionMatch=Exact, read
// from etcd). Pages (limit/continue) are read from etcd at one revision.
func (s *Store) List(ctx context.Context, ns string, opts metav1.ListOptions) (*ListResult, error) {
	if !s.Resource.Namespaced && ns != "" {
		return nil, apierrors.NewNotFound(s.gr(), "")
	}
	p, err := s.Predicate(ns, opts.LabelSelector, opts.FieldSelector)
	if err != nil {
		return nil, err
	}
	if opts.Limit < 0 {
		return nil, apierrors.NewBadRequest("limit must be non-negative")
	}
	rv, err := etcd.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	switch opts.ResourceVersionMatch {
	case "", metav1.ResourceVersionMatchNotOlderThan, metav1.ResourceVersionMatchExact:
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch: Unsupported value: %q", opts.ResourceVersionMatch))
	}
	if opts.ResourceVersionMatch != "" && opts.ResourceVersion == "" {
		return nil, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if opts.Continue != "" {
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		res, err := s.listCachePage(ctx, p, 0, tok.Start, opts.Limit, tok.RV)
		if errors.Is(err, cacher.ErrNoSnapshot) {
			return s.listEtcd(ctx, p, tok.RV, tok.Start, opts.Limit)
		}
		return res, err
	}
	exact := opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact
	if exact {
		if rv == 0 {
			return nil, apierrors.NewBadRequest("resourceVersionMatch=Exact requires a non-zero resourceVersion")
		}
		return s.listEtcd(ctx, p, rv, "", opts.Limit)
	}
	min := rv
	if opts.ResourceVersion == "" {
		if min, err = s.Storage.CurrentRevision(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Limit > 0 && opts.ResourceVersion != "0" {
		return s.listCachePage(ctx, p, min, "", opts.Limit, 0)
	}
	items, rev, err := s.Cache.List(ctx, min, p)
	if err != nil {
		return nil, err
	}
	return &ListResult{Items: items, ResourceVersion: strconv.FormatInt(rev, 10)}, nil
}

// listCachePage serves one page from the watch cache (a snapshot taken at
// the first page, for the pages after it).
func (s *Store) listCachePage(ctx context.Context, p cacher.Predicate, minRev int64, start string, limit, snapRev int64) (*ListResult, error) {
	prefix := s.Prefix
	if p.Namespace != "" {
		prefix += p.Namespace + "/"
	}
	if start != "" {
		start = prefix + start
	}
	items, rev, next, err := s.Cache.ListPage(ctx, minRev, p, start, limit, snapRev)
	if err != nil {
		return nil, err
	}
	res := &ListResult{Items: items, ResourceVersion: strconv.FormatInt(rev, 10)}
	if next != "" {
		res.Continue = encodeContinue(rev, next[len(prefix):])
	}
	return res, nil
}

func (s *Store) listEtcd(ctx context.Context, p cacher.Predicate, rev int64, start string, limit int64) (*ListResult, error) {
	prefix := s.Prefix
	if p.Namespace != "" {
		prefix += p.Namespace + "/"
	}
	if start != "" {
		start = prefix + start
	}
	var out []*cacher.Entry
	batch := limit
	if batch <= 0 || batch > 1000 {
		batch = 1000
	}
	if p.Label != nil || p.Field != nil {
		batch = max(batch, 500)
	}
	for {
		kvs, r, more, err := s.Storage.ListPage(ctx, prefix, start, rev, batch)
		if err != nil {
			if etcd.IsCompacted(err) {
				return nil, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
			}
			return nil, err
		}
		if rev == 0 {
			rev = r
		}
		for i, kv := range kvs {
			obj, err := s.decode(kv)
			if err != nil {
				return nil, err
			}
			lbls, flds, err := s.attrs(obj)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			e := &cacher.Entry{Key: kv.Key, Obj: obj, Rev: kv.ModRevision, Labels: lbls, Fields: flds}
			if !p.Matches(e) {
				continue
			}
			out = append(out, e)
			if limit > 0 && int64(len(out)) == limit && (more || i < len(kvs)-1) {
				next := kv.Key[len(prefix):] + "\x00"
				return &ListResult{Items: out, ResourceVersion: strconv.FormatInt(rev, 10), Continue: encodeContinue(rev, next)}, nil
			}
		}
		if !more || len(kvs) == 0 {
			break
		}
		start = kvs[len(kvs)-1].Key + "\x00"
	}
	return &ListResult{Items: out, ResourceVersion: strconv.FormatInt(rev, 10)}, nil
}

// Watch opens a watch on the cache. resourceVersion "" and "0" start with
// the current state as ADDED events; N streams the changes after N, or
// fails with 410 Gone when N is older than the cache's window.
func (s *Store) Watch(ctx context.Context, ns string, opts metav1.ListOptions) (*cacher.Watcher, error) {
	if !s.Resource.Namespaced && ns != "" {
		return nil, apierrors.NewNotFound(s.gr(), "")
	}
	p, err := s.Predicate(ns, opts.LabelSelector, opts.FieldSelector)
	if err != nil {
		return nil, err
	}
	rv, err := etcd.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	wo := cacher.WatchOptions{Rev: rv, Bookmarks: opts.AllowWatchBookmarks, Pred: p}
	switch {
	case opts.SendInitialEvents != nil && *opts.SendInitialEvents:
		if !opts.AllowWatchBookmarks {
			return nil, apierrors.NewInvalid(s.Resource.GVK().GroupKind(), "", field.ErrorList{field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true")})
		}
		wo.Initial, wo.InitialEndBookmark = true, true
		if opts.ResourceVersion == "" {
			if wo.ConsistentRev, err = s.Storage.CurrentRevision(ctx); err != nil {
				return nil, err
			}
		} else {
			wo.ConsistentRev = rv
		}
	case opts.ResourceVersion == "" || rv == 0:
		wo.Initial = true
	}
	return s.Cache.Watch(ctx, wo)
}

// Bookmark returns the object a watch sends as a BOOKMARK: an empty object
// of the resource's kind carrying only the resourceVersion rev, annotated
// k8s.io/initial-events-end when e is the bookmark that ends the initial
// events of a sendInitialEvents watch.
func (s *Store) Bookmark(rev int64, e *cacher.Entry) (runtime.Object, error) {
	obj, err := s.Resource.New()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	if e != nil && cacher.IsInitialEventsEnd(&cacher.Event{Type: watch.Bookmark, Cur: e}) {
		acc.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	obj.GetObjectKind().SetGroupVersionKind(s.Resource.GVK())
	return obj, nil
}
