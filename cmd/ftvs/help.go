package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// examples are what `ftvs COMMAND -h` shows before the flags: how the command is used.
var examples = map[string][]string{
	"coserver": {
		"ftvs coserver --config /etc/ftvs/coserver1.toml",
		"ftvs coserver --simplex --data /var/lib/ftvs/lone --http 127.0.0.1:8080 --guest app.wasm",
	},
	"witness": {"ftvs witness --config /etc/ftvs/witness.toml"},
	"demo":    {"ftvs demo", "ftvs demo --guest app.wasm --allow-fault-injection --dir /tmp/demo"},
	"status": {
		"ftvs status --cluster /etc/ftvs/cluster",
		"ftvs status --check --no-hash        # exit 0 DUPLEX, 3 degraded, 4 no service ($FTVS_CLUSTER)",
		"ftvs status --addr 10.0.0.1:8080 -o json",
	},
	"events": {
		"ftvs events --cluster /etc/ftvs/cluster --follow",
		"ftvs events --since 1h --severity warning -o json",
	},
	"disable":              {"ftvs disable --coserver 2        # maintenance: coserver1 runs alone"},
	"enable":               {"ftvs enable --coserver 2         # it syncs and the cluster is DUPLEX again"},
	"sync":                 {"ftvs sync --coserver 2           # discard its copy and take the leader's"},
	"leader":               {"ftvs leader --to coserver2"},
	"update":               {"ftvs update --dry-run app-2.wasm   # every check and the rehearsals, no change", "ftvs update --advisories advisories.toml app-2.wasm"},
	"rollback":             {"ftvs rollback", "ftvs rollback --to 3f2a9c"},
	"start-without-quorum": {"ftvs start-without-quorum --coserver coserver1 --confirm coserver1"},
	"doctor":               {"ftvs doctor --cluster /etc/ftvs/cluster --advisories advisories.toml"},
	"inspect":              {"ftvs inspect --data /var/lib/ftvs/coserver1    # a stopped CoServer's data dir"},
	"bench": {
		"ftvs bench --addr 127.0.0.1:8080 --clients 32 --duration 30s",
		"ftvs bench --cluster /tmp/cluster --failover --clients 32",
	},
	"snapshot save":    {"ftvs snapshot save --cluster /etc/ftvs/cluster /backup/ftvs-$(date +%F).ftvs"},
	"snapshot inspect": {"ftvs snapshot inspect /backup/ftvs-2026-12-08.ftvs"},
	"snapshot restore": {"ftvs snapshot restore --cluster /etc/ftvs/new-cluster /backup/ftvs-2026-12-08.ftvs"},
	"module inspect":   {"ftvs module inspect app.wasm"},
	"module stamp":     {"ftvs module stamp --name app --version 1.2.0 app.wasm"},
	"module build":     {"ftvs module build --name app --version 1.2.0 -o app.wasm ./cmd/app"},
}

// printUsage writes fs's help: its synopsis (if any), examples, then its flags.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	name := strings.TrimPrefix(fs.Name(), "ftvs ")
	if synopsis == "" {
		synopsis = fs.Name() + " [flags]"
	}
	fmt.Fprintf(w, "Usage: %s\n", synopsis)
	if ex := examples[name]; len(ex) > 0 {
		fmt.Fprintf(w, "\nExamples:\n  %s\n", strings.Join(ex, "\n  "))
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
}
