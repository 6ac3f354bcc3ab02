#!/usr/bin/env bash
# etcd-compare.sh: issue 16's goals, each measured on this machine in one run, ftvs next to
# etcd (Debian's etcd-server, a 3-member cluster on loopback), reported in one table.
# Performance is measured here, never asserted in tests. It takes about 12 minutes.
#
#   1 no stall      longest time without an acknowledged write, steady run at 32 clients
#                   over both gateways (scripts/measure-stall.sh), at 5 MiB and at
#                   $STATE_MIB MiB of guest memory; leader changes during those runs
#   2 throughput    PUTs/s at 32 clients on the leader's gateway (ftvs: mutual TLS, its
#                   default; etcd: plaintext)
#   3 latency       p50 of 1 client through each CoServer's gateway
#   4 failover      window without a successful write after SIGKILL of the leader, 32
#                   clients over both gateways (ftvs bench --failover; etcd: TestEtcdCompare)
#   5 update stall  longest gap of a steady run in which the kv guest is updated to
#                   examples/kv2 at $UPDATE_MIB MiB (measure-stall.sh with UPDATE=)
#   6 sync          a wiped CoServer back to duplex at $STATE_MIB MiB (scripts/measure-sync.sh),
#                   against a raw copy of the same bytes over loopback TCP
#
# Usage: scripts/etcd-compare.sh [STEP...]   (etcd load steady update sync: all by default;
# report: only the table, from OUT)
# Environment (all optional): LOAD_DURATION (10s), STEADY_DURATION (60s), FAILOVERS (5:
# kills of the ftvs leader, each on a fresh cluster; the table gives the worst), STATE_MIB
# (256), UPDATE_MIB (STATE_MIB), ETCD_HEARTBEAT / ETCD_ELECTION (etcd's defaults, 100 / 1000 ms), FAST_ETCD=1
# to add a failover run with etcd at 10 / 100 ms, KEEP=1 to keep every step's output,
# ETCD_COMPARE_LOGS=DIR to copy etcd's logs there. Needs root only to install
# etcd-server if it is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

LOAD_DURATION=${LOAD_DURATION:-10s}
FAILOVERS=${FAILOVERS:-5}
STEADY_DURATION=${STEADY_DURATION:-60s}
STATE_MIB=${STATE_MIB:-256}
ETCD_HEARTBEAT=${ETCD_HEARTBEAT:-100}
ETCD_ELECTION=${ETCD_ELECTION:-1000}

if ! command -v etcd >/dev/null; then
	echo "etcd-compare: installing etcd-server" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi
# Steps to run (all by default); OUT=DIR reuses an earlier run's output directory, so
# that, e.g., `KEEP=1 OUT=DIR scripts/etcd-compare.sh sync` measures one step again and
# reports the table with the others' figures.
STEPS=${*:-etcd load steady update sync}
out=${OUT:-$(mktemp -d -t etcd-compare-out.XXXXXX)}
FTVS=$out/ftvs
go build -o "$FTVS" ./cmd/ftvs
echo "etcd-compare: $("$FTVS" version | head -1); $(etcd --version | head -1); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); output in $out"

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
	ftvs_stop
	if [[ -n ${ETCD_COMPARE_LOGS:-} ]]; then
		mkdir -p "$ETCD_COMPARE_LOGS"
		for d in "$TMP"/cluster.*; do
			[[ -d $d ]] && cp "$d"/*.log "$ETCD_COMPARE_LOGS/" 2>/dev/null && for f in "$d"/*.log; do mv "$ETCD_COMPARE_LOGS/$(basename "$f")" "$ETCD_COMPARE_LOGS/$(basename "$d")-$(basename "$f")"; done
		done
	fi
	rm -rf "$TMP"
	[[ -n ${KEEP:-} || -n ${OUT:-} ]] || rm -rf "$out" # an OUT given is kept
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
	if [[ $mode == *load* ]]; then
		echo "etcd-compare: etcd steady run, 32 clients, $STEADY_DURATION"
		"$FTVS" bench --etcd "$ENDPOINTS" --clients 32 --duration "$STEADY_DURATION" | tee "$out/etcd-steady.txt"
	fi
	FTVS_ETCD_ENDPOINTS=$ENDPOINTS FTVS_ETCD_PIDS=$(IFS=,; echo "${PIDS[*]}") \
		FTVS_ETCD_MODE=$mode FTVS_ETCD_LABEL="$label" \
		FTVS_ETCD_DURATION=$LOAD_DURATION \
		go test -count=1 -timeout 10m -run '^TestEtcdCompare$' -v ./internal/bench/ |
		grep -E '^(RESULT|--- |FAIL|ok|panic|\s+etcd_test)' | tee -a "$out/etcd-$label.txt" || true
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

. scripts/etcd-compare-ftvs.sh

for step in $STEPS; do
	case $step in
	etcd)
		rm -f "$out"/etcd-*.txt
		run_cluster "etcd-hb${ETCD_HEARTBEAT}-el${ETCD_ELECTION}" "$ETCD_HEARTBEAT" "$ETCD_ELECTION" load,failover
		if [[ -n ${FAST_ETCD:-} ]]; then
			run_cluster "etcd-hb10-el100" 10 100 failover
		fi
		;;
	load) ftvs_load ;;
	steady) ftvs_steady ;;
	update) ftvs_update ;;
	sync) ftvs_sync ;;
	report) ;; # only the table, from OUT's figures
	*) echo "etcd-compare: no step $step: the steps are etcd, load, steady, update, sync and report" >&2; exit 2 ;;
	esac
done
report | tee "$out/report.md"
