// Package credentials finds the registry credentials of an image in a pod's
// imagePullSecrets, as upstream's credentialprovider keyring: the entries of
// kubernetes.io/dockerconfigjson (and legacy kubernetes.io/dockercfg)
// Secrets are keyed by registry host and optional path, with globs in the
// host ("*.example.com"), and an image matches the entries whose host (same
// number of parts, same port) and path prefix match it, most specific
// first; Docker Hub images also match the index.docker.io entry.
package credentials

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Auth is one registry credential.
type Auth struct {
	Username      string
	Password      string
	IdentityToken string
}

// entry is an auths entry of a docker config file.
type entry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// configJSON is a .dockerconfigjson document.
type configJSON struct {
	Auths map[string]entry `json:"auths"`
}

// Keyring holds credentials by registry location.
type Keyring struct {
	index []string // keys, reverse-sorted so that longer paths match first
	creds map[string][]Auth
}

// FromSecrets builds the keyring of the pull secrets, in order. Secrets of
// other types are skipped; a malformed one is an error naming it.
func FromSecrets(secrets []*corev1.Secret) (*Keyring, error) {
	k := &Keyring{creds: map[string][]Auth{}}
	for _, s := range secrets {
		var auths map[string]entry
		switch {
		case s.Type == corev1.SecretTypeDockerConfigJson || (s.Type == "" && s.Data[corev1.DockerConfigJsonKey] != nil):
			var cfg configJSON
			if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
				return nil, fmt.Errorf("secret %s/%s: parse %s: %w", s.Namespace, s.Name, corev1.DockerConfigJsonKey, err)
			}
			auths = cfg.Auths
		case s.Type == corev1.SecretTypeDockercfg:
			if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
				return nil, fmt.Errorf("secret %s/%s: parse %s: %w", s.Namespace, s.Name, corev1.DockerConfigKey, err)
			}
		default:
			continue
		}
		if err := k.add(auths); err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return k, nil
}

// add inserts a docker config's auths, as upstream's BasicDockerKeyring.Add.
func (k *Keyring) add(auths map[string]entry) error {
	// Map order is random: add the locations sorted, so that credentials
	// of one location keep the order of the secrets.
	locs := make([]string, 0, len(auths))
	for loc := range auths {
		locs = append(locs, loc)
	}
	sort.Strings(locs)
	for _, loc := range locs {
		e := auths[loc]
		a := Auth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			user, pass, err := decodeAuth(e.Auth)
			if err != nil {
				return fmt.Errorf("auth of %q: %w", loc, err)
			}
			a.Username, a.Password = user, pass
		}
		value := loc
		if !strings.HasPrefix(value, "https://") && !strings.HasPrefix(value, "http://") {
			value = "https://" + value
		}
		parsed, err := url.Parse(value)
		if err != nil {
			// Upstream ignores an unparsable location.
			continue
		}
		// Docker treats /v1/ and /v2/ as the host itself.
		p := parsed.Path
		if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
			p = p[3:]
		}
		key := parsed.Host
		if p != "" && p != "/" {
			key = parsed.Host + p
		}
		if _, ok := k.creds[key]; !ok {
			k.index = append(k.index, key)
		}
		k.creds[key] = append(k.creds[key], a)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
	return nil
}

func decodeAuth(s string) (string, string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", err
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", fmt.Errorf("not user:password")
	}
	return user, pass, nil
}

// defaultRegistryHost is Docker Hub's key in docker configs.
const defaultRegistryHost = "index.docker.io"

// Lookup returns the credentials for image (a repository, "host/path",
// without tag or digest), most specific first; none when no entry
// matches.
func (k *Keyring) Lookup(image string) []Auth {
	if k == nil {
		return nil
	}
	var out []Auth
	for _, key := range k.index {
		if urlsMatch(key, image) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) > 0 {
		return out
	}
	if isDefaultRegistryMatch(image) {
		return k.creds[defaultRegistryHost]
	}
	return nil
}

// isDefaultRegistryMatch reports whether image is pulled from Docker Hub.
func isDefaultRegistryMatch(image string) bool {
	parts := strings.SplitN(image, "/", 2)
	if parts[0] == "" {
		return false
	}
	if len(parts) == 1 {
		return true
	}
	if parts[0] == "docker.io" || parts[0] == "index.docker.io" {
		return true
	}
	// Docker takes the first part for a registry when it has a "." or ":".
	return !strings.ContainsAny(parts[0], ".:")
}

// urlsMatch reports whether target matches glob, both schemeless: the same
// port, hosts of as many parts each matching the glob's, and the glob's
// path a prefix of the target's.
func urlsMatch(glob, target string) bool {
	g, err := url.Parse("https://" + glob)
	if err != nil {
		return false
	}
	t, err := url.Parse("https://" + target)
	if err != nil {
		return false
	}
	gParts, gPort := splitHost(g.Host)
	tParts, tPort := splitHost(t.Host)
	if gPort != tPort || len(gParts) != len(tParts) || !strings.HasPrefix(t.Path, g.Path) {
		return false
	}
	for i, p := range gParts {
		if ok, err := filepath.Match(p, tParts[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitHost(hostport string) ([]string, string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(host, "."), port
}
