package volume

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/pkg/client"
)

// Token refresh, upstream's kubelet token manager: a token is requested
// again once 80% of its lifetime has passed or it is 24 hours old, each
// less a jitter of up to 10 seconds.
const (
	tokenMaxTTL    = 24 * time.Hour
	tokenMaxJitter = 10 * time.Second
)

// tokenRequester issues a service-account token (serviceaccounts/token).
type tokenRequester func(ctx context.Context, namespace, serviceAccount string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)

// apiTokenRequester requests tokens through the API's gRPC service.
func apiTokenRequester(c *client.Client) tokenRequester {
	gvr := corev1.SchemeGroupVersion.WithResource("serviceaccounts")
	return func(ctx context.Context, ns, sa string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
		if c == nil {
			return nil, fmt.Errorf("no API client to request a token for service account %s/%s", ns, sa)
		}
		obj, err := c.CreateSubresource(ctx, gvr, ns, sa, "token", tr, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		out, ok := obj.(*authenticationv1.TokenRequest)
		if !ok {
			return nil, fmt.Errorf("serviceaccounts/token returned a %T", obj)
		}
		return out, nil
	}
}

type tokenKey struct {
	namespace, serviceAccount, audience string
	expirationSeconds                   int64
	podName                             string
	podUID                              types.UID
}

// tokenManager caches the tokens of pods' serviceAccountToken projections
// and requests new ones when they are due for refresh.
type tokenManager struct {
	request tokenRequester
	now     func() time.Time
	logger  *zap.Logger

	mu     sync.Mutex
	tokens map[tokenKey]*authenticationv1.TokenRequest
}

func newTokenManager(request tokenRequester, logger *zap.Logger) *tokenManager {
	return &tokenManager{request: request, now: time.Now, logger: logger, tokens: map[tokenKey]*authenticationv1.TokenRequest{}}
}

// token returns the pod's token for the projection: the cached one while
// it is fresh, else a new one. When a refresh fails, a cached token that
// has not expired is still returned.
func (tm *tokenManager) token(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3600)
	if p.ExpirationSeconds != nil {
		exp = *p.ExpirationSeconds
	}
	key := tokenKey{namespace: pod.Namespace, serviceAccount: sa, audience: p.Audience, expirationSeconds: exp, podName: pod.Name, podUID: pod.UID}
	tm.mu.Lock()
	cached := tm.tokens[key]
	tm.mu.Unlock()
	if cached != nil && !tm.requiresRefresh(cached) {
		return cached.Status.Token, nil
	}

	var auds []string
	if p.Audience != "" {
		auds = []string{p.Audience}
	}
	tr, err := tm.request(ctx, pod.Namespace, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         auds,
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}})
	if err != nil {
		if cached != nil && tm.now().Before(cached.Status.ExpirationTimestamp.Time) {
			tm.logger.Warn("token refresh failed, keeping the current token", zap.String("pod", pod.Namespace+"/"+pod.Name),
				zap.String("serviceAccount", sa), zap.Time("expires", cached.Status.ExpirationTimestamp.Time), zap.Error(err))
			return cached.Status.Token, nil
		}
		return "", fmt.Errorf("request token for service account %q: %w", sa, err)
	}
	if tr.Spec.ExpirationSeconds == nil {
		tr.Spec.ExpirationSeconds = &exp
	}
	tm.mu.Lock()
	tm.tokens[key] = tr
	tm.mu.Unlock()
	return tr.Status.Token, nil
}

// requiresRefresh is upstream's: 80% of the lifetime (less a jitter) has
// passed, or the token is older than 24 hours.
func (tm *tokenManager) requiresRefresh(tr *authenticationv1.TokenRequest) bool {
	now := tm.now()
	exp := tr.Status.ExpirationTimestamp.Time
	ttl := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	iat := exp.Add(-ttl)
	jitter := time.Duration(rand.Int64N(int64(tokenMaxJitter)))
	if now.After(iat.Add(tokenMaxTTL - jitter)) {
		return true
	}
	return now.After(exp.Add(-ttl/5 - jitter))
}

// forget drops the tokens of a pod.
func (tm *tokenManager) forget(uid types.UID) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	for k := range tm.tokens {
		if k.podUID == uid {
			delete(tm.tokens, k)
		}
	}
}
