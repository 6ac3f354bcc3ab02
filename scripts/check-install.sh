#!/usr/bin/env bash
# check-install.sh: `go install github.com/ftvs/ftvs/cmd/ftvs@latest` works as it will for
# a user, from an empty GOPATH and module cache: this checkout (its tracked files) is
# published as version v0.0.1 on a file proxy in a temporary directory, ahead of the
# dependencies (taken from this machine's module cache, else the Go module proxy). The
# binary it installs must run: `ftvs version`, and a lone CoServer answering a PUT and a
# GET. A `replace` in go.mod would make go install refuse (issue 19).
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d -t ftvs-install.XXXXXX)
pid=""
cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null || true
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

version=v0.0.1
proxy=$tmp/proxy/github.com/ftvs/ftvs/@v
mkdir -p "$proxy"
echo "$version" >"$proxy/list"
printf '{"Version":"%s","Time":"%s"}\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$proxy/$version.info"
cp go.mod "$proxy/$version.mod"
git ls-files -z | python3 -c '
import sys, zipfile
names = [n for n in sys.stdin.buffer.read().decode().split("\0") if n]
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for n in names:
        z.write(n, sys.argv[2] + "/" + n)
' "$proxy/$version.zip" "github.com/ftvs/ftvs@$version"

cache=$(go env GOMODCACHE)/cache/download
start=$SECONDS
env -u GOFLAGS GOPATH="$tmp/gopath" GOMODCACHE="$tmp/modcache" GOBIN="$tmp/bin" GOTOOLCHAIN=local \
	GOPROXY="file://$tmp/proxy,file://$cache,$(go env GOPROXY)" GONOSUMDB=github.com/ftvs/ftvs GOSUMDB="$(go env GOSUMDB)" \
	go install github.com/ftvs/ftvs/cmd/ftvs@latest
echo "check-install: go install github.com/ftvs/ftvs/cmd/ftvs@latest ($version) in $((SECONDS - start)) s"

"$tmp/bin/ftvs" version
"$tmp/bin/ftvs" coserver --simplex --data "$tmp/data" --http 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
url=""
for _ in $(seq 300); do
	url=$(sed -n 's/.*virtual server at \(http[^ ]*\) .*/\1/p' "$tmp/out" | head -1)
	[[ -n $url ]] && break
	sleep 0.1
done
if [[ -z $url ]]; then
	echo "check-install: the installed ftvs did not start a lone CoServer:" >&2
	cat "$tmp/err" >&2
	exit 1
fi
curl -fsS -X PUT --data installed "$url/kv/check" >/dev/null
got=$(curl -fsS "$url/kv/check")
if [[ $got != installed ]]; then
	echo "check-install: GET /kv/check answered \"$got\", want \"installed\"" >&2
	exit 1
fi
echo "check-install: the installed ftvs runs a lone CoServer at $url (PUT and GET answered)"
