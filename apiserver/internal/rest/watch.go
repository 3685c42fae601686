package rest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/apiserver/internal/storage/cacher"
	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/api/status"
)

// watch streams events: JSON lines ({"type":..,"object":..}) or, for
// protobuf, length-prefixed metav1.WatchEvent frames.
func (h *Handler) watch(w http.ResponseWriter, r *http.Request, req *request) {
	a, err := negotiate(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	opts, err := listOptions(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	timeout := 30 * time.Minute
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wt, err := req.store.Watch(ctx, req.namespace, opts)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer wt.Stop()
	if h.Metrics != nil {
		g := h.Metrics.Watchers.WithLabelValues(req.gvr.Resource)
		g.Inc()
		defer g.Dec()
	}
	media := a.media
	if media == mediaYAML {
		media = mediaJSON
	}
	ct := media
	if media == mediaProtobuf {
		ct = "application/vnd.kubernetes.protobuf;stream=watch"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	first := true
	for {
		typ, e, rev, ok := wt.Next(ctx)
		if !ok {
			return
		}
		obj, err := h.eventObject(r, req, a, typ, e, rev, first)
		if err != nil {
			st := status.FromError(err)
			_ = writeEvent(w, media, watch.Error, &st)
			return
		}
		if typ != watch.Bookmark {
			first = false
		}
		if err := writeEvent(w, media, typ, obj); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func (h *Handler) eventObject(r *http.Request, req *request, a accept, typ watch.EventType, e *cacher.Entry, rev int64, first bool) (runtime.Object, error) {
	if typ == watch.Bookmark {
		return req.store.Bookmark(rev, e)
	}
	obj, err := e.Object()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if a.table {
		t, err := h.table(r, req, []runtime.Object{obj})
		if err != nil {
			return nil, err
		}
		if !first {
			t.ColumnDefinitions = nil
		}
		return t, nil
	}
	if a.partial {
		return partialMetadata(obj), nil
	}
	setKind(obj)
	return obj, nil
}

func writeEvent(w http.ResponseWriter, media string, typ watch.EventType, obj runtime.Object) error {
	if media == mediaProtobuf {
		var buf bytes.Buffer
		if err := scheme.Protobuf.Encode(obj, &buf); err != nil {
			return err
		}
		// Frames are raw (unenveloped) WatchEvents, each prefixed with its
		// length; the object inside is enveloped.
		ev := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: buf.Bytes()}}
		frame, err := ev.Marshal()
		if err != nil {
			return err
		}
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(frame)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		_, err = w.Write(frame)
		return err
	}
	var buf bytes.Buffer
	if err := jsonSerializer.Encode(obj, &buf); err != nil {
		return err
	}
	line, err := json.Marshal(struct {
		Type   watch.EventType `json:"type"`
		Object json.RawMessage `json:"object"`
	}{typ, bytes.TrimSpace(buf.Bytes())})
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}
