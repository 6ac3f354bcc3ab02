#!/usr/bin/env bash
# check-release.sh: scripts/release.sh builds a .deb that holds a working static ftvs and
# the systemd units, with the user and directories they need (amd64 only, to save time).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d -t ftvs-check-release.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ARCHES=amd64 scripts/release.sh 0.0.0-check "$tmp/dist" >/dev/null
deb=$tmp/dist/ftvs_0.0.0-check_amd64.deb
fail() { echo "check-release: $*" >&2; exit 1; }
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/ftvs ./lib/systemd/system/ftvs-coserver@.service ./lib/systemd/system/ftvs-witness.service \
	./usr/share/ftvs/prometheus/alerts.yml ./usr/share/ftvs/grafana/ftvs.json; do
	grep -q " $f\$" <<<"$contents" || fail "$deb lacks $f"
done
[[ $(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ') == "Package: ftvs Version: 0.0.0-check Architecture: amd64 " ]] ||
	fail "control: $(dpkg-deb -f "$deb" Package Version Architecture)"
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"
grep -q "adduser --system" "$tmp/control/postinst" && grep -q "/var/lib/ftvs" "$tmp/control/postinst" || fail "postinst does not create the ftvs user and /var/lib/ftvs"
linkage=$(ldd "$tmp/root/usr/bin/ftvs" 2>&1 || true)
grep -q "not a dynamic executable" <<<"$linkage" || fail "usr/bin/ftvs is not a static binary: $linkage"
[[ $("$tmp/root/usr/bin/ftvs" version) == "ftvs 0.0.0-check "* ]] || fail "usr/bin/ftvs version: $("$tmp/root/usr/bin/ftvs" version)"
# The units run the commands and flags this build has.
for unit in "$tmp"/root/lib/systemd/system/*.service; do
	exec_start=$(sed -n 's/^ExecStart=\/usr\/bin\/ftvs //p' "$unit")
	cmd=${exec_start%% *}
	help=$("$tmp/root/usr/bin/ftvs" "$cmd" -h 2>&1 || true)
	for flag in $(grep -o -- '--[a-z-]*' <<<"$exec_start"); do
		grep -q -- "^  -${flag#--}\b" <<<"$help" || fail "$(basename "$unit"): ftvs $cmd has no $flag"
	done
done
echo "check-release: $(basename "$deb") holds a static ftvs ($("$tmp/root/usr/bin/ftvs" version | head -1)) and its units"
