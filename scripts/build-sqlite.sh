#!/bin/sh
# build-sqlite.sh builds examples/sqlite/sqlite.wasm, reproducibly: SQLite from Debian
# bookworm's source package (pinned below by version and sha256) and the ftvs shim
# (examples/sqlite/shim/ftvs_sqlite.c), compiled to a wasm32-wasi reactor with Debian's clang,
# lld and wasi-libc, then stamped with its ftvs.module metadata (POST /query and
# GET /healthz declared read-only: the leader serves them without a log entry).
#
#   scripts/build-sqlite.sh [outdir]
#
# Without outdir, examples/sqlite/sqlite.wasm is replaced; with outdir, sqlite.wasm is
# written there instead (scripts/check-guests.sh). What it needs, on Debian bookworm:
#
#   apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 tcl dpkg-dev
#
# and a deb-src entry in apt's sources for `apt-get source` (examples/sqlite/README.md).
# The downloaded source is kept in $FTVS_SQLITE_SRC (default ~/.cache/ftvs/sqlite-src).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-examples/sqlite}
mkdir -p "$out"
out=$(cd "$out" && pwd)

deb_version=3.40.1-2+deb12u2
# sha256 of the files of Debian's source package: what apt verified on download, checked
# again here so that a build is made of these bytes and no others.
sums="ee3459ae9d00939741c7708fc1b8ce1bde12d8c3fb1dfa005bbbc8651d884e23  sqlite3_3.40.1-2+deb12u2.dsc
aaa776260ab4dc976db34aa7891819484c8676b5b2783123ebc6301e2ca5d655  sqlite3_3.40.1.orig.tar.xz
a5e95a18d1b59729278860559ded78751b9163ffb5bb906c5cd24c015f71d5fd  sqlite3_3.40.1.orig-www.tar.xz
0843bc12e4364076477935ce313a6d0796fd899a989ff18ebb6545540e10e4ca  sqlite3_3.40.1-2+deb12u2.debian.tar.xz"

die() { echo "build-sqlite.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: apt-get install $2"; }
need clang clang
need wasm-ld lld
need tclsh tcl
need dpkg-source dpkg-dev
need cc gcc
need make make
[ -f /usr/lib/wasm32-wasi/libc.a ] || die "wasi-libc is missing: apt-get install wasi-libc"
[ -f "$(clang --target=wasm32-wasi -print-libgcc-file-name)" ] ||
	die "clang's wasm32 runtime is missing: apt-get install libclang-rt-14-dev-wasm32"

src=${FTVS_SQLITE_SRC:-$HOME/.cache/ftvs/sqlite-src}
mkdir -p "$src"
if ! (cd "$src" && echo "$sums" | sha256sum --check --status 2>/dev/null); then
	(cd "$src" && apt-get source --download-only "sqlite3=$deb_version" >/dev/null) ||
		die "apt-get source sqlite3=$deb_version failed: add a deb-src entry for Debian bookworm to apt's sources and run apt-get update (examples/sqlite/README.md)"
	(cd "$src" && echo "$sums" | sha256sum --check --quiet) ||
		die "the downloaded source of sqlite3 $deb_version is not the one this script pins"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Unpacked with Debian's patches applied, as Debian builds its libsqlite3.
dpkg-source --no-check -x "$src/sqlite3_$deb_version.dsc" "$tmp/src" >/dev/null 2>&1 ||
	die "dpkg-source could not unpack $src/sqlite3_$deb_version.dsc"
# The amalgamation (one sqlite3.c), made by SQLite's own build with the host's cc and tclsh.
mkdir "$tmp/amalg"
(cd "$tmp/amalg" && ../src/configure --disable-tcl --disable-readline >configure.log 2>&1 &&
	make sqlite3.c >make.log 2>&1) || die "making SQLite's amalgamation failed: see its logs (rerun with set -x)"

# SQLITE_OS_OTHER: no OS layer; the shim's VFS gives SQLite WASI's randomness and
# clock and no files. Single-threaded, temporary data in memory, no extensions to load,
# no memory statistics (a global lock and counters on every allocation), no double-quoted
# string literals (a misspelt column would otherwise be a string).
cflags="-O2 -DNDEBUG
	-DSQLITE_OS_OTHER=1 -DSQLITE_THREADSAFE=0 -DSQLITE_TEMP_STORE=3
	-DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_WAL
	-DSQLITE_OMIT_DEPRECATED -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0
	-DSQLITE_MAX_MMAP_SIZE=0 -DSQLITE_ENABLE_MATH_FUNCTIONS"
# shellcheck disable=SC2086 # cflags are words
clang --target=wasm32-wasi -mexec-model=reactor $cflags \
	-ffile-prefix-map="$tmp"=. -ffile-prefix-map="$root"=. \
	-I"$tmp/amalg" -o "$tmp/raw.wasm" \
	"$root/examples/sqlite/shim/ftvs_sqlite.c" "$tmp/amalg/sqlite3.c" \
	-lm -Wl,--strip-debug ||
	die "clang failed"

GOOS= GOARCH= GOWASM= GOFLAGS= \
	go run ./cmd/ftvs module stamp \
	--name sqlite --version 1.0.0 --requires ">=0.1.0-0, <1" --abi 1 \
	--read "POST /query" --read "GET /healthz" \
	-o "$out/sqlite.wasm" "$tmp/raw.wasm"
