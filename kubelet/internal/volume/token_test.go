package volume

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// fakeTokens issues numbered tokens valid from the fake clock.
type fakeTokens struct {
	mu    sync.Mutex
	now   *time.Time
	n     int
	fail  bool
	specs []authenticationv1.TokenRequestSpec
}

func (f *fakeTokens) request(_ context.Context, ns, sa string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("apiserver unavailable")
	}
	f.n++
	f.specs = append(f.specs, tr.Spec)
	out := tr.DeepCopy()
	out.Status.Token = ns + "/" + sa + "#" + string(rune('0'+f.n))
	out.Status.ExpirationTimestamp = metav1.NewTime(f.now.Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
	return out, nil
}

// Tokens are kept until 80% of their lifetime (less up to 10s of jitter)
// or 24 hours have passed, kept past a failed refresh until they expire,
// and forgotten with their pod.
func TestTokenManagerRefresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	f := &fakeTokens{now: &now}
	tm := newTokenManager(f.request, zaptest.NewLogger(t))
	tm.now = func() time.Time { return now }
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid1"}}
	get := func(p *corev1.ServiceAccountTokenProjection) string {
		t.Helper()
		tok, err := tm.token(context.Background(), pod, p)
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		return tok
	}
	hour := &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(3600)), Audience: "vault"}
	steps := []struct {
		advance time.Duration
		fail    bool
		want    string
	}{
		{0, false, "ns/default#1"},
		{47 * time.Minute, false, "ns/default#1"}, // 78%: kept
		{2 * time.Minute, false, "ns/default#2"},  // 81.7%: refreshed
		{50 * time.Minute, true, "ns/default#2"},  // refresh fails, token not expired yet
		{11 * time.Minute, false, "ns/default#3"}, // expired: a new one
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		f.mu.Lock()
		f.fail = s.fail
		f.mu.Unlock()
		if got := get(hour); got != s.want {
			t.Fatalf("step %d: token %q, want %q", i, got, s.want)
		}
	}
	spec := f.specs[0]
	if len(spec.Audiences) != 1 || spec.Audiences[0] != "vault" || *spec.ExpirationSeconds != 3600 ||
		spec.BoundObjectRef == nil || spec.BoundObjectRef.Kind != "Pod" || spec.BoundObjectRef.Name != "p" || spec.BoundObjectRef.UID != "uid1" {
		t.Errorf("TokenRequest spec = %+v, want audience vault, 3600s, bound to pod p/uid1", spec)
	}

	// Long-lived tokens are refreshed after 24 hours.
	week := &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(7 * 24 * 3600))}
	first := get(week)
	now = now.Add(23 * time.Hour)
	if got := get(week); got != first {
		t.Errorf("a one-week token was refreshed after 23h")
	}
	now = now.Add(time.Hour + time.Second)
	if got := get(week); got == first {
		t.Errorf("a one-week token was not refreshed after 24h")
	}

	tm.forget(types.UID("uid1"))
	tm.mu.Lock()
	left := len(tm.tokens)
	tm.mu.Unlock()
	if left != 0 {
		t.Errorf("%d tokens kept after forget, want 0", left)
	}
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	if _, err := tm.token(context.Background(), pod, hour); err == nil {
		t.Error("token with a failing apiserver and nothing cached succeeded, want an error")
	}
}

// createTokenPod creates the service account "default" (no controller
// makes it here) and a pod using it.
func createTokenPod(ctx context.Context, t *testing.T, env *harness.Env, name string) *corev1.Pod {
	t.Helper()
	if _, err := client.For[*corev1.ServiceAccount](env.Client).Create(ctx, "default", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod, err := client.For[*corev1.Pod](env.Client).Create(ctx, "default", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// checkPodToken checks the token's claims name the pod, and that the
// apiserver authenticates it as the pod's service account.
func checkPodToken(t *testing.T, env *harness.Env, token string, pod *corev1.Pod) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
		K8s struct {
			Pod struct{ Name, UID string } `json:"pod"`
		} `json:"kubernetes.io"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "system:serviceaccount:default:default" || claims.K8s.Pod.Name != pod.Name || claims.K8s.Pod.UID != string(pod.UID) {
		t.Errorf("token claims %s, want the default service account bound to pod %s/%s", raw, pod.Name, pod.UID)
	}
	tc := env.AnonymousTLS(t) // the token alone
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "https://"+env.Server.Address+"/api/v1/namespaces/default/pods", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET pods with the projected token = %d, want 200", resp.StatusCode)
	}
}

// A projected serviceAccountToken is written as a file with the other
// sources, and swapped for a new token once the old one is due.
func TestProjectedServiceAccountToken(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("projected volumes need root (tmpfs)")
	}
	env := harness.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	apiPod := createTokenPod(ctx, t, env, "reader")
	root := t.TempDir()
	m := New(Config{RootDir: root, Client: env.Client, Logger: zaptest.NewLogger(t)})
	now := time.Now()
	var mu sync.Mutex
	m.tokens.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	t.Cleanup(func() {
		cancel()
		m.Wait()
		_ = unmountAll(root)
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default", UID: apiPod.UID},
		Spec: corev1.PodSpec{ServiceAccountName: "default", Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(600))}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			}},
		}}}},
	}
	m.RegisterPod(ctx, pod)
	vols, errs := m.SetUp(ctx, pod)
	if len(errs) > 0 {
		t.Fatalf("SetUp: %v", errs)
	}
	dir := vols["kube-api-access"].HostPath
	first := readFile(t, filepath.Join(dir, "token"))
	checkPodToken(t, env, first, pod)
	if got := readFile(t, filepath.Join(dir, "namespace")); got != "default" {
		t.Errorf("namespace = %q, want default", got)
	}
	if target, err := os.Readlink(filepath.Join(dir, "token")); err != nil || target != "..data/token" {
		t.Errorf("token is %q, %v; want a link to ..data/token", target, err)
	}

	// Within 80% of the lifetime the token stays; past it a new one is
	// swapped in.
	for _, step := range []struct {
		advance time.Duration
		same    bool
	}{{7 * time.Minute, true}, {2*time.Minute + 30*time.Second, false}} {
		mu.Lock()
		now = now.Add(step.advance)
		mu.Unlock()
		if _, errs := m.SetUp(ctx, pod); len(errs) > 0 {
			t.Fatalf("SetUp: %v", errs)
		}
		got := readFile(t, filepath.Join(dir, "token"))
		if (got == first) != step.same {
			t.Fatalf("after %v more: token unchanged %v, want %v", step.advance, got == first, step.same)
		}
		if !step.same {
			checkPodToken(t, env, got, pod)
		}
	}
	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
}
