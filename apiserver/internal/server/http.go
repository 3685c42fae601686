package server

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
	"github.com/coxswain/coxswain/apiserver/internal/metrics"
	"github.com/coxswain/coxswain/pkg/api/status"
	"github.com/coxswain/coxswain/pkg/secureserving"
)

// Version is what /version reports.
var Version = version.Info{
	Major: "1", Minor: "32", GitVersion: "v1.32.0-coxswain", GitCommit: "", GitTreeState: "clean",
	BuildDate: "", GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH,
}

// Checks are the health checks of /livez and /readyz.
type Checks struct {
	Live  func() error
	Ready func() error
}

// HTTPHandler serves the health endpoints and /version anonymously, and
// hands every other request, authenticated by its client certificate or
// bearer token, to api (nil: 404).
func HTTPHandler(auth *authn.Authenticator, checks Checks, m *metrics.Metrics, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	health := func(check func() error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if check != nil {
				if err := check(); err != nil {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte("[-]" + err.Error() + "\nhealthz check failed\n"))
					return
				}
			}
			_, _ = w.Write([]byte("ok"))
		}
	}
	mux.HandleFunc("/healthz", health(checks.Live))
	mux.HandleFunc("/livez", health(checks.Live))
	mux.HandleFunc("/readyz", health(checks.Ready))
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Version)
	})
	metricsHandler := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := auth.Authenticate(r.Context(), TLSState(r), r.Header.Get("Authorization"))
		if err != nil {
			WriteStatus(w, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		// As upstream, the credential is not passed on (to kubelets, say).
		r.Header.Del("Authorization")
		r = r.WithContext(authn.WithUser(r.Context(), user))
		if r.URL.Path == "/metrics" {
			metricsHandler.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/debug/pprof") {
			secureserving.Profiling(w, r)
			return
		}
		if api == nil {
			WriteStatus(w, apierrors.NewNotFound(schema.GroupResource{}, ""))
			return
		}
		api.ServeHTTP(w, r)
	})
	mux.Handle("/", authed)
	return mux
}

// WriteStatus writes err as a JSON metav1.Status.
func WriteStatus(w http.ResponseWriter, err error) {
	st := status.FromError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}
