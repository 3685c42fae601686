//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster of testdata/cluster-up-ha.ini (TestClusterUpThreeMasters):
// three masters, each with an etcd member, and one worker.
var cuThreeMasters = cuSpec{
	name:      "e2e-ha",
	inventory: "testdata/cluster-up-ha.ini",
	nsPrefix:  "cxsha-",
	bridge:    "cxsha0",
	chain:     "COXSWAIN-CXSHA0",
	state:     "e2e-ha",
	binDir:    "e2e-ha-bin",
	nodes: map[string][]string{
		"master-1": {"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"},
		"master-2": {"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"},
		"master-3": {"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"},
		"worker-1": {"containerd", "kubelet", "kube-proxy"},
	},
}

var (
	haMasters = []string{"master-1", "master-2", "master-3"}
	haAddr    = map[string]string{"master-1": "10.202.0.10", "master-2": "10.202.0.11", "master-3": "10.202.0.12", "worker-1": "10.202.0.21"}
)

// TestClusterUpThreeMasters brings a three-master, one-worker cluster up
// with hack/cluster-up over the netns transport: an etcd cluster (Debian's
// etcd-server, one member per master, peers over TLS), an apiserver,
// scheduler and controller-manager on every master. It checks that every
// component (etcd too) sent READY=1, that the etcd cluster has three
// healthy members that agree on one leader, that every apiserver answers
// /readyz, that exactly one scheduler and one controller-manager hold
// their leader Leases, that the worker is Ready and a scheduled pod runs
// on it, that a second cluster-up changes nothing; then it makes master-3's
// member the etcd leader, stops master-3's etcd and apiserver (SIGTERM to
// the pids cluster-up recorded), and checks that the other two members
// elect a leader and the cluster still takes writes through both other
// masters' apiservers (and runs a new pod),
// that a third cluster-up starts exactly those two again and the member
// rejoins, and that cluster-down leaves nothing behind.
func TestClusterUpThreeMasters(t *testing.T) {
	began := time.Now()
	if _, err := exec.LookPath("etcdctl"); err != nil && os.Getenv("E2E_CLUSTER_UP") != "" {
		t.Fatal("etcdctl is not on PATH: apt-get install etcd-client (make e2e-cluster-up does)")
	}
	r := startClusterUp(t, cuThreeMasters)
	c := r.c
	t.Logf("cluster-up brought 3 masters and 1 worker up in %v", time.Since(began).Round(time.Second))

	t.Run("EveryComponentNotifiedReady", r.everyComponentNotifiedReady)

	var etcdLeader string
	t.Run("EtcdClusterHealthy", func(t *testing.T) {
		etcdLeader = r.waitEtcd(t, haMasters, nil)
	})

	t.Run("EveryApiserverReady", func(t *testing.T) {
		for _, m := range haMasters {
			out, err := c.kubectl("--server", "https://"+haAddr[m]+":6443", "get", "--raw", "/readyz")
			if err != nil || strings.TrimSpace(out) != "ok" {
				t.Errorf("%s: /readyz = %q, %v", m, out, err)
			} else {
				t.Logf("%s: kube-apiserver /readyz ok", m)
			}
		}
	})

	t.Run("TokensSharedByMasters", func(t *testing.T) {
		// One service-account key for all masters: a token issued through
		// master-1 authenticates at every apiserver (without a client
		// certificate; the kubeconfig is left out).
		var token string
		waitFor(t, "a token of default/default issued through master-1", 2*time.Minute, func() (bool, string) {
			out, err := c.kubectl("--server", "https://"+haAddr["master-1"]+":6443", "-n", "default", "create", "token", "default")
			if err != nil {
				return false, err.Error()
			}
			token = strings.TrimSpace(out)
			return token != "", "empty token"
		})
		for _, m := range []string{"master-1", "master-2", "master-3"} {
			for _, tc := range []struct {
				token string
				ok    bool
			}{{token, true}, {token + "x", false}} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", "/dev/null", "--server", "https://"+haAddr[m]+":6443",
					"--insecure-skip-tls-verify", "--token", tc.token, "get", "--raw", "/api/v1/namespaces/default/serviceaccounts/default").CombinedOutput()
				cancel()
				if ok := err == nil && strings.Contains(string(out), `"name":"default"`); ok != tc.ok {
					t.Errorf("%s with a token (valid %v): %v %s", m, tc.ok, err, out)
				}
			}
		}
	})

	t.Run("OneLeaderEach", func(t *testing.T) {
		for _, comp := range []string{"kube-scheduler", "kube-controller-manager"} {
			waitFor(t, "one "+comp+" leading, the other two waiting", 2*time.Minute, func() (bool, string) {
				return r.oneLeader(c, comp)
			})
		}
	})

	t.Run("WorkerReadyAndPodRuns", func(t *testing.T) {
		waitFor(t, "worker-1 Ready", 3*time.Minute, func() (bool, string) {
			var n corev1.Node
			if err := c.getJSON(&n, "get", "node", "worker-1"); err != nil {
				return false, err.Error()
			}
			return nodeReady(&n), fmt.Sprintf("Ready=%s", nodeReadyStatus(&n))
		})
		t.Log(c.must(t, "get", "nodes", "-o", "wide"))
		ns := c.namespace(t, "cluster-up-ha")
		r.runPod(t, ns, "sleeper")
	})
	if t.Failed() {
		return
	}

	t.Run("SecondRunChangesNothing", r.secondRunChangesNothing)

	// The victim: master-3, never master-1 (the workers' apiserver: the
	// inventory has no load balancer). Its member is made the etcd leader
	// first, so that losing it makes the other two elect a new one.
	const victim = "master-3"
	survivors := []string{"master-1", "master-2"}

	// Created here, not in the subtest: its ConfigMaps must outlive it.
	degraded := c.namespace(t, "cluster-up-ha-degraded")
	t.Run("SurvivesLosingAMaster", func(t *testing.T) {
		if etcdLeader != victim {
			id := r.etcdMemberID(t, victim)
			if out, err := r.etcdctl(etcdLeader, "move-leader", id); err != nil {
				t.Fatal(err)
			} else {
				t.Log(strings.TrimSpace(out))
			}
			etcdLeader = r.waitEtcd(t, haMasters, nil)
			if etcdLeader != victim {
				t.Fatalf("etcd leader is %s after move-leader to %s", etcdLeader, victim)
			}
		}
		t.Logf("stopping etcd and kube-apiserver of %s (etcd leader: %s)", victim, etcdLeader)
		pids := componentPids(t, r.state, r.spec.nodes)
		for _, comp := range []string{"kube-apiserver", "etcd"} {
			key := victim + "/" + comp
			if err := checkProcess(pids[key], r.state, r.spec.nsPrefix, key); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			pid, _ := strconv.Atoi(pids[key])
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				t.Fatalf("kill %s (pid %d): %v", key, pid, err)
			}
			waitFor(t, key+" (pid "+pids[key]+") to exit", time.Minute, func() (bool, string) {
				return !processAlive(pid), "still running"
			})
		}
		if err := r.listeners[victim+"/kube-apiserver"].waitFor(sdStopping, time.Minute); err != nil {
			t.Errorf("%s/kube-apiserver: %v", victim, err)
		}
		if out, err := c.kubectl("--server", "https://"+haAddr[victim]+":6443", "--request-timeout", "3s", "get", "--raw", "/readyz"); err == nil {
			t.Errorf("%s's apiserver still answers /readyz after it was stopped: %q", victim, out)
		}
		leader := r.waitEtcd(t, survivors, []string{victim})
		t.Logf("etcd: %v healthy, leader %s; %s down", survivors, leader, victim)

		// Writes through each surviving apiserver, read back through the other.
		ns := degraded
		for i, m := range survivors {
			other := survivors[1-i]
			name := "written-via-" + m
			waitFor(t, "a ConfigMap written through "+m, time.Minute, func() (bool, string) {
				out, err := c.kubectl("--server", "https://"+haAddr[m]+":6443", "-n", ns, "create", "configmap", name, "--from-literal=via="+m)
				if err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
					return false, err.Error()
				}
				return true, out
			})
			var cm corev1.ConfigMap
			if err := c.getJSON(&cm, "--server", "https://"+haAddr[other]+":6443", "-n", ns, "get", "configmap", name); err != nil {
				t.Errorf("reading %s back through %s: %v", name, other, err)
			} else if cm.Data["via"] != m {
				t.Errorf("%s read through %s holds %v", name, other, cm.Data)
			} else {
				t.Logf("ConfigMap %s written through %s, read back through %s", name, m, other)
			}
		}
		// The whole path still works: the pod is scheduled, the controllers
		// and the kubelet go on.
		r.runPod(t, ns, "after-losing-"+victim)
		for _, comp := range []string{"kube-scheduler", "kube-controller-manager"} {
			if ok, detail := r.leaseHeld(c, comp); !ok {
				t.Errorf("%s: %s", comp, detail)
			}
		}
	})

	t.Run("ThirdRunRestoresIt", func(t *testing.T) {
		out := r.up(t, 10*time.Minute)
		for _, comp := range []string{"etcd", "kube-apiserver"} {
			if !strings.Contains(out, victim+": starting "+comp) {
				t.Errorf("third cluster-up did not start %s's %s again", victim, comp)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if (strings.Contains(line, ": starting ") || strings.Contains(line, "restarting ")) && !strings.Contains(line, " "+victim+": ") {
				t.Errorf("third cluster-up touched a healthy component: %q", line)
			}
		}
		for _, comp := range []string{"etcd", "kube-apiserver"} {
			if err := r.listeners[victim+"/"+comp].waitFor(sdReady, 2*time.Minute); err != nil {
				t.Errorf("%s/%s after the restart: %v", victim, comp, err)
			}
		}
		r.waitEtcd(t, haMasters, nil)
		if out, err := c.kubectl("--server", "https://"+haAddr[victim]+":6443", "get", "--raw", "/readyz"); err != nil {
			t.Errorf("%s: /readyz after the restart: %q, %v", victim, out, err)
		}
		// What was written while the member was down is on it now: in its
		// own copy of the data (a serializable read answers from the local
		// member) and through the restarted apiserver.
		for _, m := range survivors {
			name := "written-via-" + m
			key := "/registry/core/configmaps/" + degraded + "/" + name
			waitFor(t, victim+"'s etcd member to hold "+key, time.Minute, func() (bool, string) {
				out, err := r.etcdctl(victim, "get", "--consistency=s", "--keys-only", key)
				return err == nil && strings.TrimSpace(out) == key, fmt.Sprintf("%q %v", out, err)
			})
			var cm corev1.ConfigMap
			if err := c.getJSON(&cm, "--server", "https://"+haAddr[victim]+":6443", "-n", degraded, "get", "configmap", name); err != nil {
				t.Errorf("reading %s through %s: %v", name, victim, err)
			} else if cm.Data["via"] != m {
				t.Errorf("%s read through %s holds %v", name, victim, cm.Data)
			}
		}
		t.Logf("%s rejoined: its member and apiserver have the %d ConfigMaps written while it was down", victim, len(survivors))
	})

	t.Run("DownLeavesNothing", r.downLeavesNothing)
	t.Logf("TestClusterUpThreeMasters took %v", time.Since(began).Round(time.Second))
}

// runPod runs a busybox pod (scheduled, no nodeName) in ns and waits until
// it runs on worker-1 and its log shows it started.
func (r *cuRun) runPod(t *testing.T, ns, name string) {
	t.Helper()
	c := r.c
	c.apply(t, ns, &corev1.Pod{
		TypeMeta:   typeMeta("Pod", "v1"),
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "c", Image: "coxswain/busybox:latest", ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", "echo hello from $(hostname); exec sleep 3600"},
			}},
		},
	})
	waitFor(t, "pod "+name+" Running and Ready on worker-1", 3*time.Minute, func() (bool, string) {
		var p corev1.Pod
		if err := c.getJSON(&p, "-n", ns, "get", "pod", name); err != nil {
			return false, err.Error()
		}
		return podReady(&p) && p.Spec.NodeName == "worker-1", podSummary([]corev1.Pod{p})
	})
	if got := c.must(t, "-n", ns, "logs", name); !strings.Contains(got, "hello from "+name) {
		t.Errorf("kubectl logs %s = %q, want the greeting", name, got)
	}
	t.Logf("pod %s runs on worker-1", name)
}

// etcdctl runs etcdctl in master's namespace against its member's client
// URL on that namespace's loopback.
func (r *cuRun) etcdctl(master string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"--net=/run/netns/" + r.spec.nsPrefix + master, "etcdctl",
		"--endpoints=http://127.0.0.1:2379", "--dial-timeout=3s", "--command-timeout=5s"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: etcdctl %s: %w: %s", master, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// etcdMemberID returns the member ID (hex, as etcdctl takes it) of the
// member named name.
func (r *cuRun) etcdMemberID(t *testing.T, name string) string {
	t.Helper()
	out, err := r.etcdctl("master-1", "member", "list", "-w", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ml etcdMembers
	if err := json.Unmarshal([]byte(out), &ml); err != nil {
		t.Fatalf("member list: %v: %s", err, out)
	}
	for _, m := range ml.Members {
		if m.Name == name {
			return strconv.FormatUint(m.ID, 16)
		}
	}
	t.Fatalf("no etcd member %s in %s", name, out)
	return ""
}

type etcdStatus struct {
	Endpoint string
	Status   struct {
		Header struct {
			ClusterID uint64 `json:"cluster_id"`
			MemberID  uint64 `json:"member_id"`
		} `json:"header"`
		Version string `json:"version"`
		Leader  uint64 `json:"leader"`
	}
}

type etcdMembers struct {
	Members []struct {
		ID         uint64   `json:"ID"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peerURLs"`
		ClientURLs []string `json:"clientURLs"`
	} `json:"members"`
}

// waitEtcd waits until the etcd cluster has its three members (peers over
// https on the masters' addresses), the members on up are healthy and
// agree on a leader among them, and those on down do not answer; it
// returns the leader's name.
func (r *cuRun) waitEtcd(t *testing.T, up, down []string) string {
	t.Helper()
	var leader string
	var summary []string
	waitFor(t, fmt.Sprintf("etcd members %v healthy with one leader, %v down", up, down), 2*time.Minute, func() (bool, string) {
		summary = nil
		out, err := r.etcdctl(up[0], "member", "list", "-w", "json")
		if err != nil {
			return false, err.Error()
		}
		var ml etcdMembers
		if err := json.Unmarshal([]byte(out), &ml); err != nil {
			return false, fmt.Sprintf("member list: %v: %s", err, out)
		}
		names := map[uint64]string{}
		for _, m := range ml.Members {
			want := "https://" + haAddr[m.Name] + ":2380"
			if len(m.PeerURLs) != 1 || m.PeerURLs[0] != want {
				return false, fmt.Sprintf("member %q has peer URLs %v, want [%s]", m.Name, m.PeerURLs, want)
			}
			names[m.ID] = m.Name
		}
		if len(names) != len(haMasters) {
			return false, fmt.Sprintf("%d members: %v", len(names), names)
		}
		var cluster, lead uint64
		for _, m := range up {
			if _, err := r.etcdctl(m, "endpoint", "health"); err != nil {
				return false, err.Error()
			}
			out, err := r.etcdctl(m, "endpoint", "status", "-w", "json")
			if err != nil {
				return false, err.Error()
			}
			var st []etcdStatus
			if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 {
				return false, fmt.Sprintf("endpoint status of %s: %v: %s", m, err, out)
			}
			s := st[0].Status
			if names[s.Header.MemberID] != m {
				return false, fmt.Sprintf("the member on %s is %q", m, names[s.Header.MemberID])
			}
			if cluster != 0 && s.Header.ClusterID != cluster {
				return false, fmt.Sprintf("%s is in cluster %x, not %x", m, s.Header.ClusterID, cluster)
			}
			if lead != 0 && s.Leader != lead {
				return false, fmt.Sprintf("%s sees leader %s, another member %s", m, names[s.Leader], names[lead])
			}
			cluster, lead = s.Header.ClusterID, s.Leader
			summary = append(summary, fmt.Sprintf("%s: healthy, etcd %s, leader %s", m, s.Version, names[s.Leader]))
		}
		leader = names[lead]
		found := false
		for _, m := range up {
			found = found || m == leader
		}
		if !found {
			return false, fmt.Sprintf("leader %q is not among %v", leader, up)
		}
		for _, m := range down {
			if _, err := r.etcdctl(m, "endpoint", "health"); err == nil {
				return false, m + "'s member still answers"
			}
			summary = append(summary, m+": down")
		}
		return true, ""
	})
	for _, s := range summary {
		t.Log(s)
	}
	return leader
}

// leaseHeld: the component's leader Lease in kube-system has a holder
// whose renewal is within its duration.
func (r *cuRun) leaseHeld(c *cluster, comp string) (bool, string) {
	var l coordinationv1.Lease
	if err := c.getJSON(&l, "-n", "kube-system", "get", "lease", comp); err != nil {
		return false, err.Error()
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false, fmt.Sprintf("lease %s has no holder: %+v", comp, l.Spec)
	}
	if age := time.Since(l.Spec.RenewTime.Time); age > time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second+5*time.Second {
		return false, fmt.Sprintf("lease %s held by %s, renewed %v ago", comp, *l.Spec.HolderIdentity, age.Round(time.Second))
	}
	return true, *l.Spec.HolderIdentity
}

// oneLeader: the component runs on every master as a candidate (each
// process logged its identity), the Lease is held by one of them, and
// exactly that one logged that it acquired the Lease. The logs are
// appended across runs: only each master's current process counts.
func (r *cuRun) oneLeader(c *cluster, comp string) (bool, string) {
	ok, holder := r.leaseHeld(c, comp)
	if !ok {
		return false, holder
	}
	lease := "kube-system/" + comp
	var holders, acquired []string
	for _, m := range haMasters {
		id, acq, err := leaderLog(filepath.Join(r.state, "logs", m, comp+".log"), lease)
		if err != nil {
			return false, err.Error()
		}
		if id == "" {
			return false, m + "'s " + comp + " has not stood for the lease yet"
		}
		if id == holder {
			holders = append(holders, m)
		}
		if acq {
			acquired = append(acquired, m)
		}
	}
	detail := fmt.Sprintf("lease %s held by %s (the %s of %v); acquired by %v of %v", lease, holder, comp, holders, acquired, haMasters)
	return len(holders) == 1 && len(acquired) == 1 && acquired[0] == holders[0], detail
}

// leaderLog reads a component's JSON log: the identity its latest process
// stood for the lease with, and whether that process acquired it.
func leaderLog(path, lease string) (id string, acquired bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `"logger":"leaderelection"`) {
			continue
		}
		var e struct {
			Msg      string `json:"msg"`
			Lease    string `json:"lease"`
			Identity string `json:"identity"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Lease != lease || e.Identity == "" {
			continue
		}
		if e.Identity != id {
			id, acquired = e.Identity, false
		}
		if e.Msg == "acquired leader lease" {
			acquired = true
		}
	}
	return id, acquired, nil
}
