#!/usr/bin/env bash
# Measures continuous divergence detection on a pair whose virtual server holds about
# STATE_MIB MiB of guest memory:
#   - the cost of the comparisons: 32 clients PUT for DURATION through the leader's
#     gateway with checks every INTERVAL and with checks every hour (effectively off),
#     RUNS times interleaved, fresh cluster each;
#   - detection and repair: a byte of the follower's guest memory is flipped through the
#     fault-injection API; time until vs.diverged, until vs.repairing (the follower named
#     divergent and re-syncing), and until the pair is duplex again with equal hashes.
# Loopback only. Usage:
#   scripts/measure-divergence.sh [STATE_MIB] [RUNS] [INTERVAL] [DURATION]   (256 3 5s 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
STATE_MIB=${1:-256}
RUNS=${2:-3}
INTERVAL=${3:-5s}
DURATION=${4:-10s}
work=$(mktemp -d)
bin=$work/ftvs
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$bin" ./cmd/ftvs
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc | xargs printf '%.2f'; }

# cluster INTERVAL: a fresh cluster checking every INTERVAL, filled to STATE_MIB.
cluster() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pids=()
  rm -rf "$work/cluster"
  "$bin" init "$work/cluster" >/dev/null
  for m in coserver1 coserver2 witness; do
    args=(--config "$work/cluster/$m.toml")
    [ "$m" != witness ] && args+=(--check-interval "$1" --allow-fault-injection)
    "$bin" "${m%[12]}" "${args[@]}" >>"$work/$m.log" 2>&1 &
    pids+=($!)
  done
  until [ "$(mode)" = duplex ]; do sleep 0.2; done
  leader=
  until [[ "$leader" == coserver* ]]; do
    leader=$("$bin" status --cluster "$work/cluster" --json --no-hash | python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader", ""))')
  done
  follower=coserver1
  [ "$leader" = coserver1 ] && follower=coserver2
  gw=$(url "$leader")
  head -c $((1 << 20)) /dev/urandom >"$work/value"
  i=0
  while :; do
    mem=$(curl -s "$gw/ftvs/status?hash=0" | sed -n 's/.*"memory_bytes": *\([0-9]*\).*/\1/p')
    [ "$mem" -ge $((STATE_MIB << 20)) ] && break
    curl -sf -X PUT --data-binary @"$work/value" "$gw/kv/big-$i" >/dev/null
    i=$((i + 1))
  done
}
mode() { "$bin" status --cluster "$work/cluster" --json --no-hash 2>/dev/null | sed -n 's/.*"mode": "\([a-z-]*\)".*/\1/p' | head -1; }
url() {
  "$bin" status --cluster "$work/cluster" --json --no-hash |
    python3 -c 'import json,sys; print(next(m["gateway"] for m in json.load(sys.stdin)["members"] if m["name"] == sys.argv[1]))' "$1"
}
events() { curl -s "$(url "$1")/ftvs/v1/events?code=$2"; }

echo "guest memory ~${STATE_MIB} MiB, ${DURATION} per cell, 32 clients through the leader's gateway"
for run in $(seq 1 "$RUNS"); do
  for iv in "$INTERVAL" 1h; do
    cluster "$iv"
    sleep 1
    out=$("$bin" bench --addr "$gw" --clients 32 --duration "$DURATION")
    echo "run $run, check interval $iv: $(echo "$out" | tr '\n' ' ' | sed 's/  */ /g')"
  done
done

cluster "$INTERVAL"
# Wait for a first agreed check, then flip a byte of the follower's memory.
until curl -s "$(url "$follower")/ftvs/status?hash=0" | grep -q '"last_agreed_index": *[1-9]'; do sleep 0.1; done
tok=$(cat "$work/cluster/manager.token")
t0=$(now)
curl -sf -X POST -H "Authorization: Bearer $tok" "$(url "$follower")/ftvs/v1/faults/vs?mode=memory&offset=100" >/dev/null
# Light load meanwhile, so requests flow through both gateways.
"$bin" bench --cluster "$work/cluster" --clients 4 --duration 60s >/dev/null 2>&1 &
load=$!
until events "$leader" vs.diverged | grep -q '"code": *"vs.diverged"'; do sleep 0.02; done
detect=$(since "$t0")
until grep -q "event=vs.repairing" "$work/$follower.log"; do sleep 0.02; done
repairing=$(since "$t0")
until [ "$(mode)" = duplex ] && grep -q "event=member.repaired" "$work/$follower.log"; do sleep 0.1; done
duplex=$(since "$t0")
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
echo "memory fault on $follower at ~${STATE_MIB} MiB, check interval $INTERVAL: detected after ${detect} s, re-syncing after ${repairing} s, duplex again after ${duplex} s"
grep -h "vs.diverged\|vs.divergent\|both CoServers replayed" "$work/$leader.log" | sed 's/^time=[^ ]* //' | cut -c1-220 | head -4
