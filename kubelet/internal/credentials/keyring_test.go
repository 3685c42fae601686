package credentials

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func dockerConfigJSON(name, doc string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(doc)},
	}
}

func TestLookup(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	secrets := []*corev1.Secret{
		dockerConfigJSON("a", `{"auths": {
			"registry.example.com:5000": {"auth": "`+auth+`"},
			"https://quay.io/v1/": {"username": "quay-host", "password": "p1"},
			"quay.io/team": {"username": "quay-team", "password": "p2"},
			"*.gcr.io": {"username": "glob", "password": "p3"},
			"index.docker.io": {"username": "hub", "password": "p4"}
		}}`),
		dockerConfigJSON("b", `{"auths": {"registry.example.com:5000": {"username": "bob", "password": "other"}}}`),
		{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"x": []byte("y")}},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"legacy.example.org": {"username": "old", "password": "p5"}}`)},
		},
	}
	k, err := FromSecrets(secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		image string
		want  []Auth
	}{
		// Both secrets' entries of one location, in the secrets' order.
		{"registry.example.com:5000/app/web", []Auth{{Username: "alice", Password: "s3cret"}, {Username: "bob", Password: "other"}}},
		// The port must match.
		{"registry.example.com/app/web", nil},
		// The longer path first, then the host's.
		{"quay.io/team/app", []Auth{{Username: "quay-team", Password: "p2"}, {Username: "quay-host", Password: "p1"}}},
		{"quay.io/other/app", []Auth{{Username: "quay-host", Password: "p1"}}},
		// A glob matches one part of the host.
		{"eu.gcr.io/project/app", []Auth{{Username: "glob", Password: "p3"}}},
		{"a.b.gcr.io/project/app", nil},
		// Docker Hub images match index.docker.io.
		{"docker.io/library/busybox", []Auth{{Username: "hub", Password: "p4"}}},
		{"coxswain/busybox", []Auth{{Username: "hub", Password: "p4"}}},
		{"legacy.example.org/x", []Auth{{Username: "old", Password: "p5"}}},
		{"elsewhere.example.net/x", nil},
	} {
		t.Run(tc.image, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, k.Lookup(tc.image)); diff != "" {
				t.Errorf("Lookup(%q) (-want +got):\n%s", tc.image, diff)
			}
		})
	}
}

func TestFromSecretsErrors(t *testing.T) {
	for name, s := range map[string]*corev1.Secret{
		"not json":   dockerConfigJSON("bad", `{`),
		"bad base64": dockerConfigJSON("bad", `{"auths": {"r.example.com": {"auth": "%%%"}}}`),
		"no colon":   dockerConfigJSON("bad", `{"auths": {"r.example.com": {"auth": "`+base64.StdEncoding.EncodeToString([]byte("nocolon"))+`"}}}`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := FromSecrets([]*corev1.Secret{s}); err == nil {
				t.Error("FromSecrets: no error")
			}
		})
	}
}
