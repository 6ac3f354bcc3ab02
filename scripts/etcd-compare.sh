#!/usr/bin/env bash
# etcd-compare.sh: the etcd side of ftvs's benchmark figures. Starts a 3-member etcd
# (Debian's etcd-server) on loopback and runs internal/bench's load against it through
# TestEtcdCompare: PUT of 256-byte values at 1 and 32 clients, then the failover window
# after SIGKILL of the leader, with etcd's default timeouts and with fast ones.
# Not part of the normal test run; needs root only to install etcd-server if missing.
#
# Environment (all optional):
#   ETCD_HEARTBEAT / ETCD_ELECTION            ms for the first cluster (etcd defaults: 100 / 1000)
#   ETCD_FAST_HEARTBEAT / ETCD_FAST_ELECTION  ms for the second failover run (10 / 100)
#   FTVS_ETCD_DURATION (10s), FTVS_ETCD_FAULT_AT (3s), FTVS_ETCD_CLIENTS ("1,32"),
#   FTVS_ETCD_FAILOVER_CLIENTS (32), FTVS_ETCD_OP_TIMEOUT (500ms): see TestEtcdCompare.
#   ETCD_COMPARE_LOGS   a directory to copy the members' logs to before cleanup
set -euo pipefail

cd "$(dirname "$0")/.."

ETCD_HEARTBEAT=${ETCD_HEARTBEAT:-100}
ETCD_ELECTION=${ETCD_ELECTION:-1000}
ETCD_FAST_HEARTBEAT=${ETCD_FAST_HEARTBEAT:-10}
ETCD_FAST_ELECTION=${ETCD_FAST_ELECTION:-100}

if ! command -v etcd >/dev/null; then
	echo "etcd-compare: installing etcd-server" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi
echo "etcd-compare: $(etcd --version | head -1), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

TMP=$(mktemp -d -t etcd-compare.XXXXXX)
declare -a PIDS=("" "" "")
NAMES=(m1 m2 m3)
CLIENT_PORTS=(23791 23792 23793)
PEER_PORTS=(23801 23802 23803)
ENDPOINTS=$(printf 'http://127.0.0.1:%s,' "${CLIENT_PORTS[@]}")
ENDPOINTS=${ENDPOINTS%,}
INITIAL=""
for i in 0 1 2; do INITIAL+="${NAMES[$i]}=http://127.0.0.1:${PEER_PORTS[$i]},"; done
INITIAL=${INITIAL%,}

stop_all() {
	for i in 0 1 2; do
		if [[ -n ${PIDS[$i]} ]] && kill -0 "${PIDS[$i]}" 2>/dev/null; then
			kill "${PIDS[$i]}" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
			kill -9 "${PIDS[$i]}" 2>/dev/null || true
		fi
		PIDS[$i]=""
	done
}
cleanup() {
	stop_all
	if [[ -n ${ETCD_COMPARE_LOGS:-} ]]; then
		mkdir -p "$ETCD_COMPARE_LOGS"
		for d in "$TMP"/cluster.*; do
			[[ -d $d ]] && cp "$d"/*.log "$ETCD_COMPARE_LOGS/" 2>/dev/null && for f in "$d"/*.log; do mv "$ETCD_COMPARE_LOGS/$(basename "$f")" "$ETCD_COMPARE_LOGS/$(basename "$d")-$(basename "$f")"; done
		done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_member I STATE HEARTBEAT ELECTION DIR: start member I (STATE new or existing).
start_member() {
	local i=$1 state=$2 hb=$3 el=$4 dir=$5
	etcd --name "${NAMES[$i]}" --data-dir "$dir/${NAMES[$i]}" \
		--listen-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
		--advertise-client-urls "http://127.0.0.1:${CLIENT_PORTS[$i]}" \
		--listen-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${PEER_PORTS[$i]}" \
		--initial-cluster "$INITIAL" --initial-cluster-state "$state" \
		--initial-cluster-token "ftvs-compare-$(basename "$dir")" \
		--heartbeat-interval "$hb" --election-timeout "$el" \
		--log-level warn --logger zap \
		>>"$dir/${NAMES[$i]}.log" 2>&1 &
	PIDS[$i]=$!
}

# wait_healthy: every member answers and all agree on a leader (bounded: 30 s).
wait_healthy() {
	local deadline=$((SECONDS + 30)) ok
	while ((SECONDS < deadline)); do
		ok=0
		for p in "${CLIENT_PORTS[@]}"; do
			if curl -fsS -m 1 "http://127.0.0.1:$p/health" 2>/dev/null | grep -q '"health":"true"'; then
				ok=$((ok + 1))
			fi
		done
		((ok == 3)) && return 0
		sleep 0.2
	done
	echo "etcd-compare: cluster not healthy after 30s; logs in $1" >&2
	tail -n 20 "$1"/*.log >&2 || true
	return 1
}

# run_cluster LABEL HEARTBEAT ELECTION MODE: fresh cluster, TestEtcdCompare, restart any
# killed member, check health, stop.
run_cluster() {
	local label=$1 hb=$2 el=$3 mode=$4 dir
	dir=$(mktemp -d "$TMP/cluster.XXXX")
	for i in 0 1 2; do start_member "$i" new "$hb" "$el" "$dir"; done
	wait_healthy "$dir"
	echo "etcd-compare: cluster up ($label), pids ${PIDS[*]}"
	FTVS_ETCD_ENDPOINTS=$ENDPOINTS FTVS_ETCD_PIDS=$(IFS=,; echo "${PIDS[*]}") \
		FTVS_ETCD_MODE=$mode FTVS_ETCD_LABEL="$label" \
		go test -count=1 -timeout 10m -run '^TestEtcdCompare$' -v ./internal/bench/ |
		grep -E '^(RESULT|--- |FAIL|ok|panic|\s+etcd_test)' || true
	for i in 0 1 2; do
		if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
			wait "${PIDS[$i]}" 2>/dev/null || true # reap it quietly
			echo "etcd-compare: restarting killed member ${NAMES[$i]}"
			start_member "$i" existing "$hb" "$el" "$dir"
		fi
	done
	wait_healthy "$dir"
	echo "etcd-compare: cluster healthy again ($label)"
	stop_all
}

run_cluster "etcd3.4-hb${ETCD_HEARTBEAT}-el${ETCD_ELECTION}" "$ETCD_HEARTBEAT" "$ETCD_ELECTION" load,failover
run_cluster "etcd3.4-hb${ETCD_FAST_HEARTBEAT}-el${ETCD_FAST_ELECTION}" "$ETCD_FAST_HEARTBEAT" "$ETCD_FAST_ELECTION" failover
