# Steps of hack/local-up.sh, also used by hack/netns-cluster.sh (sourced after
# hack/lib.sh; they use the caller's OUT, BIN, LOGS, PIDS and REGISTRY).

CONTAINERD_SOCK=$OUT/containerd/containerd.sock
POD_CIDR_RANGE=10.244.0.0/16
BRIDGE=cxs0

# containerd_config DIR SOCKET [TOML...]: writes DIR/config.toml for a
# private containerd (root and state under DIR, its socket SOCKET); extra
# top-level TOML lines may follow.
containerd_config() {
	local dir=$1 sock=$2
	shift 2
	mkdir -p "$dir/root" "$dir/state"
	{
		cat <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
TOML
		[ $# -eq 0 ] || printf '%s\n' "$@"
		cat <<TOML
[grpc]
  address = "$sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
TOML
	} >"$dir/config.toml"
}

start_containerd() {
	containerd_config "$OUT/containerd" "$CONTAINERD_SOCK"
	start containerd /usr/bin/containerd --config "$OUT/containerd/config.toml"
	wait_for containerd 30 test -S "$CONTAINERD_SOCK"
}

start_registry() {
	mkdir -p "$OUT/registry"
	cat >"$OUT/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $OUT/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
YML
	start registry /usr/bin/docker-registry serve "$OUT/registry.yml"
	wait_for "the registry on $REGISTRY" 30 curl -sf "http://$REGISTRY/v2/"
}

# start_apiserver BIND_ADDRESS ETCD_PORT [FLAG...]: kube-apiserver with its
# embedded etcd in $OUT/apiserver; waits until it is ready and copies its
# admin kubeconfig to $OUT/admin.kubeconfig.
start_apiserver() {
	local addr=$1 etcd_port=$2
	shift 2
	start kube-apiserver "$BIN/kube-apiserver" --data-dir "$OUT/apiserver" --bind-address "$addr" \
		--secure-port 6443 --embedded-etcd-port "$etcd_port" --log-level info "$@"
	wait_for "kube-apiserver" 60 test -f "$OUT/apiserver/admin.kubeconfig"
	cp "$OUT/apiserver/admin.kubeconfig" "$OUT/admin.kubeconfig"
	wait_for "kube-apiserver /readyz" 60 kubectl --kubeconfig "$OUT/admin.kubeconfig" get --raw /readyz
}

# start_scheduler [FLAG...]
start_scheduler() {
	start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$OUT/apiserver/scheduler.kubeconfig" --log-level info "$@"
}

# start_controller_manager [FLAG...]
start_controller_manager() {
	start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$OUT/apiserver/controller-manager.kubeconfig" \
		--cluster-cidr "$POD_CIDR_RANGE" --node-cidr-mask-size 24 --log-level info "$@"
}

start_control_plane() {
	start_apiserver 127.0.0.1 2379
	start_scheduler
	start_controller_manager
}

# redis_binary is Debian's redis-server, which the redis-tools package ships
# as redis-check-rdb (redis picks its mode from the name it runs as);
# redis-tools starts no service, unlike redis-server.
redis_binary() {
	if [ ! -x /usr/bin/redis-check-rdb ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-tools >/dev/null ||
			{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-tools >/dev/null; }
	fi
	echo /usr/bin/redis-check-rdb
}

push_images() {
	log "building and pushing images to $REGISTRY"
	mkdir -p "$OUT/images"
	"$ROOT/hack/images" --out "$OUT/images" --push "$REGISTRY" --redis "$(redis_binary)" >"$LOGS/images.log" 2>&1 ||
		die "building the images failed: see $LOGS/images.log"
}

start_node() {
	# Pods may talk to each other, to Services and to this machine, never
	# beyond it: forwarded traffic from the pod range that is not for the
	# bridge is dropped (no route or masquerade out of the real interface).
	iptables -N COXSWAIN-LOCAL-ONLY 2>/dev/null || true
	iptables -F COXSWAIN-LOCAL-ONLY
	iptables -A COXSWAIN-LOCAL-ONLY -s "$POD_CIDR_RANGE" ! -o "$BRIDGE" -j DROP
	iptables -C FORWARD -j COXSWAIN-LOCAL-ONLY 2>/dev/null || iptables -I FORWARD -j COXSWAIN-LOCAL-ONLY
	# NodePorts on 127.0.0.1 need DNAT of loopback traffic (as upstream's
	# localhost NodePorts); make down restores the setting.
	[ -f "$OUT/route_localnet" ] || sysctl -n net.ipv4.conf.all.route_localnet >"$OUT/route_localnet"
	sysctl -qw net.ipv4.conf.all.route_localnet=1
	cp "$OUT/apiserver/kubelet.kubeconfig" "$OUT/kubelet.kubeconfig"
	mkdir -p "$OUT/kubelet" "$OUT/cni" "$OUT/pod-logs"
	start kubelet "$BIN/kubelet" --kubeconfig "$OUT/kubelet.kubeconfig" --hostname-override "$NODE" \
		--node-ip 127.0.0.1 --containerd-address "$CONTAINERD_SOCK" --root-dir "$OUT/kubelet" \
		--pod-log-dir "$OUT/pod-logs" --cni-bin-dir /usr/lib/cni --cni-conf-dir "$OUT/cni" --cni-bridge "$BRIDGE" \
		--image-airgap-dir "$OUT/images" --insecure-registry "$REGISTRY" \
		--pod-infra-image "$REGISTRY/coxswain/pause:latest" --cluster-dns 169.254.20.10 --healthz-port 10248 \
		--address 127.0.0.1 --port 10250
	start kube-proxy "$BIN/kube-proxy" --kubeconfig "$OUT/apiserver/kube-proxy.kubeconfig" --hostname-override "$NODE" \
		--cluster-cidr "$POD_CIDR_RANGE" --dns-bind 169.254.20.10
	wait_for "node $NODE Ready" 90 sh -c "kubectl --kubeconfig '$OUT/admin.kubeconfig' get node '$NODE' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True"
}

deploy_guestbook() {
	local k="kubectl --kubeconfig $OUT/admin.kubeconfig"
	$k apply -f "$ROOT/deploy/examples/guestbook/guestbook.yaml" >/dev/null
	log "waiting for the guestbook"
	wait_for "the guestbook deployments" 240 sh -c "$k rollout status deploy/redis-master --timeout=5s && $k rollout status deploy/redis-replica --timeout=5s && $k rollout status deploy/frontend --timeout=5s"
	wait_for "the guestbook frontend on 127.0.0.1:30001" 60 curl -sf http://127.0.0.1:30001/healthz
	echo
	echo "Coxswain is running: one node ($NODE), logs in $LOGS"
	echo "  export KUBECONFIG=$OUT/admin.kubeconfig"
	echo "  kubectl get pods -o wide"
	echo "Guestbook: http://127.0.0.1:30001/  (curl -d value=hello http://127.0.0.1:30001/rpush; curl http://127.0.0.1:30001/get)"
	echo "Images in the local registry $REGISTRY: coxswain/pause coxswain/busybox coxswain/redis coxswain/guestbook"
	echo "Stop everything with: make down"
}
