package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/config"
)

// runDisable and runEnable are `ftvs disable|enable --coserver N`: take a CoServer out
// of service for maintenance, and bring it back.
func runDisable(args []string, stdout, stderr io.Writer) int {
	return runCoServerAction("disable", args, stdout, stderr)
}

func runEnable(args []string, stdout, stderr io.Writer) int {
	return runCoServerAction("enable", args, stdout, stderr)
}

// runSync is `ftvs sync --coserver N`: that CoServer discards its copy of the virtual
// server and takes the leader's again.
func runSync(args []string, stdout, stderr io.Writer) int {
	return runCoServerAction("sync", args, stdout, stderr)
}

func runCoServerAction(action string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(action, stderr)
	coserver := fs.String("coserver", "", "the CoServer: 1, 2, coserver1 or coserver2")
	t := actionTarget(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	name, ok := coserverName(*coserver)
	if !ok {
		fmt.Fprintf(stderr, "ftvs %s: --coserver %q: give 1 or 2 (coserver1 or coserver2)\n", action, *coserver)
		return exitUsage
	}
	return t.post(action, "/ftvs/v1/coservers/"+name+"/"+action, nil, stdout, stderr)
}

// runLeader is `ftvs leader --to N`: move leadership to a CoServer.
func runLeader(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("leader", stderr)
	to := fs.String("to", "", "the CoServer to lead: 1, 2, coserver1 or coserver2")
	t := actionTarget(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	name, ok := coserverName(*to)
	if !ok {
		fmt.Fprintf(stderr, "ftvs leader: --to %q: give 1 or 2 (coserver1 or coserver2)\n", *to)
		return exitUsage
	}
	body, _ := json.Marshal(map[string]string{"to": name})
	return t.post("leader", "/ftvs/v1/leadership/transfer", body, stdout, stderr)
}

// runStartWithoutQuorum is `ftvs start-without-quorum --coserver N --confirm NAME`: the
// one-sided start, sent to that CoServer itself (its peers are down).
func runStartWithoutQuorum(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("start-without-quorum", stderr)
	coserver := fs.String("coserver", "", "the CoServer to start alone: 1, 2, coserver1 or coserver2")
	confirm := fs.String("confirm", "", "the CoServer's full name again (e.g. coserver1), to show you mean it")
	t := actionTarget(fs)
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	name, ok := coserverName(*coserver)
	if !ok {
		fmt.Fprintf(stderr, "ftvs start-without-quorum: --coserver %q: give 1 or 2 (coserver1 or coserver2)\n", *coserver)
		return exitUsage
	}
	if *confirm != name {
		fmt.Fprintf(stderr, "ftvs start-without-quorum: --confirm %q: repeat the CoServer's full name (--confirm %s). "+
			"Do this only when the other CoServer and the witness are dead: two sides serving at once diverge\n", *confirm, name)
		return exitUsage
	}
	dir, addr := *t.dir, *t.addr
	switch {
	case addr != "":
		dir = "" // --addr is that CoServer's
	case dir == "":
		fmt.Fprintln(stderr, "ftvs start-without-quorum: give --cluster DIR, or --addr of that CoServer with --token-file")
		return exitUsage
	}
	body, _ := json.Marshal(map[string]string{"coserver": name, "confirm": *confirm})
	return postAction("start-without-quorum", dir, addr, name, *t.tokenFile, "/ftvs/v1/override/start-without-quorum", body, stdout, stderr)
}

// coserverName accepts 1, 2, coserver1 or coserver2.
func coserverName(s string) (string, bool) {
	switch s {
	case "1", config.CoServer1:
		return config.CoServer1, true
	case "2", config.CoServer2:
		return config.CoServer2, true
	}
	return "", false
}

// target is where an action goes: a cluster dir, or a member and a token file.
type target struct{ dir, addr, tokenFile *string }

func actionTarget(fs *flag.FlagSet) target {
	return target{
		dir:       clusterFlag(fs, "", "cluster dir written by `ftvs init` (its members and manager.token)"),
		addr:      fs.String("addr", "", "any member's HTTP address (with --token-file)"),
		tokenFile: fs.String("token-file", "", "the manager token (default: manager.token in --cluster)"),
	}
}

func (t target) post(cmd, path string, body []byte, stdout, stderr io.Writer) int {
	return postAction(cmd, *t.dir, *t.addr, "", *t.tokenFile, path, body, stdout, stderr)
}

// postAction sends an action to the first member that answers and prints its message.
func postAction(cmd, dir, addr, only, tokenFile, path string, body []byte, stdout, stderr io.Writer) int {
	var rep struct{ Message, Error string }
	status, code := sendAction(cmd, dir, addr, only, tokenFile, path, body, 15*time.Second, &rep, stderr)
	switch {
	case code != exitOK:
		return code
	case status != http.StatusOK:
		fmt.Fprintf(stderr, "ftvs %s: %d %s: %s\n", cmd, status, http.StatusText(status), rep.Error)
		return exitFailure
	}
	fmt.Fprintln(stdout, rep.Message)
	return exitOK
}

// sendAction posts an action with the manager token to the first member that answers
// (of --addr, or every member of --cluster, or its member only where only is not "")
// and decodes its JSON answer into rep. It
// returns the HTTP status, and an exit code other than exitOK when nothing answered or
// the command line was wrong (the error is printed).
func sendAction(cmd, dir, addr, only, tokenFile, path string, body []byte, timeout time.Duration, rep any, stderr io.Writer) (int, int) {
	if (dir == "") == (addr == "") {
		fmt.Fprintf(stderr, "ftvs %s: give --cluster DIR or --addr HOST:PORT (one of them)\n", cmd)
		return 0, exitUsage
	}
	tok, code := actionToken(cmd, dir, tokenFile, stderr)
	if code >= 0 {
		return 0, code
	}
	var h clusterHTTP
	var bases []string
	if addr != "" {
		bases = []string{baseURL(addr)}
	} else {
		var err error
		if h, err = loadClusterHTTP(dir); err != nil {
			fmt.Fprintf(stderr, "ftvs %s: %v\n", cmd, err)
			return 0, exitUsage
		}
		if bases = h.urls(false, only); len(bases) == 0 {
			fmt.Fprintf(stderr, "ftvs %s: %s is not a member of the cluster in %s\n", cmd, only, dir)
			return 0, exitUsage
		}
	}
	client := h.client(0) // the context bounds each request
	var lastErr error
	for _, base := range bases {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(rep)
		resp.Body.Close()
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "ftvs %s: %s answered %s that is not JSON: %v\n", cmd, base, resp.Status, err)
			return resp.StatusCode, exitFailure
		}
		return resp.StatusCode, exitOK
	}
	fmt.Fprintf(stderr, "ftvs %s: no member answered: %v\n", cmd, lastErr)
	return 0, exitFailure
}

// actionToken is the manager token an action sends: --token-file's, or else the cluster
// dir's manager.token (with --addr, --token-file is required). It returns an exit code
// other than -1 when there is none (the error is printed).
func actionToken(cmd, dir, tokenFile string, stderr io.Writer) (string, int) {
	if tokenFile == "" {
		if dir == "" {
			fmt.Fprintf(stderr, "ftvs %s: with --addr, give --token-file (the cluster's manager.token, or a lone CoServer's DATA/manager.token)\n", cmd)
			return "", exitUsage
		}
		tokenFile = filepath.Join(dir, config.DefaultManagerTokenFile)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs %s: manager token: %v\n", cmd, err)
		return "", exitUsage
	}
	return strings.TrimSpace(string(tok)), -1
}
