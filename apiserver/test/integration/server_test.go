package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	grpcstatus "google.golang.org/grpc/status"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
	"github.com/coxswain/coxswain/pkg/leaderelection"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

func caPool(t *testing.T, env *harness.Env) *x509.CertPool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.Options.DataDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	return pool
}

// Requests without a client certificate get 401 on both protocols, health
// endpoints answer anonymously, metrics need a certificate, reflection lists
// the service.
func TestAuthenticationHealthMetricsReflection(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	pool := caPool(t, env)
	addr := env.Server.Address

	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	for path, want := range map[string]int{"/healthz": 200, "/livez": 200, "/readyz": 200, "/version": 200, "/metrics": 401, "/api/v1/pods": 401} {
		resp, err := anon.Get("https://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("anonymous GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}

	cfg, err := kubeconfig.Load(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	authed := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	// Make some traffic to count, and hold a watch open.
	if _, err := client.For[*corev1.Namespace](env.Client).Get(ctx, "", "default"); err != nil {
		t.Fatal(err)
	}
	w, err := client.For[*corev1.Pod](env.Client).Watch(ctx, "", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitFor(t, func() bool {
		resp, err := authed.Get("https://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `apiserver_registered_watchers{resource="pods"} 1`)
	})
	resp, err := authed.Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"apiserver_request_total", "apiserver_request_duration_seconds", "etcd_request_duration_seconds", "apiserver_registered_watchers"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if !strings.Contains(string(body), `resource="namespaces"`) {
		t.Errorf("/metrics does not count the namespaces get")
	}

	// gRPC without a client certificate: Unauthenticated carrying a 401 Status.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = client.NewFromConn(conn).Get(ctx, corev1.SchemeGroupVersion.WithResource("namespaces"), "", "default", metav1.GetOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("anonymous gRPC get: %v, want 401 Unauthorized", err)
	}
	_, err = resourcev1.NewResourcesClient(conn).Get(ctx, &resourcev1.GetRequest{Ref: &resourcev1.ResourceRef{Version: "v1", Resource: "namespaces", Name: "default"}})
	if grpcstatus.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous gRPC code = %v, want Unauthenticated", grpcstatus.Code(err))
	}

	// A gRPC client that asks only for "h2" (grpcurl, other languages) is
	// served through the HTTP/2 server.
	h2tc := tc.Clone()
	h2tc.NextProtos = []string{"h2"}
	h2conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(h2tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer h2conn.Close()
	if _, err := client.NewFromConn(h2conn).Get(ctx, corev1.SchemeGroupVersion.WithResource("namespaces"), "", "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("gRPC over plain h2: %v", err)
	}

	// Reflection lists the resource service.
	rc, err := reflectionpb.NewServerReflectionClient(env.Client.Conn()).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range rr.GetListServicesResponse().GetService() {
		if s.Name == "coxswain.resource.v1.Resources" {
			found = true
		}
	}
	if !found {
		t.Fatalf("reflection services %v lack coxswain.resource.v1.Resources", rr.GetListServicesResponse().GetService())
	}
}

// Two candidates: one leads, and when it stops the other takes over.
func TestLeaderElection(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	var leaders atomic.Int32
	started := make(chan string, 2)
	run := func(id string) (context.CancelFunc, chan struct{}) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = leaderelection.Run(cctx, leaderelection.Config{
				Client: env.NewClient(t), Name: "test-lock", Identity: id,
				LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond,
				ReleaseOnCancel: true,
				Callbacks: leaderelection.Callbacks{
					OnStartedLeading: func(lctx context.Context) {
						if leaders.Add(1) > 1 {
							t.Errorf("two leaders at once")
						}
						started <- id
						<-lctx.Done()
						leaders.Add(-1)
					},
					OnStoppedLeading: func() {},
				},
			})
		}()
		return cancel, done
	}
	cancelA, doneA := run("a")
	first := <-started
	cancelB, doneB := run("b")
	defer func() { cancelB(); <-doneB }()
	if first != "a" {
		t.Fatalf("first leader = %s, want a", first)
	}
	lease, err := client.For[*coordinationv1.Lease](env.Client).Get(ctx, "kube-system", "test-lock")
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "a" {
		t.Fatalf("lease holder: %v %v, want a", lease, err)
	}
	cancelA()
	<-doneA
	select {
	case id := <-started:
		if id != "b" {
			t.Fatalf("second leader = %s, want b", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("b did not take over within 20s")
	}
}

// The shared informer factory syncs from the real apiserver and its lister
// follows changes.
func TestInformerFactory(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](env.Client)
	if _, err := pods.Create(ctx, "default", pod("one")); err != nil {
		t.Fatal(err)
	}
	f := informer.NewFactory(env.Client, 0)
	_, lister := informer.ForType[*corev1.Pod](f)
	fctx, cancel := context.WithCancel(ctx)
	f.Start(fctx)
	defer func() { cancel(); f.Wait() }()
	for gvr, ok := range f.WaitForCacheSync(ctx) {
		if !ok {
			t.Fatalf("%v did not sync", gvr)
		}
	}
	if got := lister.List(labels.Everything()); len(got) != 1 {
		t.Fatalf("lister has %d pods, want 1", len(got))
	}
	if _, err := pods.Create(ctx, "default", pod("two")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, err := lister.Get("default", "two"); return err == nil })
}
