#!/bin/sh
# check-guests.sh fails if the committed internal/defaultguest/kv.wasm is
# not what scripts/build-guests.sh builds from the current sources. The Go
# version is part of the build: use the one the module was built with.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/build-guests.sh "$tmp"
if ! cmp -s "$tmp/kv.wasm" internal/defaultguest/kv.wasm; then
	echo "internal/defaultguest/kv.wasm is stale: run scripts/build-guests.sh and commit" >&2
	echo "(built with $(go version))" >&2
	exit 1
fi
echo "internal/defaultguest/kv.wasm is up to date"
