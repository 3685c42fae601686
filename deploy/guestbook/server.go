package guestbook

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// Server is the guestbook web frontend.
type Server struct {
	Master  Redis
	Replica Redis
	Key     string
}

const listKey = "guestbook"

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><title>Guestbook</title></head>
<body><h1>Guestbook</h1>
<form method="post" action="/rpush"><input name="value" placeholder="Messages"><button>Submit</button></form>
<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>
</body></html>`))

// ServeHTTP serves the page, /get (JSON list of entries, read from a
// replica, falling back to the master), /rpush (append, to the master) and
// /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch r.URL.Path {
	case "/healthz":
		_, _ = w.Write([]byte("ok"))
	case "/get":
		entries, err := s.entries(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(entries)
	case "/rpush":
		v := r.FormValue("value")
		if v == "" {
			http.Error(w, "value is required", http.StatusBadRequest)
			return
		}
		if _, err := s.Master.Do(ctx, "RPUSH", s.key(), v); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	case "/":
		entries, err := s.entries(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, entries)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) key() string {
	if s.Key != "" {
		return s.Key
	}
	return listKey
}

func (s *Server) entries(ctx context.Context) ([]string, error) {
	raw, err := s.lrange(ctx, s.Replica)
	if err != nil && s.Replica.Addr != s.Master.Addr {
		raw, err = s.lrange(ctx, s.Master)
	}
	return raw, err
}

func (s *Server) lrange(ctx context.Context, r Redis) ([]string, error) {
	// LRANGE returns an array; read it with a dedicated reader.
	return r.List(ctx, "LRANGE", s.key(), "0", "-1")
}
