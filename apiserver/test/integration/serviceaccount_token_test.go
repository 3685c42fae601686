package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/apiserver/internal/pki"
	"github.com/coxswain/coxswain/apiserver/internal/serviceaccount"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// bearerGet GETs path with the token and returns the status code.
func bearerGet(t *testing.T, hc *http.Client, base, path, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// requestToken POSTs a TokenRequest and returns the status code and body.
func requestToken(t *testing.T, hc *http.Client, base, ns, sa, body string) (int, []byte) {
	t.Helper()
	code, _, b := do(t, hc, http.MethodPost, base+"/api/v1/namespaces/"+ns+"/serviceaccounts/"+sa+"/token", "application/json", "application/json", []byte(body))
	return code, b
}

// TestServiceAccountTokens issues tokens over REST, gRPC and kubectl
// create token, and authenticates with them as bearer tokens over REST and
// gRPC; wrong, expired and orphaned tokens get 401.
func TestServiceAccountTokens(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	base := "https://" + env.Server.Address
	admin := restClient(t, env)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: env.AnonymousTLS(t), ForceAttemptHTTP2: true}, Timeout: 20 * time.Second}

	if _, err := client.For[*corev1.ServiceAccount](env.Client).Create(ctx, "default", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}); err != nil {
		t.Fatal(err)
	}

	// REST TokenRequest.
	code, body := requestToken(t, admin, base, "default", "robot", `{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}`)
	if code != http.StatusCreated {
		t.Fatalf("POST serviceaccounts/robot/token = %d %s, want 201", code, body)
	}
	var tr authenticationv1.TokenRequest
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Kind != "TokenRequest" || tr.Status.Token == "" || tr.Spec.ExpirationSeconds == nil || *tr.Spec.ExpirationSeconds != 3600 ||
		len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != serviceaccount.DefaultIssuer {
		t.Fatalf("TokenRequest = %s, want kind TokenRequest, a token, 3600 s, the issuer as audience", body)
	}
	restToken := tr.Status.Token

	if got := bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", restToken); got != http.StatusOK {
		t.Errorf("GET pods with the REST token = %d, want 200", got)
	}
	for name, tok := range map[string]string{
		"no token":       "",
		"garbage":        "not-a-token",
		"tampered":       restToken[:len(restToken)-6] + "AAAAAA",
		"wrong issuer":   "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
		"other audience": tokenFor(t, admin, base, `{"spec":{"audiences":["vault"]}}`),
	} {
		if got := bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", tok); got != http.StatusUnauthorized {
			t.Errorf("GET pods with %s = %d, want 401", name, got)
		}
	}

	// An expired token, signed with the apiserver's own key.
	key, err := pki.LoadSigningKey(filepath.Join(env.Options.DataDir, "pki", pki.ServiceAccountKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := serviceaccount.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	stores := serviceaccount.Objects{
		ServiceAccounts: env.Server.Registry.MustStore(corev1.SchemeGroupVersion.WithResource("serviceaccounts")),
		Pods:            env.Server.Registry.MustStore(corev1.SchemeGroupVersion.WithResource("pods")),
	}
	old := &serviceaccount.Issuer{Signer: signer, Issuer: serviceaccount.DefaultIssuer, Objects: stores, Audiences: []string{serviceaccount.DefaultIssuer},
		Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }}
	expired, err := old.CreateToken(ctx, "default", "robot", &authenticationv1.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", expired.Status.Token); got != http.StatusUnauthorized {
		t.Errorf("GET pods with an expired token = %d, want 401", got)
	}

	// Validation and lookups fail as upstream's.
	code, body = requestToken(t, admin, base, "default", "robot", `{"spec":{"expirationSeconds":599}}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "spec.expirationSeconds") {
		t.Errorf("expirationSeconds 599 = %d %s, want 422 naming spec.expirationSeconds", code, body)
	}
	if code, body = requestToken(t, admin, base, "default", "nobody", `{"spec":{}}`); code != http.StatusNotFound {
		t.Errorf("token of a missing service account = %d %s, want 404", code, body)
	}
	if code, body = requestToken(t, admin, base, "default", "robot", `{"spec":{"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"gone"}}}`); code != http.StatusNotFound {
		t.Errorf("token bound to a missing pod = %d %s, want 404", code, body)
	}

	// kubectl create token.
	k := newKubectl(t, env)
	kubectlToken := strings.TrimSpace(k.ok("create", "token", "robot", "--duration", "20m"))
	if got := bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", kubectlToken); got != http.StatusOK {
		t.Errorf("GET pods with the kubectl create token token = %d, want 200", got)
	}
	if errOut := k.fails("create", "token", "nobody"); !strings.Contains(errOut, "not found") {
		t.Errorf("kubectl create token nobody: stderr %q, want not found", errOut)
	}

	// A pod-bound token over gRPC, then the pod goes away.
	pod, err := client.For[*corev1.Pod](env.Client).Create(ctx, "default", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bound"},
		Spec:       corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := env.Client.CreateSubresource(ctx, corev1.SchemeGroupVersion.WithResource("serviceaccounts"), "default", "robot", "token",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: new(int64(600)),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("gRPC TokenRequest: %v", err)
	}
	bound := obj.(*authenticationv1.TokenRequest)
	if bound.Status.Token == "" || bound.Spec.BoundObjectRef.UID != pod.UID {
		t.Fatalf("gRPC TokenRequest = %+v, want a token bound to %s", bound, pod.UID)
	}

	conn, err := grpc.NewClient(env.Server.Address, grpc.WithTransportCredentials(credentials.NewTLS(env.AnonymousTLS(t))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	grpcAnon := client.NewFromConn(conn)
	pods := client.For[*corev1.Pod](grpcAnon)
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	if _, err := pods.Get(withToken(bound.Status.Token), "default", "bound"); err != nil {
		t.Errorf("gRPC Get with the bound token: %v", err)
	}
	if _, err := pods.Get(ctx, "default", "bound"); !apierrors.IsUnauthorized(err) {
		t.Errorf("gRPC Get without credentials: %v, want Unauthorized", err)
	}
	if _, err := pods.Get(withToken(expired.Status.Token), "default", "bound"); !apierrors.IsUnauthorized(err) {
		t.Errorf("gRPC Get with an expired token: %v, want Unauthorized", err)
	}
	if got := bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", bound.Status.Token); got != http.StatusOK {
		t.Errorf("GET pods with the bound token = %d, want 200", got)
	}
	if _, err := client.For[*corev1.Pod](env.Client).Delete(ctx, "default", "bound", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", bound.Status.Token) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the token of a deleted pod still authenticates after 30s, want 401")
		}
		if _, err := client.For[*corev1.Pod](env.Client).Get(ctx, "default", "bound"); !apierrors.IsNotFound(err) {
			continue // still terminating
		}
	}
	// Still-unbound tokens keep working.
	if got := bearerGet(t, anon, base, "/api/v1/namespaces/default/pods", restToken); got != http.StatusOK {
		t.Errorf("GET pods with the REST token after the pod's deletion = %d, want 200", got)
	}
}

func tokenFor(t *testing.T, hc *http.Client, base, body string) string {
	t.Helper()
	code, b := requestToken(t, hc, base, "default", "robot", body)
	if code != http.StatusCreated {
		t.Fatalf("TokenRequest %s = %d %s", body, code, b)
	}
	var tr authenticationv1.TokenRequest
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
