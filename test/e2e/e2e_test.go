//go:build e2e

package e2e

import "testing"

// TestE2E runs the checks of issue 9 in order on the netns cluster; each is a
// subtest (go test -run 'TestE2E/PodNetworking' runs one). The kubelet and
// control plane tests kill components and start them again before they end.
func TestE2E(t *testing.T) {
	c := newCluster(t)
	for _, n := range c.nodes {
		t.Logf("node %s at %s", n.name, n.ip)
	}
	var gb *guestbook
	t.Run("Guestbook", func(t *testing.T) { gb = testGuestbook(t, c) })
	t.Run("PodNetworking", func(t *testing.T) { testPodNetworking(t, c) })
	t.Run("ReadinessGatesEndpoints", func(t *testing.T) { testReadinessGatesEndpoints(t, c) })
	t.Run("RollingUpdateDropsNoRequest", func(t *testing.T) { testRollingUpdate(t, c) })
	t.Run("KubeletKilled", func(t *testing.T) { testKubeletKilled(t, c) })
	t.Run("ControlPlaneKill9", func(t *testing.T) { testControlPlaneKill(t, c, gb) })
}
