#!/usr/bin/env bash
# The test command (README): formatting, vet, the committed default guest, every test
# layer with the race detector, and a short run of every fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...
GOOS=wasip1 GOARCH=wasm go vet ./guest/ ./examples/... ./internal/testguest/...

echo "== third_party/raft is hashicorp/raft with third_party/raft.patch"
scripts/vendor-raft.sh --check

echo "== default guest is built from source"
scripts/check-guests.sh

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz (short runs)"
# Fuzzers that write files (raftlog) fsync on every input: on a disk still flushing what
# the tests above wrote, one fsync can take seconds and Go's fuzzing coordinator then
# gives up ("context deadline exceeded"). Their temp dirs go to memory when possible.
fuzztmp=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then fuzztmp=/dev/shm; fi
fuzz() { TMPDIR=$fuzztmp go test -run='^$' -fuzz="^$2\$" -fuzztime="${FUZZTIME:-10s}" "$1"; }
fuzz ./internal/entry FuzzDecode
fuzz ./internal/vserver FuzzReadSnapshot
fuzz ./internal/vserver FuzzModulePayload
fuzz ./internal/wasm FuzzParse
fuzz ./internal/wasm FuzzInstrument
fuzz ./internal/gateway FuzzDecodeResponse
fuzz ./guest FuzzHandleBytes
fuzz ./guest FuzzParseRequestFast
fuzz ./internal/raftlog FuzzOpen
fuzz ./internal/events FuzzReadEvents
fuzz ./internal/config FuzzParse
fuzz ./internal/vrange FuzzParseRange
fuzz ./internal/modmeta FuzzRead
fuzz ./internal/advisory FuzzParse
fuzz ./internal/vserver FuzzUpdatePayload
fuzz ./internal/forward FuzzReadReply
fuzz ./internal/forward FuzzReadRequest
fuzz ./internal/stablestore FuzzOpen
fuzz ./internal/snapstore FuzzMeta
fuzz ./internal/snapstore FuzzName
