#!/usr/bin/env bash
# Measures how long the service stands still at worst in a steady run: a fresh
# three-member cluster on loopback (defaults: mutual TLS, default timers), the guest
# memory filled to about $MIB MiB with 1 MiB values, then `ftvs bench` at $CLIENTS
# clients for $DURATION over both gateways. Prints the bench line (longest_gap is the
# longest time without an acknowledged write), the leader changes during the run, and
# the guest memory. With TRACE=FILE it also takes an execution trace of the leader
# (TRACE_SECONDS long, 5 by default)
# in the middle of the run, or TRACE_AT seconds into it (go tool trace FILE); with KEEP=1 it keeps the members' logs;
# with UPDATE=FILE.wasm it updates the virtual server to that module (ftvs update) a
# third into the run, so longest_gap includes the update's pause.
# Usage: scripts/measure-stall.sh [MIB] [DURATION] [CLIENTS]   (5 60s 32)
#   FTVS=path/to/ftvs to measure a built binary instead of this tree; MEMBER_FLAGS are
#   added to every member's command line (e.g. --snapshot-threshold 1000000000).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-5}
DURATION=${2:-60s}
CLIENTS=${3:-32}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [[ -n ${KEEP:-} ]]; then
		echo "measure-stall: members' logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
bin=${FTVS:-}
if [[ -z $bin ]]; then
	bin=$work/ftvs
	go build -o "$bin" ./cmd/ftvs
fi
"$bin" init "$work/cluster" >/dev/null
port=16060
for m in coserver1 coserver2 witness; do
	kind=coserver
	[[ $m == witness ]] && kind=witness
	"$bin" "$kind" --config "$work/cluster/$m.toml" --pprof "127.0.0.1:$port" ${MEMBER_FLAGS:-} >>"$work/$m.log" 2>&1 &
	pids+=($!)
	disown
	port=$((port + 1))
done
status() { "$bin" status --cluster "$work/cluster" --json --no-hash; }
for _ in $(seq 300); do
	[[ $(status 2>/dev/null | sed -n 's/.*"mode": "\([a-z-]*\)".*/\1/p' | head -1) == duplex ]] && break
	sleep 0.2
done
gw=$(status | grep -m1 '"gateway"' | sed 's/.*"gateway": "\(.*\)".*/\1/')
if ((MIB > 5)); then
	head -c $((3 << 18)) /dev/urandom | base64 -w0 >"$work/value" # 1 MiB of text
	for ((i = 0; i < MIB; i++)); do
		curl -sf -k -X PUT --data-binary @"$work/value" "$gw/kv/fill-$i" >/dev/null
	done
fi
mem=$(status | sed -n 's/.*"memory_bytes": \([0-9]*\).*/\1/p' | head -1)
term() { status | sed -n 's/.*"term": \([0-9]*\).*/\1/p' | sort -n | tail -1; }
t0=$(term)
echo "measure-stall: $("$bin" version 2>/dev/null | head -1), guest memory $((${mem:-0} >> 20)) MiB, $CLIENTS clients, $DURATION, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n ${TRACE:-} ]]; then
	leader=$(status | sed -n 's/.*"leader": "\([a-z0-9]*\)".*/\1/p' | head -1)
	lp=16060
	[[ $leader == coserver2 ]] && lp=16061
	secs=${DURATION%s}
	(sleep ${TRACE_AT:-$(((secs - ${TRACE_SECONDS:-5}) / 2))} && curl -s "127.0.0.1:$lp/debug/pprof/trace?seconds=${TRACE_SECONDS:-5}" -o "$TRACE") &
	tracer=$!
fi
if [[ -n ${UPDATE:-} ]]; then
	secs=${DURATION%s}
	(sleep $((secs / 3)) && echo "measure-stall: update at $(date -u +%H:%M:%S.%3N)" &&
		"$bin" update --cluster "$work/cluster" "$UPDATE" 2>&1 | sed 's/^/measure-stall: update: /' &&
		echo "measure-stall: update answered at $(date -u +%H:%M:%S.%3N)") &
	updater=$!
fi
echo "measure-stall: bench starts at $(date -u +%H:%M:%S.%3N)"
"$bin" bench --cluster "$work/cluster" --clients "$CLIENTS" --duration "$DURATION"
[[ -n ${tracer:-} ]] && wait "$tracer"
[[ -n ${updater:-} ]] && { wait "$updater" || true; }
echo "measure-stall: raft term $t0 before the run, $(term) after (a change means an election)"
