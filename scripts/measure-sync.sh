#!/usr/bin/env bash
# Measures how long a CoServer takes to sync back (snapshot install + catch-up) while the
# virtual server holds about $STATE_MIB MiB of guest memory, after it lost its data dir
# (wipe) or restarted on damaged storage that it repairs by itself: a flipped byte in its
# raft log (log), in its stable store (stable), or in its newest snapshot with the log
# compacted past the older one (snapshot). Loopback only; the damage modes need python3.
# Usage: scripts/measure-sync.sh [STATE_MIB] [wipe|log|stable|snapshot]   (256 wipe)
set -euo pipefail
cd "$(dirname "$0")/.."
STATE_MIB=${1:-256}
DAMAGE=${2:-wipe}
work=$(mktemp -d)
bin=$work/ftvs
pids=()
# start runs in a subshell ($(...)) for the CoServers: their pids are killed by name.
cleanup() {
  for p in "${pids[@]}" ${c1:-} ${c2:-}; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
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
data=$work/cluster/coserver2
# flip FILE: XOR one byte in the middle of the written part of FILE.
flip() {
  python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
end = len(b.rstrip(b"\0"))
off = max(512, end // 2)
b[off] ^= 0x5A
open(p, "r+b").write(b)
print(f"flipped byte {off} of {p} ({end} bytes written)")
PY
}
case $DAMAGE in
wipe) rm -rf "$data" ;;
log) flip "$(ls "$data"/raft/wal/seg-*.wal | tail -1)" ;;
stable) flip "$data/raft/stable" ;;
snapshot) flip "$(ls -td "$data"/raft/snapshots/*/ | head -1)state.bin" ;;
*) echo "damage $DAMAGE: want wipe, log, stable or snapshot" >&2; exit 2 ;;
esac
t0=$(date +%s.%N)
c2=$(start coserver coserver2)
until [ "$(mode)" = duplex ]; do sleep 0.1; done
t1=$(date +%s.%N)
echo "$DAMAGE: coserver2 back to duplex at $((mem >> 20)) MiB guest memory in $(echo "$t1 - $t0" | bc) s (from restart to duplex)"
# The floor: the same bytes (the newest snapshot's state.bin) copied from one process to
# another over loopback TCP, memory to memory, no TLS.
snap=$(ls -td "$work"/cluster/coserver1/raft/snapshots/*/ | head -1)state.bin
python3 - "$(stat -c %s "$snap")" <<'PY'
import socket, sys, threading, time
n = int(sys.argv[1])
srv = socket.create_server(("127.0.0.1", 0))
def sink():
    c, _ = srv.accept()
    left = n
    while left > 0:
        left -= len(c.recv(1 << 20))
    c.sendall(b"k")
t = threading.Thread(target=sink)
t.start()
buf = b"\xa5" * (1 << 20)
t0 = time.perf_counter()
s = socket.create_connection(srv.getsockname())
sent = 0
while sent < n:
    sent += s.send(buf[: min(len(buf), n - sent)])
s.recv(1)
print(f"raw copy: {n} bytes over loopback TCP in {time.perf_counter() - t0:.3f} s")
t.join()
PY
grep -h "storage.corrupt\|member.repairing\|member.readded\|sync started\|sync: snapshot restored" "$work/coserver2.log" | sed 's/^time=[^ ]* //' | cut -c1-200 | head -12
