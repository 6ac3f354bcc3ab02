package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", stderr)
	validity := fs.Duration("cert-validity", 365*24*time.Hour, "how long the member certificates are valid (the cluster CA: ten times as long)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ftvs init [--cert-validity D] DIR\n\nWrites coserver1.toml, coserver2.toml and witness.toml (loopback ports, data dirs inside DIR),\n"+
			"the cluster CA and a certificate per member (DIR/pki) and the manager token (DIR/manager.token).")
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
	res, err := config.InitWith(fs.Arg(0), config.InitOptions{CertValidity: *validity})
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
	fmt.Fprintf(w, "\nstart the members (any order, any machine that can reach the addresses):\n")
	for _, m := range res.Members {
		fmt.Fprintf(w, "  ftvs %-8s --config %s\n", cluster.KindOf(m.Name), res.Files[m.Name])
	}
	fmt.Fprintf(w, "then: ftvs status --cluster %s\n", res.Dir)
}
