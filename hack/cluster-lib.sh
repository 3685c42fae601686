# Shared by hack/cluster-up and hack/cluster-down (sourced after hack/lib.sh,
# with ROOT set): the inventory, the two transports, the PKI, the files each
# node gets, and the services on it. See hack/cluster-up for the inventory
# format and what the steps do.

UNITS=$ROOT/deploy/systemd
DEFAULT_DNS_IP=169.254.20.10

# ---------------------------------------------------------------- inventory

# parse_inventory FILE: reads the inventory into CFG_* (the [cluster]
# keys), MASTERS and WORKERS (node names in file order) and the per-node
# maps N_ADDR, N_ROLE, N_USER, N_KEY, N_PORT; then derives the rest.
parse_inventory() {
	local file=$1 section="" line key value lineno=0
	[ -f "$file" ] || die "no inventory at $file"
	INVENTORY=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
	INVENTORY_DIR=$(dirname "$INVENTORY")
	MASTERS=()
	WORKERS=()
	declare -gA N_ADDR=() N_ROLE=() N_USER=() N_KEY=() N_PORT=()
	CFG_name="" CFG_transport=ssh CFG_ssh_user=root CFG_ssh_key="" CFG_ssh_port=22
	CFG_cluster_cidr=10.244.0.0/16 CFG_service_cidr=10.96.0.0/12 CFG_node_cidr_mask_size=24
	CFG_apiserver="" CFG_bin_dir="" CFG_images_dir="" CFG_state_dir="" CFG_dns_upstream=""
	CFG_netns_bridge="" CFG_netns_gateway="" CFG_netns_prefix=""
	while IFS= read -r line || [ -n "$line" ]; do
		lineno=$((lineno + 1))
		line=${line%%#*}
		line=$(echo "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
		[ -n "$line" ] || continue
		if [[ $line =~ ^\[([a-z]+)\]$ ]]; then
			section=${BASH_REMATCH[1]}
			case $section in cluster | masters | workers) ;; *) die "$file:$lineno: unknown section [$section]" ;; esac
			continue
		fi
		case $section in
		cluster)
			[[ $line =~ ^([a-z_]+)[[:space:]]*=[[:space:]]*(.*)$ ]] || die "$file:$lineno: want key = value, got: $line"
			key=${BASH_REMATCH[1]}
			value=${BASH_REMATCH[2]}
			case $key in
			name | transport | ssh_user | ssh_key | ssh_port | cluster_cidr | service_cidr | node_cidr_mask_size | apiserver | bin_dir | images_dir | state_dir | dns_upstream | netns_bridge | netns_gateway | netns_prefix)
				printf -v "CFG_$key" '%s' "$value"
				;;
			*) die "$file:$lineno: unknown key $key" ;;
			esac
			;;
		masters | workers)
			# shellcheck disable=SC2086
			set -- $line
			local name=$1 addr=${2:-}
			[[ $name =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || die "$file:$lineno: node name $name is not a DNS label"
			[ -z "${N_ROLE[$name]:-}" ] || die "$file:$lineno: node $name listed twice"
			valid_ipv4 "$addr" || die "$file:$lineno: node $name needs an IPv4 address, got '${addr}'"
			N_ROLE[$name]=${section%s}
			N_ADDR[$name]=$addr
			shift 2
			local kv
			for kv in "$@"; do
				case $kv in
				ssh_user=*) N_USER[$name]=${kv#*=} ;;
				ssh_key=*) N_KEY[$name]=${kv#*=} ;;
				ssh_port=*) N_PORT[$name]=${kv#*=} ;;
				*) die "$file:$lineno: unknown node setting $kv (ssh_user=, ssh_key=, ssh_port=)" ;;
				esac
			done
			if [ "$section" = masters ]; then MASTERS+=("$name"); else WORKERS+=("$name"); fi
			;;
		*) die "$file:$lineno: setting outside a section: $line" ;;
		esac
	done <"$file"

	[[ $CFG_name =~ ^[a-z0-9][-a-z0-9]{0,30}$ ]] || die "$file: [cluster] name must be a short DNS label, got '$CFG_name'"
	case $CFG_transport in ssh | netns) ;; *) die "$file: transport must be ssh or netns, got $CFG_transport" ;; esac
	local n=${#MASTERS[@]}
	[ "$n" -ge 1 ] && [ $((n % 2)) -eq 1 ] || die "$file: want 1 master (embedded etcd) or an odd number of them (an etcd cluster), got $n"
	valid_cidr "$CFG_cluster_cidr" || die "$file: cluster_cidr $CFG_cluster_cidr is not an IPv4 CIDR"
	valid_cidr "$CFG_service_cidr" || die "$file: service_cidr $CFG_service_cidr is not an IPv4 CIDR"

	CLUSTER=$CFG_name
	TRANSPORT=$CFG_transport
	STATE=$(abspath "${CFG_state_dir:-$ROOT/_output/cluster/$CLUSTER}")
	BIN_DIR=$(abspath "${CFG_bin_dir:-$ROOT/_output/bin}")
	IMAGES=$STATE/images
	[ -z "$CFG_images_dir" ] || IMAGES=$(abspath "$CFG_images_dir")
	PKI=$STATE/pki
	STAGING=$STATE/staging
	LOGS=$STATE/logs
	FIRST_MASTER=${MASTERS[0]}
	APISERVER_URL=${CFG_apiserver:-https://${N_ADDR[$FIRST_MASTER]}:6443}
	ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
	ETCD_CLUSTER=0
	[ "$n" -gt 1 ] && ETCD_CLUSTER=1
	if [ "$TRANSPORT" = netns ]; then
		NETNS_BRIDGE=${CFG_netns_bridge:-cxsvm0}
		[ ${#NETNS_BRIDGE} -le 10 ] || die "$file: netns_bridge $NETNS_BRIDGE is longer than 10 characters (its veths add a suffix)"
		[ -n "$CFG_netns_gateway" ] || die "$file: the netns transport needs netns_gateway (the host's address on the bridge, e.g. 10.201.0.1/24)"
		valid_cidr "$CFG_netns_gateway" || die "$file: netns_gateway must be ADDRESS/PREFIX, got $CFG_netns_gateway"
		NETNS_GW_IP=${CFG_netns_gateway%/*}
		NETNS_PREFIXLEN=${CFG_netns_gateway#*/}
		NETNS_NET=$(cidr_network "$NETNS_GW_IP/$NETNS_PREFIXLEN")
		NETNS_CHAIN=COXSWAIN-$(echo "$NETNS_BRIDGE" | tr '[:lower:]' '[:upper:]')
		NETNS_PREFIX=${CFG_netns_prefix:-cxs-$CLUSTER-}
		local node sock
		for node in $(all_nodes); do
			# containerd's sockets must fit a unix socket path.
			sock=$STATE/nodes/$node/run/containerd/containerd.sock.ttrpc
			[ ${#sock} -le 104 ] || die "$file: $sock is too long for a unix socket; set a shorter state_dir"
			[ "$(cidr_network "${N_ADDR[$node]}/$NETNS_PREFIXLEN")" = "$NETNS_NET" ] ||
				die "$file: node $node (${N_ADDR[$node]}) is not in the bridge's network $NETNS_NET"
		done
	fi
}

all_nodes() { printf '%s\n' "${MASTERS[@]}" ${WORKERS[@]+"${WORKERS[@]}"}; }

abspath() {
	local p=${1/#\~/$HOME}
	case $p in /*) ;; *) p=$INVENTORY_DIR/$p ;; esac
	realpath -m "$p"
}

valid_ipv4() {
	[[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
	local o
	for o in "${BASH_REMATCH[@]:1}"; do [ "$o" -le 255 ] || return 1; done
}

valid_cidr() {
	[[ $1 =~ ^([0-9.]+)/([0-9]+)$ ]] || return 1
	local len=${BASH_REMATCH[2]}
	valid_ipv4 "${BASH_REMATCH[1]}" && [ "$len" -le 32 ]
}

ip_to_int() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}

int_to_ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }

# cidr_network A.B.C.D/N: the network address of the CIDR, with /N.
cidr_network() {
	local ip=${1%/*} len=${1#*/}
	local mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
	echo "$(int_to_ip $(($(ip_to_int "$ip") & mask)))/$len"
}

# first_service_ip CIDR: the ClusterIP of the "kubernetes" Service.
first_service_ip() {
	local net
	net=$(cidr_network "$1")
	int_to_ip $(($(ip_to_int "${net%/*}") + 1))
}

# ---------------------------------------------------------------- transports
#
# Two transports run the same steps: ssh (ssh -i KEY USER@ADDRESS, sudo -n
# when USER is not root; the node's files live at their real paths) and
# netns (the node is the network namespace NETNS_PREFIX<node> on this
# machine, entered with nsenter --net; its files live under the node root
# STATE/nodes/<node>, since a network namespace shares this machine's
# filesystem). Every command on a node sees R, the node root ("" over ssh).

node_root() {
	if [ "$TRANSPORT" = netns ]; then echo "$STATE/nodes/$1"; else echo ""; fi
}

node_ns() { echo "$NETNS_PREFIX$1"; }

ssh_args() {
	local node=$1 key port
	key=${N_KEY[$node]:-$CFG_ssh_key}
	port=${N_PORT[$node]:-$CFG_ssh_port}
	mkdir -p "$STATE/ssh"
	SSH_OPTS=(-p "$port" -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=15
		-o ControlMaster=auto -o "ControlPath=$STATE/ssh/%C" -o ControlPersist=60)
	[ -z "$key" ] || SSH_OPTS+=(-i "$(abspath "$key")")
	SSH_TARGET=${N_USER[$node]:-$CFG_ssh_user}@${N_ADDR[$node]}
	SUDO=""
	[ "${N_USER[$node]:-$CFG_ssh_user}" = root ] || SUDO="sudo -n"
}

# ssh_close_all: ends the ssh connections kept open (ControlPersist).
ssh_close_all() {
	[ "$TRANSPORT" = ssh ] || return 0
	local node
	for node in $(all_nodes); do
		ssh_args "$node"
		ssh "${SSH_OPTS[@]}" -O exit "$SSH_TARGET" >/dev/null 2>&1 || true
	done
}

# node_exec NODE SCRIPT: runs the bash SCRIPT as root on NODE, with R set to
# the node root; stdin and stdout pass through.
node_exec() {
	local node=$1 script=$2
	case $TRANSPORT in
	ssh)
		ssh_args "$node"
		local b64
		b64=$(printf '%s' "$script" | base64 -w0)
		# The remote login shell may be dash: only POSIX quoting here.
		ssh "${SSH_OPTS[@]}" "$SSH_TARGET" "$SUDO env R= bash -c \"\$(echo $b64 | base64 -d)\""
		;;
	netns)
		R=$(node_root "$node") nsenter --net="/run/netns/$(node_ns "$node")" bash -c "$script"
		;;
	esac
}

# ---------------------------------------------------------------- PKI
#
# The CA and every certificate are made here, on this machine, with openssl
# (P-256 keys), once: re-running keeps them (a certificate is issued again
# only when its subject or SANs change). Same layout and identities as the
# apiserver's own PKI (apiserver/internal/pki): CN coxswain-ca; users in the
# CN, groups in O.

pki_ca() {
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	[ -f "$PKI/ca.crt" ] && [ -f "$PKI/ca.key" ] && return 0
	[ ! -f "$PKI/ca.crt" ] && [ ! -f "$PKI/ca.key" ] || die "half a CA in $PKI (ca.crt or ca.key missing); remove $PKI to start over"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/ca.key" 2>/dev/null
	chmod 600 "$PKI/ca.key"
	openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=coxswain-ca" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$PKI/ca.crt" 2>/dev/null
	log "created the cluster CA in $PKI"
}

# pki_cert NAME KIND CN [O] [SAN...]: NAME.crt and NAME.key in PKI, signed by
# the CA; KIND is client, server or peer (both).
pki_cert() {
	local name=$1 kind=$2 cn=$3 o=${4:-}
	shift 3
	[ $# -gt 0 ] && shift
	local sans=("$@")
	local spec="$kind|$cn|$o|${sans[*]}"
	if [ -f "$PKI/$name.crt" ] && [ -f "$PKI/$name.key" ] && [ "$(cat "$PKI/$name.spec" 2>/dev/null)" = "$spec" ] &&
		openssl verify -CAfile "$PKI/ca.crt" "$PKI/$name.crt" >/dev/null 2>&1; then
		return 0
	fi
	local subj="/CN=$cn" eku san="" s
	[ -z "$o" ] || subj="/O=$o$subj"
	case $kind in
	client) eku=clientAuth ;;
	server) eku=serverAuth ;;
	peer) eku=serverAuth,clientAuth ;;
	esac
	for s in "${sans[@]}"; do
		if valid_ipv4 "$s" || [[ $s == *:* ]]; then san+="${san:+,}IP:$s"; else san+="${san:+,}DNS:$s"; fi
	done
	local ext
	ext=$(mktemp)
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[ -z "$san" ] || echo "subjectAltName=$san"
	} >"$ext"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
	chmod 600 "$PKI/$name.key"
	openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 365 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$ext" "$PKI/$name.csr"
	echo "$spec" >"$PKI/$name.spec"
	log "issued certificate $name ($kind, CN=$cn${o:+, O=$o})"
}

# write_kubeconfig FILE SERVER CERT: a kubeconfig for SERVER with the CA and
# the client certificate CERT (a pki_cert NAME) embedded.
write_kubeconfig() {
	local file=$1 server=$2 cert=$3
	mkdir -p "$(dirname "$file")"
	cat >"$file" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: coxswain
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: coxswain
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: coxswain
  context:
    cluster: coxswain
    user: coxswain
current-context: coxswain
YAML
	chmod 600 "$file"
}

# pki_sa_key: the service-account signing key every master shares (a token
# one apiserver issues is accepted by the others), kept across runs.
pki_sa_key() {
	[ -f "$PKI/sa.key" ] && [ -f "$PKI/sa.pub" ] && return 0
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/sa.key" 2>/dev/null
	chmod 600 "$PKI/sa.key"
	openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# make_pki: the CA, the service-account key, the certificates of every node
# and the admin kubeconfig.
make_pki() {
	pki_ca
	pki_sa_key
	local node addr svc_ip
	svc_ip=$(first_service_ip "$CFG_service_cidr")
	local url_host=${APISERVER_URL#https://}
	url_host=${url_host%:*}
	pki_cert admin client admin system:masters
	pki_cert kube-scheduler client system:kube-scheduler
	pki_cert kube-controller-manager client system:kube-controller-manager
	pki_cert kube-proxy client system:kube-proxy system:node-proxier
	pki_cert apiserver-kubelet-client client kube-apiserver-kubelet-client system:masters
	for node in "${MASTERS[@]}"; do
		addr=${N_ADDR[$node]}
		pki_cert "apiserver-$node" server kube-apiserver "" "$addr" "$url_host" "$svc_ip" "$node" \
			127.0.0.1 ::1 localhost kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local
		[ "$ETCD_CLUSTER" = 0 ] || pki_cert "etcd-peer-$node" peer "$node" "" "$addr" 127.0.0.1
	done
	for node in ${WORKERS[@]+"${WORKERS[@]}"}; do
		pki_cert "kubelet-$node" client "system:node:$node" system:nodes
	done
	write_kubeconfig "$ADMIN_KUBECONFIG" "$APISERVER_URL" admin
}

# ---------------------------------------------------------------- images

# make_images: the air-gap OCI archives the kubelets import (pause, busybox,
# guestbook, and redis when Debian's redis binary is here), built once.
make_images() {
	[ -z "$CFG_images_dir" ] || { [ -d "$IMAGES" ] || die "images_dir $IMAGES does not exist"; return 0; }
	if [ -f "$IMAGES/pause.tar" ] && [ -f "$IMAGES/busybox.tar" ]; then return 0; fi
	log "building the air-gap images into $IMAGES"
	command -v go >/dev/null || die "go is needed to build the static pause and guestbook binaries (or set images_dir)"
	[ -x /bin/busybox ] || die "/bin/busybox (Debian's busybox-static) is needed for coxswain/busybox"
	mkdir -p "$LOGS"
	rm -rf "$IMAGES.tmp"
	local redis=()
	[ ! -x /usr/bin/redis-check-rdb ] || redis=(--redis /usr/bin/redis-check-rdb)
	"$ROOT/hack/images" --out "$IMAGES.tmp" "${redis[@]}" >"$LOGS/images.log" 2>&1 ||
		die "building the images failed: see $LOGS/images.log"
	rm -rf "$IMAGES"
	mv "$IMAGES.tmp" "$IMAGES"
}

# ---------------------------------------------------------------- components

master_components() {
	[ "$ETCD_CLUSTER" = 0 ] || echo etcd
	echo kube-apiserver kube-scheduler kube-controller-manager
}

worker_components() { echo containerd kubelet kube-proxy; }

node_components() {
	if [ "${N_ROLE[$1]}" = master ]; then master_components; else worker_components; fi
}

# component_files COMPONENT: the node files (globs, relative to the node
# root) whose change restarts COMPONENT.
component_files() {
	case $1 in
	etcd) echo "etc/systemd/system/etcd.service etc/coxswain/etcd.env etc/coxswain/pki/ca.crt etc/coxswain/pki/etcd-peer.*" ;;
	kube-apiserver) echo "usr/local/bin/kube-apiserver etc/systemd/system/kube-apiserver.service etc/coxswain/kube-apiserver.env etc/coxswain/pki/*" ;;
	kube-scheduler) echo "usr/local/bin/kube-scheduler etc/systemd/system/kube-scheduler.service etc/coxswain/kube-scheduler.env etc/coxswain/kube-scheduler.kubeconfig" ;;
	kube-controller-manager) echo "usr/local/bin/kube-controller-manager etc/systemd/system/kube-controller-manager.service etc/coxswain/kube-controller-manager.env etc/coxswain/kube-controller-manager.kubeconfig" ;;
	containerd) echo "etc/coxswain/containerd.toml" ;;
	kubelet) echo "usr/local/bin/kubelet etc/systemd/system/kubelet.service etc/coxswain/kubelet.env etc/coxswain/kubelet.kubeconfig var/lib/coxswain/images/*" ;;
	kube-proxy) echo "usr/local/bin/kube-proxy etc/systemd/system/kube-proxy.service etc/coxswain/kube-proxy.env etc/coxswain/kube-proxy.kubeconfig" ;;
	esac
}

# env_line VAR FLAG...: the EnvironmentFile assignment VAR="FLAG ...", one
# flag per line with backslash continuations (which systemd and bash both
# join), as the unit's ExecStart=... $VAR expects.
env_line() {
	local var=$1
	shift
	printf '%s="' "$var"
	local first=1 f
	for f in "$@"; do
		if [ $first = 1 ]; then printf '%s' "$f"; else printf ' \\\n  %s' "$f"; fi
		first=0
	done
	printf '"\n'
}

# render_env NODE COMPONENT R: the /etc/coxswain/COMPONENT.env of NODE, whose
# files are under the node root R.
render_env() {
	local node=$1 comp=$2 R=$3 addr=${N_ADDR[$1]}
	echo "# /etc/coxswain/$comp.env of $node, written by hack/cluster-up from the inventory."
	case $comp in
	etcd)
		echo "# Read by etcd itself (ETCD_* variables); clients on loopback only, peers over TLS."
		local initial="" m
		for m in "${MASTERS[@]}"; do initial+="${initial:+,}$m=https://${N_ADDR[$m]}:2380"; done
		cat <<ENV
ETCD_NAME=$node
ETCD_LOGGER=zap
ETCD_DATA_DIR=$R/var/lib/coxswain/etcd
ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:2379
ETCD_LISTEN_PEER_URLS=https://$addr:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://$addr:2380
ETCD_INITIAL_CLUSTER=$initial
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=coxswain-$CLUSTER
ETCD_PEER_CERT_FILE=$R/etc/coxswain/pki/etcd-peer.crt
ETCD_PEER_KEY_FILE=$R/etc/coxswain/pki/etcd-peer.key
ETCD_PEER_TRUSTED_CA_FILE=$R/etc/coxswain/pki/ca.crt
ETCD_PEER_CLIENT_CERT_AUTH=true
ENV
		;;
	kube-apiserver)
		local etcd=(--embedded-etcd-port=2379)
		[ "$ETCD_CLUSTER" = 0 ] || etcd=(--etcd-servers=http://127.0.0.1:2379)
		env_line KUBE_APISERVER_ARGS --data-dir="$R/var/lib/coxswain/apiserver" --bind-address=0.0.0.0 --secure-port=6443 \
			--advertise-address="$addr" "${etcd[@]}" \
			--tls-cert-file="$R/etc/coxswain/pki/apiserver.crt" --tls-private-key-file="$R/etc/coxswain/pki/apiserver.key" \
			--client-ca-file="$R/etc/coxswain/pki/ca.crt" \
			--kubelet-client-certificate="$R/etc/coxswain/pki/apiserver-kubelet-client.crt" \
			--kubelet-client-key="$R/etc/coxswain/pki/apiserver-kubelet-client.key" \
			--service-account-signing-key-file="$R/etc/coxswain/pki/sa.key" \
			--service-account-key-file="$R/etc/coxswain/pki/sa.pub" \
			--service-cluster-ip-range="$CFG_service_cidr" --service-node-port-range=30000-32767 --log-level=info
		;;
	kube-scheduler)
		# A 10 s lease with a 2 s retry hands over within 15 s of a crashed
		# leader (upstream's default 15 s lease takes up to 19 s).
		env_line KUBE_SCHEDULER_ARGS --kubeconfig="$R/etc/coxswain/kube-scheduler.kubeconfig" --leader-elect \
			--leader-elect-lease-duration=10s --leader-elect-renew-deadline=8s --leader-elect-retry-period=2s --log-level=info
		;;
	kube-controller-manager)
		# The same 10 s lease as the scheduler's: failover within 15 s.
		env_line KUBE_CONTROLLER_MANAGER_ARGS --kubeconfig="$R/etc/coxswain/kube-controller-manager.kubeconfig" --leader-elect \
			--leader-elect-lease-duration=10s --leader-elect-renew-deadline=8s --leader-elect-retry-period=2s \
			--cluster-cidr="$CFG_cluster_cidr" --node-cidr-mask-size="$CFG_node_cidr_mask_size" --log-level=info
		;;
	kubelet)
		env_line KUBELET_ARGS --kubeconfig="$R/etc/coxswain/kubelet.kubeconfig" --hostname-override="$node" --node-ip="$addr" \
			--containerd-address="$R/run/containerd/containerd.sock" --root-dir="$R/var/lib/coxswain/kubelet" \
			--pod-log-dir="$R/var/log/coxswain/pods" --cni-bin-dir=/usr/lib/cni --cni-conf-dir="$R/etc/coxswain/cni" --cni-bridge=cxs0 \
			--image-airgap-dir="$R/var/lib/coxswain/images" --pod-infra-image=coxswain/pause:latest --cluster-dns="$DEFAULT_DNS_IP" \
			--address="$addr" --port=10250 --healthz-bind-address=127.0.0.1 --healthz-port=10248 --log-level=info
		;;
	kube-proxy)
		local up=()
		[ -z "$CFG_dns_upstream" ] || up=(--dns-upstream="$CFG_dns_upstream")
		env_line KUBE_PROXY_ARGS --kubeconfig="$R/etc/coxswain/kube-proxy.kubeconfig" --hostname-override="$node" \
			--cluster-cidr="$CFG_cluster_cidr" --dns-bind="$DEFAULT_DNS_IP" "${up[@]}" --healthz-bind-address=127.0.0.1 --log-level=info
		;;
	esac
}

# stage_node NODE: STAGING/NODE, the tree of files NODE gets (relative to
# its root). Rebuilt on every run; only what differs from the node is sent.
stage_node() {
	local node=$1 R dir comp
	R=$(node_root "$node")
	dir=$STAGING/$node
	rm -rf "$dir"
	mkdir -p "$dir/usr/local/bin" "$dir/etc/systemd/system" "$dir/etc/coxswain/pki"
	cp "$PKI/ca.crt" "$dir/etc/coxswain/pki/ca.crt"
	for comp in $(node_components "$node"); do
		[ "$comp" = containerd ] && continue
		[ "$comp" = etcd ] || ln -f "$BIN_DIR/$comp" "$dir/usr/local/bin/$comp" 2>/dev/null || cp "$BIN_DIR/$comp" "$dir/usr/local/bin/$comp"
		cp "$UNITS/$comp.service" "$dir/etc/systemd/system/$comp.service"
		render_env "$node" "$comp" "$R" >"$dir/etc/coxswain/$comp.env"
	done
	if [ "${N_ROLE[$node]}" = master ]; then
		cp "$PKI/apiserver-$node.crt" "$dir/etc/coxswain/pki/apiserver.crt"
		cp "$PKI/apiserver-$node.key" "$dir/etc/coxswain/pki/apiserver.key"
		cp "$PKI/apiserver-kubelet-client.crt" "$PKI/apiserver-kubelet-client.key" "$dir/etc/coxswain/pki/"
		cp "$PKI/sa.key" "$PKI/sa.pub" "$dir/etc/coxswain/pki/"
		if [ "$ETCD_CLUSTER" = 1 ]; then
			cp "$PKI/etcd-peer-$node.crt" "$dir/etc/coxswain/pki/etcd-peer.crt"
			cp "$PKI/etcd-peer-$node.key" "$dir/etc/coxswain/pki/etcd-peer.key"
		fi
		write_kubeconfig "$dir/etc/coxswain/kube-scheduler.kubeconfig" https://127.0.0.1:6443 kube-scheduler
		write_kubeconfig "$dir/etc/coxswain/kube-controller-manager.kubeconfig" https://127.0.0.1:6443 kube-controller-manager
		write_kubeconfig "$dir/etc/coxswain/admin.kubeconfig" https://127.0.0.1:6443 admin
	else
		write_kubeconfig "$dir/etc/coxswain/kubelet.kubeconfig" "$APISERVER_URL" "kubelet-$node"
		write_kubeconfig "$dir/etc/coxswain/kube-proxy.kubeconfig" "$APISERVER_URL" kube-proxy
		mkdir -p "$dir/var/lib/coxswain/images" "$dir/etc/sysctl.d"
		local img
		for img in "$IMAGES"/*.tar; do
			ln -f "$img" "$dir/var/lib/coxswain/images/" 2>/dev/null || cp "$img" "$dir/var/lib/coxswain/images/"
		done
		# Workers route pod traffic (their pods', and host-gw between nodes).
		echo "net.ipv4.ip_forward = 1" >"$dir/etc/sysctl.d/60-coxswain.conf"
		if [ "$TRANSPORT" = netns ]; then
			# Debian's containerd.service runs on VMs; a namespace runs its
			# own containerd, all of its state under the node root.
			# The kubelet drives containerd through its client API: no CRI plugin.
			cat >"$dir/etc/coxswain/containerd.toml" <<TOML
version = 2
root = "$R/var/lib/containerd"
state = "$R/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$R/run/containerd/containerd.sock"
TOML
		fi
	fi
	find "$dir/etc/coxswain" \( -name '*.key' -o -name '*.kubeconfig' \) -exec chmod 600 {} +
}

# sync_node NODE: sends NODE the staged files it lacks or holds in another
# version (compared by sha256), in one tar stream; prints the paths sent.
sync_node() {
	local node=$1 dir=$STAGING/$1 list have want changed
	list=$(cd "$dir" && find . -type f -printf '%P\n' | sort)
	want=$(cd "$dir" && xargs -r -d '\n' sha256sum <<<"$list")
	have=$(node_exec "$node" "cd \"\${R:-/}\" 2>/dev/null || exit 0; xargs -r -d '\\n' sha256sum 2>/dev/null <<'COXSWAIN_LIST' || true
$list
COXSWAIN_LIST")
	changed=$(comm -23 <(sort <<<"$want") <(sort <<<"$have") | awk '{print $2}')
	[ -n "$changed" ] || return 0
	(cd "$dir" && tar --owner=0 --group=0 -cf - -T - <<<"$changed") |
		node_exec "$node" 'mkdir -p "${R:-/}" && tar -C "${R:-/}" --no-same-owner -xf - && chmod 700 "$R/etc/coxswain/pki"'
	echo "$changed"
}

# ---------------------------------------------------------------- services
#
# Over ssh the components are systemd services (Type=notify: systemctl
# start returns once the component sent READY=1). In namespaces systemd
# cannot run them, so the netns transport starts each as a background
# process in the node's namespace from the same unit and env file: the
# unit's ExecStart with its EnvironmentFile loaded (bash and systemd read
# these files alike), pid in R/run/coxswain/COMPONENT, output in
# STATE/logs/NODE/COMPONENT.log. With CLUSTER_UP_NOTIFY_DIR set, a component
# gets NOTIFY_SOCKET=CLUSTER_UP_NOTIFY_DIR/NODE-COMPONENT.sock when that
# socket exists (the e2e test listens there for READY=1, as systemd would).

# svc_is_active NODE COMPONENT
svc_is_active() {
	local node=$1 comp=$2
	case $TRANSPORT in
	ssh) node_exec "$node" "systemctl is-active --quiet $comp" ;;
	netns)
		local PIDS
		PIDS=$(node_root "$node")/run/coxswain
		running "$comp"
		;;
	esac
}

# svc_pid NODE COMPONENT: the main pid, empty when not running.
svc_pid() {
	case $TRANSPORT in
	ssh) node_exec "$1" "systemctl show -p MainPID --value $2" | grep -v '^0$' || true ;;
	netns) if svc_is_active "$1" "$2"; then cat "$(node_root "$1")/run/coxswain/$2"; fi ;;
	esac
}

# netns_start NODE COMPONENT: starts the component as systemd would.
netns_start() {
	local node=$1 comp=$2 R unit exec_start env_file
	R=$(node_root "$node")
	local PIDS=$R/run/coxswain LOGS=$STATE/logs/$node
	mkdir -p "$PIDS" "$LOGS"
	if [ "$comp" = containerd ]; then
		exec_start="/usr/bin/containerd --config $R/etc/coxswain/containerd.toml"
		env_file=/dev/null
	else
		unit=$R/etc/systemd/system/$comp.service
		exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
		exec_start=${exec_start/#\/usr\/local\/bin\//$R/usr/local/bin/}
		env_file=$R$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
	fi
	local notify=()
	local sock=${CLUSTER_UP_NOTIFY_DIR:-}/$node-$comp.sock
	[ -z "${CLUSTER_UP_NOTIFY_DIR:-}" ] || [ ! -S "$sock" ] || notify=("NOTIFY_SOCKET=$sock")
	# shellcheck disable=SC2016
	start "$comp" nsenter --net="/run/netns/$(node_ns "$node")" env ${notify[@]+"${notify[@]}"} \
		bash -c 'set -a; . "$1"; set +a; eval "exec $2"' "$comp" "$env_file" "$exec_start"
}

# svc_ensure NODE COMPONENT CHANGED: starts the component unless it is
# active; restarts it when active and CHANGED is 1 (its files changed).
# Records NODE/COMPONENT in ENSURED (what hack/cluster-up watches).
declare -gA ENSURED=()
svc_ensure() {
	local node=$1 comp=$2 changed=$3
	ENSURED[$node/$comp]=1
	if svc_is_active "$node" "$comp"; then
		if [ "$changed" = 1 ]; then
			log "$node: restarting $comp (its files changed)"
			case $TRANSPORT in
			ssh) node_exec "$node" "systemctl restart $comp" ;;
			netns)
				local PIDS LOGS
				PIDS=$(node_root "$node")/run/coxswain
				LOGS=$STATE/logs/$node
				stop "$comp"
				netns_start "$node" "$comp"
				;;
			esac
		else
			log "$node: $comp is active (pid $(svc_pid "$node" "$comp")), unchanged"
		fi
		return 0
	fi
	log "$node: starting $comp"
	case $TRANSPORT in
	ssh)
		if [ "$comp" = etcd ]; then
			# Members wait for each other's quorum: start them all, then wait.
			node_exec "$node" "systemctl enable --quiet $comp && systemctl start --no-block $comp"
		else
			node_exec "$node" "systemctl enable --quiet $comp && systemctl start $comp" ||
				die "$node: $comp did not start; see: ssh ${N_ADDR[$node]} journalctl -u $comp"
		fi
		;;
	netns) netns_start "$node" "$comp" ;;
	esac
}

# svc_remove NODE COMPONENT...: stops and disables the components.
svc_remove() {
	local node=$1 comp
	shift
	case $TRANSPORT in
	ssh)
		node_exec "$node" "for c in $*; do systemctl disable --now --quiet \$c.service 2>/dev/null || true; done"
		;;
	netns)
		local PIDS LOGS
		PIDS=$(node_root "$node")/run/coxswain
		LOGS=$STATE/logs/$node
		for comp in "$@"; do stop "$comp"; done
		;;
	esac
}

# ---------------------------------------------------------------- netns machines

netns_machines_up() {
	log "bridge $NETNS_BRIDGE ($NETNS_GW_IP/$NETNS_PREFIXLEN) and chain $NETNS_CHAIN"
	netns_bridge_up "$NETNS_BRIDGE" "$NETNS_GW_IP/$NETNS_PREFIXLEN" "$NETNS_NET" "$NETNS_CHAIN"
	local i=0 node
	for node in $(all_nodes); do
		i=$((i + 1))
		netns_node_up "$(node_ns "$node")" "${NETNS_BRIDGE}v$i" "$NETNS_BRIDGE" "${N_ADDR[$node]}/$NETNS_PREFIXLEN" "$NETNS_GW_IP"
		mkdir -p "$(node_root "$node")"
	done
}

netns_machines_down() {
	local i=0 node
	for node in $(all_nodes); do
		i=$((i + 1))
		netns_node_down "$(node_ns "$node")" "${NETNS_BRIDGE}v$i"
	done
	netns_bridge_down "$NETNS_BRIDGE" "$NETNS_CHAIN"
}

kc() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }
