//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const (
	guestbookNamespace = "guestbook"
	guestbookNodePort  = 30001
)

// guestbook is what the guestbook test leaves for the later ones.
type guestbook struct {
	entries []string // written and read back
}

// testGuestbook deploys deploy/examples/guestbook (images from the cluster's
// registry), writes an entry through the frontend's NodePort on every
// worker, reads all of them back through every worker, and checks that
// each redis replica holds them.
func testGuestbook(t *testing.T, c *cluster) *guestbook {
	manifest, err := os.ReadFile(filepath.Join(c.root, "deploy", "examples", "guestbook", "guestbook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(manifest), "127.0.0.1:5000/", c.registry+"/")
	if _, err := c.kubectl("get", "namespace", guestbookNamespace); err != nil {
		c.must(t, "create", "namespace", guestbookNamespace)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dump(t, guestbookNamespace)
		}
	})
	if _, err := c.kubectlStdin(yaml, "apply", "-n", guestbookNamespace, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"redis-master", "redis-replica", "frontend"} {
		waitFor(t, "deployment "+d+" rolled out", 5*time.Minute, func() (bool, string) {
			return c.deploymentComplete(guestbookNamespace, d)
		})
	}
	pods, err := c.pods(guestbookNamespace, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guestbook pods: %s", podSummary(pods))

	gb := &guestbook{}
	for _, n := range c.nodes {
		value := fmt.Sprintf("e2e-via-%s-%s", n.name, randSuffix())
		u := fmt.Sprintf("http://%s:%d/rpush", n.ip, guestbookNodePort)
		// Retried until the NodePort answers (kube-proxy syncs after the
		// endpoints appear); a retried write may land twice, which the
		// read-back tolerates.
		waitFor(t, "write "+value+" through "+u, 2*time.Minute, func() (bool, string) {
			resp, err := httpClient.PostForm(u, url.Values{"value": {value}})
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
		gb.entries = append(gb.entries, value)
	}
	for _, n := range c.nodes {
		u := fmt.Sprintf("http://%s:%d/get", n.ip, guestbookNodePort)
		waitFor(t, "every entry read back through "+u, 2*time.Minute, func() (bool, string) {
			return c.guestbookHas(u, gb.entries)
		})
	}

	// The frontend reads from the redis-replica Service; ask each replica
	// directly, from a pod, that it holds every entry.
	replicas, err := c.pods(guestbookNamespace, "role=replica")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("failed=0\n")
	for _, r := range replicas {
		fmt.Fprintf(&script, "ok=0; i=0; while [ $i -lt 30 ]; do out=$(printf 'LRANGE guestbook 0 -1\\r\\n' | nc -w 3 %s 6379 | tr -d '\\r'); ok=1;", r.Status.PodIP)
		for _, e := range gb.entries {
			fmt.Fprintf(&script, " echo \"$out\" | grep -qx '%s' || ok=0;", e)
		}
		fmt.Fprintf(&script, " [ $ok = 1 ] && break; i=$((i+1)); sleep 1; done\n")
		fmt.Fprintf(&script, "if [ $ok = 1 ]; then echo 'PASS replica %s'; else echo \"FAIL replica %s: $(echo $out)\"; failed=1; fi\n", r.Name, r.Name)
	}
	script.WriteString("exit $failed\n")
	logs := c.runToCompletion(t, guestbookNamespace, 3*time.Minute,
		c.shellPod("check-replicas-"+randSuffix(), "", nil, corev1.RestartPolicyNever, script.String()))
	checkPassLines(t, logs, len(replicas))
	return gb
}

// guestbookHas reports whether the guestbook at u lists every entry of want.
func (c *cluster) guestbookHas(u string, want []string) (bool, string) {
	body, err := httpGet(u)
	if err != nil {
		return false, err.Error()
	}
	var got []string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		return false, fmt.Sprintf("decode %q: %v", body, err)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false, fmt.Sprintf("%q lacks %q", got, w)
		}
	}
	return true, ""
}

// checkPassLines fails the test for every FAIL line of the pods' logs and
// unless there are want PASS lines in all.
func checkPassLines(t *testing.T, logs map[string]string, want int) {
	t.Helper()
	pass := 0
	for pod, out := range logs {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			switch {
			case strings.HasPrefix(line, "PASS "):
				pass++
				t.Logf("%s: %s", pod, line)
			case strings.HasPrefix(line, "FAIL "):
				t.Errorf("%s: %s", pod, line)
			}
		}
	}
	if pass != want {
		t.Errorf("%d checks passed, want %d; logs: %v", pass, want, logs)
	}
}
