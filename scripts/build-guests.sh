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
# `ftvs module build` is the SDK's build step: go build for wasip1 with
# -buildmode=c-shared, -trimpath, an empty build ID and -buildvcs=false (no
# build machine paths, cache keys, commit hash or dirty flag in the module, so
# committing it does not make it stale), a check by the vm engine, then the
# ftvs.module metadata section, which declares kv's reads read-only (the read path:
# the leader serves them without a log entry). GOOS and GOARCH are cleared for the
# ftvs tool itself (it sets them for the guest); GOWASM and GOFLAGS for both builds.
GOOS= GOARCH= GOWASM= GOFLAGS= \
	go run ./cmd/ftvs module build \
	--name kv --version 1.0.0 --requires ">=0.1.0-0, <1" --abi 1 \
	--read "GET /kv" --read "GET /kv/" --read "GET /stats" --read "GET /healthz" \
	-o "$out/kv.wasm" ./examples/kv
