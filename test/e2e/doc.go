// Package e2e is Coxswain's end-to-end suite: it drives a multi-node cluster
// in network namespaces (hack/netns-cluster.sh) with the real kubectl and
// checks what a user sees: the guestbook through its NodePort on every
// worker, pod-to-pod traffic across nodes by pod IP, ClusterIP and DNS name,
// a rolling update that drops no request, a killed kubelet's pods replaced
// on the other nodes, and a control plane killed with SIGKILL that comes
// back with nothing lost.
//
// The tests carry the build tag e2e, so `make test` and `go test ./...`
// skip them; `make e2e` brings the cluster up, runs them and tears it down:
//
//	make e2e
//
// or, against a cluster that is already up:
//
//	hack/netns-cluster.sh up 3
//	cd test/e2e && go test -tags e2e -count=1 -v -timeout 60m .
//	hack/netns-cluster.sh down
//
// E2E_KUBECONFIG (default _output/netns/admin.kubeconfig), E2E_CLUSTER_SCRIPT
// (default hack/netns-cluster.sh) and E2E_REGISTRY (default 10.200.0.1:5000)
// point it at another cluster.
package e2e
