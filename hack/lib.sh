# Shell helpers shared by hack/local-up.sh, hack/local-down.sh and
# hack/netns-cluster.sh (sourced, not run). The caller sets LOGS (folder of
# the components' logs) and PIDS (folder of their pid files).

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "error: $*"; exit 1; }

# install_packages: installs the Debian packages the clusters need when missing.
install_packages() {
	local pkgs=(containerd runc iptables containernetworking-plugins docker-registry iproute2 busybox-static conntrack make gcc)
	local missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
}

# alive PID: whether the process runs (exists and is not a zombie waiting
# for its parent to reap it).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "$state" != Z ]
}

# running NAME: whether the process recorded in PIDS/NAME is alive.
running() {
	[ -f "$PIDS/$1" ] && alive "$(cat "$PIDS/$1")"
}

# start NAME CMD...: runs CMD in the background, logging to logs/NAME.log
# (appended, so that a restarted component keeps its history).
start() {
	local name=$1
	shift
	if running "$name"; then
		log "$name already running (pid $(cat "$PIDS/$name"))"
		return
	fi
	"$@" >>"$LOGS/$name.log" 2>&1 &
	echo $! >"$PIDS/$name"
	log "started $name (pid $!)"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds or time runs out.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what (logs in $LOGS)"
		sleep 1
	done
}

# stop NAME [SIGNAL]: stops the process recorded in PIDS/NAME (SIGTERM, then
# SIGKILL after 15s; or SIGNAL at once) and removes the pid file.
stop() {
	local name=$1 sig=${2:-TERM} f=$PIDS/$1
	[ -f "$f" ] || return 0
	local pid
	pid=$(cat "$f")
	if alive "$pid"; then
		kill -s "$sig" "$pid" 2>/dev/null
		for _ in $(seq 1 30); do alive "$pid" || break; sleep 0.5; done
		alive "$pid" && kill -9 "$pid" 2>/dev/null
		log "stopped $name (pid $pid)"
	fi
	rm -f "$f"
}

# kill_containerd_tasks SOCKET: kills and removes every container of the
# kubelet's containerd namespace on SOCKET (their shims exit with them).
kill_containerd_tasks() {
	local sock=$1
	[ -S "$sock" ] && command -v ctr >/dev/null || return 0
	local ctr="ctr --address $sock -n coxswain"
	for t in $($ctr tasks ls -q 2>/dev/null); do $ctr tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
	for _ in $(seq 1 20); do [ -z "$($ctr tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"')" ] && break; sleep 0.5; done
	for t in $($ctr tasks ls -q 2>/dev/null); do $ctr tasks rm -f "$t" >/dev/null 2>&1; done
	for c in $($ctr containers ls -q 2>/dev/null); do $ctr containers rm "$c" >/dev/null 2>&1; done
}

# unmount_under DIR: lazily unmounts every mount below DIR, deepest first
# (network namespace files, container root filesystems).
unmount_under() {
	local m
	for m in $(awk -v p="$1" '$2 ~ "^"p {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
}

# Network namespaces as machines (hack/netns-cluster.sh, and hack/cluster-up's
# netns transport): a bridge on the host, one namespace per node with a veth
# into it. Nothing from the bridge may leave the machine.

# netns_bridge_up BRIDGE ADDR/PREFIX NET_CIDR CHAIN: bridge BRIDGE holding
# ADDR/PREFIX, and the iptables chain CHAIN, jumped to first from FORWARD,
# that drops whatever arrives from the bridge (whatever its source address)
# or comes from NET_CIDR and would be forwarded anywhere but back into the
# bridge. No host sysctl is changed and nothing is masqueraded.
netns_bridge_up() {
	local bridge=$1 addr=$2 cidr=$3 chain=$4 t
	ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
	ip addr replace "$addr" dev "$bridge"
	ip link set "$bridge" up
	for t in iptables ip6tables; do
		command -v $t >/dev/null || continue
		$t -N "$chain" 2>/dev/null || true
		$t -F "$chain"
		$t -A "$chain" -i "$bridge" ! -o "$bridge" -j DROP
		$t -C FORWARD -j "$chain" 2>/dev/null || $t -I FORWARD 1 -j "$chain"
	done
	iptables -A "$chain" -s "$cidr" ! -o "$bridge" -j DROP
}

# netns_bridge_down BRIDGE CHAIN: removes what netns_bridge_up made.
netns_bridge_down() {
	local bridge=$1 chain=$2 t
	ip link del "$bridge" 2>/dev/null && log "removed bridge $bridge"
	for t in iptables ip6tables; do
		command -v $t >/dev/null || continue
		while $t -D FORWARD -j "$chain" 2>/dev/null; do :; done
		if $t -S "$chain" >/dev/null 2>&1; then
			$t -F "$chain"
			$t -X "$chain"
			log "removed $t chain $chain"
		fi
	done
	return 0
}

# netns_node_up NS VETH BRIDGE ADDR/PREFIX GATEWAY: namespace NS (made when
# missing) with eth0 holding ADDR/PREFIX, the peer of VETH in BRIDGE, a
# default route via GATEWAY, and IPv4 forwarding on (the namespace's own
# sysctl, gone with it: nodes route their pods).
netns_node_up() {
	local ns=$1 veth=$2 bridge=$3 addr=$4 gw=$5
	ip netns list | awk '{print $1}' | grep -qx "$ns" || ip netns add "$ns"
	ip link show "$veth" >/dev/null 2>&1 || ip link add "$veth" type veth peer name eth0 netns "$ns"
	ip link set "$veth" master "$bridge" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr replace "$addr" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route replace default via "$gw" dev eth0
	nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1
}

# netns_node_down NS VETH: removes the namespace and its veth.
netns_node_down() {
	ip link del "$2" 2>/dev/null || true
	ip netns del "$1" 2>/dev/null && log "removed namespace $1"
	return 0
}

# netns_kill_processes WHAT FILE...: kills (SIGKILL, by pid) every process
# whose network namespace is one of the namespace files FILE (a node's
# /run/netns entry, its pods' namespace bind mounts): what a containerd that
# died before its tasks leaves behind. WHAT names the node in the log.
netns_kill_processes() {
	local what=$1 f inode p ns
	shift
	local inodes=()
	for f in "$@"; do
		[ "$(stat -f -c %T "$f" 2>/dev/null)" = nsfs ] || continue
		inode=$(stat -L -c %i "$f" 2>/dev/null) || continue
		inodes+=("net:[$inode]")
	done
	[ ${#inodes[@]} -gt 0 ] || return 0
	for p in /proc/[0-9]*; do
		ns=$(readlink "$p/ns/net" 2>/dev/null) || continue
		for inode in "${inodes[@]}"; do
			if [ "$ns" = "$inode" ]; then
				kill -9 "${p#/proc/}" 2>/dev/null && log "killed leftover pid ${p#/proc/} ($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-60)) of $what"
				break
			fi
		done
	done
}
