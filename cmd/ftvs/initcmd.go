package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", stderr)
	validity := fs.Duration("cert-validity", 365*24*time.Hour, "how long the member certificates are valid (the cluster CA: ten times as long)")
	var members []config.Member
	fs.Func("member", "a member on a real host: NAME=LINK_A,LINK_B[,HTTP] (hosts or host:port; ports 7101, 7201, 8080 by default); give all three", func(s string) error {
		m, err := config.ParseMemberSpec(s)
		members = append(members, m)
		return err
	})
	dataRoot := fs.String("data-root", config.DefaultDataRoot, "with --member: where each host keeps the member's data dir (DATA_ROOT/NAME)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: ftvs init [--cert-validity D] [--member NAME=LINK_A,LINK_B[,HTTP] ... [--data-root DIR]] DIR

Writes coserver1.toml, coserver2.toml and witness.toml, the cluster CA and a certificate per
member (DIR/pki) and the manager token (DIR/manager.token). Without --member, the three
members run on this machine (loopback ports, data dirs inside DIR). With --member for each
of the three, they run on the hosts given, and DIR also holds one bundle per member
(NAME.bundle.tar.gz: its member file, the CA certificate, its key pair and the token) to
unpack into /etc/ftvs on that host.

Examples:
  ftvs init /tmp/cluster
  ftvs init --member coserver1=10.0.0.1,10.0.1.1 --member coserver2=10.0.0.2,10.0.1.2 \
            --member witness=10.0.0.3,10.0.1.3 /etc/ftvs/cluster`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "ftvs init: give exactly one directory: ftvs init DIR")
		return exitUsage
	}
	if *validity < time.Hour {
		fmt.Fprintf(stderr, "ftvs init: --cert-validity %s is too short: give at least 1h (e.g. 8760h for a year)\n", *validity)
		return exitUsage
	}
	opts := config.InitOptions{CertValidity: *validity, Members: members}
	if len(members) > 0 {
		opts.DataRoot = *dataRoot
	}
	res, err := config.InitWith(fs.Arg(0), opts)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs init: %v\n", err)
		return exitFailure
	}
	printInit(stdout, res)
	return exitOK
}

func printInit(w io.Writer, res *config.InitResult) {
	fmt.Fprintf(w, "wrote a cluster to %s (cluster %s)\n\n", res.Dir, res.Cluster)
	for _, m := range res.Members {
		what := "gateway"
		if m.Name == config.Witness {
			what = "API    "
		}
		fmt.Fprintf(w, "  %-10s %s http://%-15s  link a %-15s  link b %-15s  config %s\n", m.Name, what, m.HTTP, m.LinkA, m.LinkB, res.Files[m.Name])
	}
	if len(res.Bundles) > 0 {
		fmt.Fprintf(w, "\non each host, unpack its bundle and start its member (the .deb of scripts/release.sh has the units):\n")
		for _, m := range res.Members {
			unit := "ftvs-coserver@" + m.Name
			if m.Name == config.Witness {
				unit = "ftvs-witness"
			}
			fmt.Fprintf(w, "  %-10s sudo tar -xzf %s -C /etc/ftvs && sudo systemctl enable --now %s\n", m.Name, filepath.Base(res.Bundles[m.Name]), unit)
		}
		fmt.Fprintf(w, "then, from this machine: ftvs status --cluster %s\n", res.Dir)
		return
	}
	fmt.Fprintf(w, "\nstart the members (any order, any machine that can reach the addresses):\n")
	for _, m := range res.Members {
		fmt.Fprintf(w, "  ftvs %-8s --config %s\n", cluster.KindOf(m.Name), res.Files[m.Name])
	}
	fmt.Fprintf(w, "then: ftvs status --cluster %s\n", res.Dir)
}
