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
