package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/pki"
)

// runCert is `ftvs cert rotate MEMBER` and `ftvs cert list`: the member certificates of
// a cluster made by `ftvs init` (its pki dir).
func runCert(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("cert", stderr)
	dir := clusterFlag(fs, ".", "cluster dir from `ftvs init` (holds pki/)")
	validity := fs.Duration("validity", 365*24*time.Hour, "with rotate: how long the new certificate is valid")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ftvs cert rotate MEMBER [--cluster DIR] [--validity D]\n       ftvs cert list [--cluster DIR]\n\n"+
			"rotate issues a new certificate and key for MEMBER, signed by the cluster CA. A member whose tls.dir is\n"+
			"this pki dir picks it up for new connections within a second, without a restart; for a member on another\n"+
			"machine, copy pki/MEMBER.crt and pki/MEMBER.key there (into its tls.dir). The old pair is kept as .old.\n\n"+
			"Examples:\n  ftvs cert list --cluster /etc/ftvs/cluster\n  ftvs cert rotate coserver2 --cluster /etc/ftvs/cluster --validity 8760h\n\nFlags:")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fs.Usage()
		return exitOK
	}
	sub := args[0]
	var positional []string // flags may come before or after the member name
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	pkiDir := filepath.Join(*dir, config.DefaultTLSDir)
	switch sub {
	case "list":
		if len(positional) != 0 {
			fmt.Fprintln(stderr, "ftvs cert list: takes no arguments")
			return exitUsage
		}
		fmt.Fprintf(stdout, "%-10s %-25s %s\n", "MEMBER", "EXPIRES", "DAYS LEFT")
		code := exitOK
		for _, name := range config.MemberNames {
			m, err := pki.Load(pkiDir, name)
			if err != nil {
				fmt.Fprintf(stdout, "%-10s %v\n", name, err)
				code = exitFailure
				continue
			}
			left := time.Until(m.Expiry())
			note := ""
			if left < 30*24*time.Hour {
				note = "  ! rotate soon: ftvs cert rotate " + name
			}
			fmt.Fprintf(stdout, "%-10s %-25s %d%s\n", name, m.Expiry().UTC().Format(time.RFC3339), int(left.Hours()/24), note)
		}
		return code
	case "rotate":
		if len(positional) != 1 {
			fmt.Fprintln(stderr, "ftvs cert rotate: name one member: ftvs cert rotate coserver1 --cluster DIR")
			return exitUsage
		}
		member := positional[0]
		paths, err := pki.Rotate(pkiDir, member, *validity, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "ftvs cert rotate: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "issued a new certificate for %s, valid %s:\n  %s\n  %s\n(the previous pair is kept as .old)\n", member, *validity, paths.Cert, paths.Key)
		return exitOK
	default:
		fmt.Fprintf(stderr, "ftvs cert: unknown subcommand %q: use rotate or list\n", sub)
		return exitUsage
	}
}
