#!/usr/bin/env bash
# vendor-raft.sh: rebuild third_party/raft, the copy of hashicorp/raft that ftvs builds
# with: the upstream module's package at RAFT_VERSION (from the Go module proxy), without
# its tests, its go.mod and its subpackages, with third_party/raft.patch applied. It is a
# package of ftvs's own module (github.com/ftvs/ftvs/third_party/raft), not a replaced
# module, so that `go install github.com/ftvs/ftvs/cmd/ftvs@VERSION` builds ftvs as it
# is (go install ignores replace directives). See third_party/README.md for what the patch does and why. Run it after changing RAFT_VERSION or the patch; `--check` only verifies that
# third_party/raft is what this script would write (exit 1 if not); `--write-patch`
# rewrites third_party/raft.patch from the files edited in third_party/raft.
set -euo pipefail
cd "$(dirname "$0")/.."

RAFT_VERSION=v1.7.3
PATCH=third_party/raft.patch
OUT=third_party/raft

dir=$(go mod download -json "github.com/hashicorp/raft@$RAFT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [[ -z $dir || ! -d $dir ]]; then
	echo "vendor-raft: cannot download github.com/hashicorp/raft@$RAFT_VERSION" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ ${1:-} == --write-patch ]]; then
	mkdir -p "$tmp/a" "$tmp/b"
	for f in "$OUT"/*.go; do
		base=$(basename "$f")
		if ! cmp -s "$f" "$dir/$base"; then
			cp "$dir/$base" "$tmp/a/"
			cp "$f" "$tmp/b/"
		fi
	done
	(cd "$tmp" && git diff --no-index a b || true) | grep -v '^index \|^diff --git' |
		sed -e 's#^--- a/a/#--- a/#' -e 's#^+++ b/b/#+++ b/#' >"$PATCH"
	echo "vendor-raft: wrote $PATCH from $OUT"
	exit 0
fi
mkdir -p "$tmp/raft"
for f in "$dir"/*.go "$dir"/LICENSE "$dir"/README.md; do
	case $f in *_test.go) continue ;; esac
	cp "$f" "$tmp/raft/"
done
chmod -R u+w "$tmp/raft"
(cd "$tmp/raft" && git apply -p1 "$OLDPWD/$PATCH")
echo "$RAFT_VERSION" >"$tmp/raft/UPSTREAM_VERSION"

if [[ ${1:-} == --check ]]; then
	if ! diff -r "$tmp/raft" "$OUT" >/dev/null; then
		echo "vendor-raft: $OUT differs from hashicorp/raft $RAFT_VERSION with $PATCH; run scripts/vendor-raft.sh" >&2
		diff -r "$tmp/raft" "$OUT" | head -20 >&2
		exit 1
	fi
	echo "vendor-raft: $OUT is hashicorp/raft $RAFT_VERSION with $PATCH"
	exit 0
fi
rm -rf "$OUT"
cp -r "$tmp/raft" "$OUT"
echo "vendor-raft: wrote $OUT (hashicorp/raft $RAFT_VERSION with $PATCH)"
