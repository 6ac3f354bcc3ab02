#!/bin/sh
# build-guests.sh rebuilds the guest modules committed to the repository,
# reproducibly: the same Go version and sources give the same bytes.
#
#   scripts/build-guests.sh [outdir]
#
# Without outdir, internal/defaultguest/kv.wasm is replaced. With outdir,
# kv.wasm is written there instead (used by check-guests.sh).
set -eu
cd "$(dirname "$0")/.."
out=${1:-internal/defaultguest}
mkdir -p "$out"
# -trimpath and an empty build ID drop the build machine's paths and cache
# keys; -buildvcs=false keeps the commit hash and dirty flag out of the
# module, so committing it does not make it stale.
GOOS=wasip1 GOARCH=wasm GOWASM= CGO_ENABLED=0 GOFLAGS= \
	go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= \
	-o "$out/kv.wasm" ./examples/kv
