//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// webScript serves "$VERSION <hostname>" and, on SIGTERM, keeps serving for
// 5 more seconds before it stops httpd: the stand-in for a preStop sleep,
// so that kube-proxy on every node drops the endpoint before the server
// goes away (as upstream's graceful rollouts need).
const webScript = `mkdir -p /www
echo "$VERSION $(hostname)" >/www/index.html
httpd -f -p 8080 -h /www &
pid=$!
trap 'sleep 5; kill $pid' TERM
wait $pid
wait $pid
`

// loadResult is what the request loop saw.
type loadResult struct {
	mu       sync.Mutex
	total    int
	byPrefix map[string]int // responses by their first word (the version)
	failures []string
}

func (r *loadResult) snapshot() (total int, by map[string]int, failures []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	by = map[string]int{}
	for k, v := range r.byPrefix {
		by[k] = v
	}
	return r.total, by, append([]string(nil), r.failures...)
}

// requestLoop sends one GET every interval, round-robin over urls, each on a
// new connection, until stop is closed or max requests were sent.
func requestLoop(urls []string, interval time.Duration, max int, stop <-chan struct{}) (*loadResult, <-chan struct{}) {
	r := &loadResult{byPrefix: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for i := 0; i < max; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			u := urls[i%len(urls)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				body, err := httpGet(u)
				r.mu.Lock()
				defer r.mu.Unlock()
				r.total++
				if err != nil {
					r.failures = append(r.failures, fmt.Sprintf("%s %s after %v: %v", start.Format("15:04:05.000"), u, time.Since(start).Round(time.Millisecond), err))
					return
				}
				r.byPrefix[strings.Fields(body + " ?")[0]]++
			}()
		}
	}()
	return r, done
}

// testRollingUpdate rolls a 3-replica Deployment (maxUnavailable 0) from v1
// to v2 while a steady loop of 10 requests a second goes through its
// NodePort on every worker, and expects every request to succeed.
func testRollingUpdate(t *testing.T, c *cluster) {
	ns := c.namespace(t, "e2e-rollout")
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		TypeMeta:   typeMeta("Deployment", "apps/v1"),
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge: ptr(intstr.FromInt32(1)), MaxUnavailable: ptr(intstr.FromInt32(0)),
				},
			},
			MinReadySeconds: 2,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(30)),
					Containers: []corev1.Container{{
						Name:    "web",
						Image:   c.busybox(),
						Command: []string{"sh", "-c", webScript},
						Env:     []corev1.EnvVar{{Name: "VERSION", Value: "v1"}},
						Ports:   []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   typeMeta("Service", "v1"),
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	c.apply(t, ns, d, svc)
	waitFor(t, "deployment web (v1) rolled out", 5*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "web") })
	if err := c.getJSON(svc, "get", "service", "-n", ns, "web"); err != nil {
		t.Fatal(err)
	}
	nodePort := svc.Spec.Ports[0].NodePort
	var urls []string
	for _, n := range c.nodes {
		u := fmt.Sprintf("http://%s:%d/", n.ip, nodePort)
		urls = append(urls, u)
		waitFor(t, "v1 served through "+u, 2*time.Minute, func() (bool, string) {
			body, err := httpGet(u)
			return err == nil && strings.HasPrefix(body, "v1 "), fmt.Sprint(body, err)
		})
	}

	// 10 requests a second, at most 6,000 (10 minutes).
	stop := make(chan struct{})
	res, done := requestLoop(urls, 100*time.Millisecond, 6000, stop)
	stopped := false
	stopLoop := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-done
		}
	}
	defer stopLoop()
	waitFor(t, "the request loop answered by v1", time.Minute, func() (bool, string) {
		total, by, _ := res.snapshot()
		return by["v1"] >= 20, fmt.Sprintf("%d requests: %v", total, by)
	})

	c.must(t, "set", "env", "-n", ns, "deployment/web", "VERSION=v2")
	waitFor(t, "deployment web (v2) rolled out", 8*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "web") })
	waitFor(t, "the old pods gone", 3*time.Minute, func() (bool, string) {
		pods, err := c.pods(ns, "app=web")
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Spec.Containers[0].Env[0].Value != "v2" {
				return false, podSummary(pods)
			}
		}
		return len(pods) == 3, podSummary(pods)
	})
	// Then only v2 answers: wait for 30 v2 answers after the old pods went.
	_, by0, _ := res.snapshot()
	waitFor(t, "30 more answers from v2", 2*time.Minute, func() (bool, string) {
		total, by, _ := res.snapshot()
		return by["v2"] >= by0["v2"]+30, fmt.Sprintf("%d requests: %v", total, by)
	})
	stopLoop()
	total, by, failures := res.snapshot()
	t.Logf("request loop: %d requests through %d NodePorts, answers by version %v, %d failed", total, len(urls), by, len(failures))
	for _, f := range failures {
		t.Errorf("request failed during the rollout: %s", f)
	}
	if by["v1"] == 0 || by["v2"] == 0 {
		t.Errorf("answers by version %v: want both v1 and v2", by)
	}
	if other := total - len(failures) - by["v1"] - by["v2"]; other != 0 {
		t.Errorf("%d answers were neither v1 nor v2: %v", other, by)
	}
}
