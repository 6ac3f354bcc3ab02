#!/bin/sh
# check-sqlite.sh fails if the committed examples/sqlite/sqlite.wasm is not what
# scripts/build-sqlite.sh builds from the current sources. That build needs Debian's
# C toolchain for wasm32 and SQLite's source package (build-sqlite.sh names them); where
# they are missing the check is skipped with a note, unless FTVS_REQUIRE_SQLITE_BUILD=1
# (set by .ci/run, which installs them).
set -eu
cd "$(dirname "$0")/.."
missing=""
for tool in clang wasm-ld tclsh dpkg-source cc make; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing="$missing wasi-libc"
if [ -n "$missing" ]; then
	if [ "${FTVS_REQUIRE_SQLITE_BUILD:-}" = 1 ]; then
		echo "check-sqlite.sh: cannot build examples/sqlite/sqlite.wasm, missing:$missing" >&2
		exit 1
	fi
	echo "examples/sqlite/sqlite.wasm: not checked, missing:$missing (see scripts/build-sqlite.sh)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/build-sqlite.sh "$tmp" >/dev/null
if ! cmp -s "$tmp/sqlite.wasm" examples/sqlite/sqlite.wasm; then
	echo "examples/sqlite/sqlite.wasm is stale: run scripts/build-sqlite.sh and commit" >&2
	echo "(built with $(clang --version | head -1), $(dpkg-query -W -f '${Package} ${Version}' wasi-libc 2>/dev/null))" >&2
	exit 1
fi
echo "examples/sqlite/sqlite.wasm is up to date"
