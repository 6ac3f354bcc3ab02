#!/usr/bin/env bash
# release.sh VERSION [OUT]: the release artifacts of ftvs VERSION (e.g. 0.1.0) in OUT
# (default dist/):
#
#   ftvs-VERSION-linux-amd64, ftvs-VERSION-linux-arm64   static binaries (no cgo)
#   ftvs_VERSION_amd64.deb, ftvs_VERSION_arm64.deb       /usr/bin/ftvs, the systemd units
#                                                        (ftvs-coserver@.service,
#                                                        ftvs-witness.service), the ftvs
#                                                        user, /etc/ftvs and /var/lib/ftvs
#   SHA256SUMS
#
# ARCHES="amd64" builds only those. Needs Go and dpkg-deb (Debian's dpkg). Reproducible:
# the same sources and VERSION give the same binaries (-trimpath, no build ID, no VCS
# stamp). scripts/check-release.sh checks what it builds.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: scripts/release.sh VERSION [OUT], e.g. scripts/release.sh 0.1.0}
out=${2:-dist}
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
	echo "release: version $version: want MAJOR.MINOR.PATCH[-PRE], e.g. 0.1.0" >&2
	exit 2
fi
command -v dpkg-deb >/dev/null || { echo "release: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d -t ftvs-release.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for arch in ${ARCHES:-amd64 arm64}; do
	bin=$out/ftvs-$version-linux-$arch
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOFLAGS= go build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X github.com/ftvs/ftvs/internal/version.Version=$version" -o "$bin" ./cmd/ftvs
	echo "release: built $bin"

	root=$tmp/deb-$arch
	install -D -m 0755 "$bin" "$root/usr/bin/ftvs"
	install -D -m 0644 contrib/systemd/ftvs-coserver@.service "$root/lib/systemd/system/ftvs-coserver@.service"
	install -D -m 0644 contrib/systemd/ftvs-witness.service "$root/lib/systemd/system/ftvs-witness.service"
	install -D -m 0644 contrib/prometheus/alerts.yml "$root/usr/share/ftvs/prometheus/alerts.yml"
	install -D -m 0644 contrib/grafana/ftvs.json "$root/usr/share/ftvs/grafana/ftvs.json"
	install -D -m 0644 README.md "$root/usr/share/doc/ftvs/README.md"
	mkdir -p "$root/DEBIAN"
	cat >"$root/DEBIAN/control" <<CONTROL
Package: ftvs
Version: $version
Architecture: $arch
Maintainer: ftvs <ftvs@example.com>
Section: net
Priority: optional
Depends: adduser
Installed-Size: $(du -sk "$root/usr" | cut -f1)
Homepage: https://github.com/ftvs/ftvs
Description: fault-tolerant virtual server
 Two CoServers jointly run one service (a WebAssembly guest) and a witness breaks
 ties: either machine, or either link between them, can fail and the service keeps
 answering, with no acknowledged request lost. Run "ftvs init --member ..." on an
 operator's machine, unpack each member's bundle into /etc/ftvs on its host, then
 "systemctl enable --now ftvs-coserver@coserver1" (or ftvs-witness).
CONTROL
	cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	install -d -m 0750 /etc/ftvs /var/lib/ftvs
	getent group ftvs >/dev/null || addgroup --system ftvs
	getent passwd ftvs >/dev/null || adduser --system --ingroup ftvs --home /var/lib/ftvs --no-create-home ftvs
	chown root:ftvs /etc/ftvs
	chown ftvs:ftvs /var/lib/ftvs
	if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
POSTINST
	cat >"$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
# A member is stopped only when the package goes: an upgrade restarts it (postinst of
# the new version, through the operator: see UPGRADING.md, one member at a time).
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl stop 'ftvs-coserver@*' ftvs-witness 2>/dev/null || true
fi
PRERM
	chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
	deb=$out/ftvs_${version}_$arch.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
	echo "release: built $deb"
done
(cd "$out" && sha256sum ftvs-"$version"-linux-* ftvs_"$version"_*.deb >SHA256SUMS)
echo "release: $out/SHA256SUMS"
