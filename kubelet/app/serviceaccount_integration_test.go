package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// TestKubeletServiceAccountToken runs a pod with upstream's kube-api-access
// projection at /var/run/secrets/kubernetes.io/serviceaccount: the pod
// reads the token the kubelet requested for it and lists pods with it.
func TestKubeletServiceAccountToken(t *testing.T) {
	k := startTestKubelet(t, "kubelet-sa-token")
	t.Cleanup(func() { _ = k.server.Stop() })
	ctx := context.Background()
	if _, err := client.For[*corev1.ServiceAccount](k.env.Client).Create(ctx, "default", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	const dir = "/var/run/secrets/kubernetes.io/serviceaccount"
	pod := k.busyboxPod("token-reader", "exec sleep 3600", corev1.RestartPolicyAlways)
	pod.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: new(int32(0o644)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: new(int64(3607))}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access", MountPath: dir, ReadOnly: true}}
	if _, err := k.pods.Create(ctx, "default", pod); err != nil {
		t.Fatal(err)
	}
	id := k.runningID(t, "token-reader", "c", 90*time.Second)

	// The apiserver listens on the node's loopback; the pod reaches it
	// through a proxy on its bridge's address.
	addr := proxyFromBridge(t, k.env, k.bridge)
	podsURL := fmt.Sprintf("http://%s/api/v1/namespaces/$(cat %s/namespace)/pods", addr, dir)
	script := fmt.Sprintf(`wget -q -O - --header "Authorization: Bearer $(cat %s/token)" %s`, dir, podsURL)
	out, code := k.execOut(t, id, "sh", "-c", script)
	if code != 0 || !strings.Contains(out, `"kind":"PodList"`) || !strings.Contains(out, `"token-reader"`) {
		t.Fatalf("listing pods with the projected token from the pod: exit %d, %q; want a PodList with token-reader", code, out)
	}
	bad := fmt.Sprintf(`wget -q -O - --header "Authorization: Bearer $(cat %s/token)x" %s`, dir, podsURL)
	if out, code := k.execOut(t, id, "sh", "-c", fmt.Sprintf("wget -q -O - %s", podsURL)); code == 0 {
		t.Errorf("listing pods with no token succeeded: %q, want 401", out)
	}
	if out, code := k.execOut(t, id, "sh", "-c", bad); code == 0 {
		t.Errorf("listing pods with a damaged token succeeded: %q, want 401", out)
	}
}

// proxyFromBridge serves plain HTTP on the bridge's IPv4 address (the
// pods' gateway) and forwards each request, with its Authorization header
// and no client certificate, to the apiserver over TLS: busybox's wget
// cannot handshake with the apiserver's ECDSA certificate. It returns the
// address it listens on; it stops when the test ends.
func proxyFromBridge(t *testing.T, env *harness.Env, bridge string) string {
	t.Helper()
	var ip net.IP
	waitFor(t, "an IPv4 address on bridge "+bridge, 30*time.Second, func() (bool, error) {
		ifc, err := net.InterfaceByName(bridge)
		if err != nil {
			return false, err
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return false, err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				ip = n.IP
				return true, nil
			}
		}
		return false, fmt.Errorf("addresses %v", addrs)
	})
	tc := env.AnonymousTLS(t) // the pod's token alone authenticates
	target := &url.URL{Scheme: "https", Host: env.Server.Address}
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{TLSClientConfig: tc},
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return lis.Addr().String()
}
