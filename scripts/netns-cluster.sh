#!/usr/bin/env bash
# netns-cluster.sh up|down [WORK]: three "hosts" on this machine, as a rehearsal of a
# real cluster: network namespaces h1, h2, h3 on two networks (br-ftvs-a 10.77.0.0/24 for
# link a and the gateways, br-ftvs-b 10.77.1.0/24 for link b), a cluster written with
# `ftvs init --member` for their addresses into WORK/operator/cluster, each member's bundle
# unpacked into WORK/hN/etc-ftvs (as /etc/ftvs on a host) and its member started there
# as the user ftvs (the .deb's; root without it). This machine's own namespace is the
# operator's machine: it reaches all three on both networks (.254). Needs root and
# `ip`; uses the ftvs on PATH (the .deb's /usr/bin/ftvs after `dpkg -i`). Logs:
# WORK/hN/member.log. `down` stops the members and removes the namespaces and bridges.
set -euo pipefail
action=${1:?usage: scripts/netns-cluster.sh up|down [WORK]}
work=${2:-/tmp/ftvs-hosts}
names=(coserver1 coserver2 witness)

down() {
	for i in 1 2 3; do
		if [[ -f $work/h$i/member.pid ]]; then kill -9 "$(cat "$work/h$i/member.pid")" 2>/dev/null || true; fi
		ip netns del "h$i" 2>/dev/null || true
	done
	pkill -9 -f "ftvs (coserver|witness) --config $work/" 2>/dev/null || true
	ip link del br-ftvs-a 2>/dev/null || true
	ip link del br-ftvs-b 2>/dev/null || true
}
if [[ $action == down ]]; then
	down
	exit 0
fi
[[ $action == up ]] || { echo "netns-cluster: $action: use up or down" >&2; exit 2; }
down
rm -rf "$work"
mkdir -p "$work/operator"
for net in a b; do
	n=$([[ $net == a ]] && echo 0 || echo 1)
	ip link add "br-ftvs-$net" type bridge
	ip addr add "10.77.$n.254/24" dev "br-ftvs-$net"
	ip link set "br-ftvs-$net" up
done
for i in 1 2 3; do
	ip netns add "h$i"
	ip -n "h$i" link set lo up
	for net in a b; do
		n=$([[ $net == a ]] && echo 0 || echo 1)
		ip link add "v$i$net" type veth peer name "e$net" netns "h$i"
		ip link set "v$i$net" master "br-ftvs-$net" up
		ip -n "h$i" addr add "10.77.$n.$i/24" dev "e$net"
		ip -n "h$i" link set "e$net" up
	done
done

ftvs init --member coserver1=10.77.0.1,10.77.1.1 --member coserver2=10.77.0.2,10.77.1.2 \
	--member witness=10.77.0.3,10.77.1.3 --data-root "$work/var-lib-ftvs" "$work/operator/cluster"
user=root
if id ftvs >/dev/null 2>&1; then user=ftvs; fi
install -d -o "$user" -m 0750 "$work/var-lib-ftvs"
for i in 1 2 3; do
	name=${names[$((i - 1))]}
	kind=coserver
	[[ $name == witness ]] && kind=witness
	etc=$work/h$i/etc-ftvs
	install -d -o "$user" -m 0750 "$etc"
	cp "$work/operator/cluster/$name.bundle.tar.gz" "$work/h$i/"
	tar -xzf "$work/h$i/$name.bundle.tar.gz" -C "$etc"
	ip netns exec "h$i" runuser -u "$user" -- ftvs "$kind" --config "$etc/$name.toml" \
		--cache-dir "$work/var-lib-ftvs/.cache" >"$work/h$i/member.log" 2>&1 &
	echo $! >"$work/h$i/member.pid"
	echo "netns-cluster: $name on h$i (10.77.0.$i, 10.77.1.$i) as $user, pid $(cat "$work/h$i/member.pid")"
done
