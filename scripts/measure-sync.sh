#!/usr/bin/env bash
# Measures how long a wiped CoServer takes to sync back (snapshot install + catch-up)
# while the virtual server holds about $STATE_MIB MiB of guest memory. Loopback only.
# Usage: scripts/measure-sync.sh [STATE_MIB]   (default 256)
set -euo pipefail
cd "$(dirname "$0")/.."
STATE_MIB=${1:-256}
work=$(mktemp -d)
bin=$work/ftvs
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$bin" ./cmd/ftvs
"$bin" init "$work/cluster" >/dev/null
# Snapshot often and keep a short log, so the wiped CoServer must take a snapshot.
flags=(--snapshot-threshold 32 --snapshot-interval 1s --trailing-logs 16)
start() { "$bin" "$1" --config "$work/cluster/$2.toml" "${flags[@]}" >>"$work/$2.log" 2>&1 & pids+=($!); echo $!; }
c1=$(start coserver coserver1); c2=$(start coserver coserver2); start witness witness >/dev/null
mode() { "$bin" status --cluster "$work/cluster" --json --no-hash | sed -n 's/.*"mode": "\([a-z-]*\)".*/\1/p' | head -1; }
until [ "$(mode)" = duplex ]; do sleep 0.2; done
gw=$("$bin" status --cluster "$work/cluster" --json --no-hash | grep -m1 '"gateway"' | sed 's/.*"gateway": "\(.*\)".*/\1/')
head -c $((1 << 20)) /dev/urandom > "$work/value"
i=0
while :; do
  mem=$(curl -s "$gw/ftvs/status?hash=0" | sed -n 's/.*"memory_bytes": \([0-9]*\).*/\1/p')
  [ "$mem" -ge $((STATE_MIB << 20)) ] && break
  curl -sf -X PUT --data-binary @"$work/value" "$gw/kv/big-$i" >/dev/null
  i=$((i + 1))
done
echo "filled: $i values of 1 MiB, guest memory $((mem >> 20)) MiB"
sleep 3 # let a snapshot cover the fill
kill -9 "$c2"; sleep 0.5
rm -rf "$work/cluster/coserver2"
t0=$(date +%s.%N)
start coserver coserver2 >/dev/null
until [ "$(mode)" = duplex ]; do sleep 0.1; done
t1=$(date +%s.%N)
echo "sync of a wiped CoServer at $((mem >> 20)) MiB guest memory: $(echo "$t1 - $t0" | bc) s (from restart to duplex)"
grep -h "sync progress\|sync: snapshot restored\|sync started" "$work/coserver2.log" | sed 's/^time=[^ ]* //' | head -12
