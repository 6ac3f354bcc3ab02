package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/clusterclock"
	"github.com/ftvs/ftvs/internal/config"
	"github.com/ftvs/ftvs/internal/link"
	"github.com/ftvs/ftvs/internal/vserver"
)

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	dir := clusterFlag(fs, "", "cluster dir written by `ftvs init` (asks its members)")
	addr := fs.String("addr", "", "any member's HTTP address (host:port or URL); it gathers from the others")
	asJSON := jsonFlag(fs, "print JSON")
	noHash := fs.Bool("no-hash", false, "leave out the state hashes")
	liveHash := fs.Bool("live-hash", false, "hash each CoServer's state now, instead of showing the hash computed at the last comparison point "+
		"(costs ~40 ms per 64 MiB of guest memory; needs the manager token: manager.token in --cluster, or --token-file)")
	tokenFile := fs.String("token-file", "", `the manager token, for --live-hash and for a member whose reads need one (manager.reads = "token"; default: manager.token in --cluster)`)
	check := fs.Bool("check", false, "exit by the cluster's mode, for scripts and monitoring: 0 DUPLEX, "+
		"3 degraded (SIMPLEX or SYNCING: serving without redundancy), 4 no service (NO QUORUM, or no member answers), "+
		"1 the status could not be had (an error, a refusal)")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if (*dir == "") == (*addr == "") {
		fmt.Fprintln(stderr, "ftvs status: give --cluster DIR or --addr HOST:PORT (one of them)")
		return exitUsage
	}
	mode, token := cluster.HashChecked, ""
	switch {
	case *noHash && *liveHash:
		fmt.Fprintln(stderr, "ftvs status: give --no-hash or --live-hash, not both")
		return exitUsage
	case *noHash:
		mode = cluster.HashNone
	case *liveHash:
		mode = cluster.HashLive
		if *tokenFile == "" && *dir == "" {
			fmt.Fprintln(stderr, "ftvs status: --live-hash with --addr needs --token-file (the cluster's manager.token)")
			return exitUsage
		}
		if *tokenFile == "" {
			*tokenFile = filepath.Join(*dir, config.DefaultManagerTokenFile)
		}
	}
	if *tokenFile != "" { // --live-hash, or reads that need a token (manager.reads = "token")
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "ftvs status: manager token: %v\n", err)
			return exitUsage
		}
		token = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var view cluster.View
	var err error
	if *addr != "" {
		view, err = fetchView(ctx, statusClient, baseURL(*addr), mode, token)
	} else {
		view, err = clusterView(ctx, *dir, mode, token)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ftvs status: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(view)
	} else {
		printView(stdout, view)
	}
	if *check {
		return checkCode(view.Mode)
	}
	return exitOK
}

// The exit codes of `ftvs status --check` beyond exitOK (DUPLEX) and exitFailure (the
// status could not be had). exitUsage (2) keeps its meaning.
const (
	exitDegraded  = 3 // SIMPLEX or SYNCING: the virtual server answers, without redundancy
	exitNoService = 4 // NO QUORUM: it does not answer (or no member does)
)

// checkCode is the exit code of `ftvs status --check` for mode.
func checkCode(mode cluster.Mode) int {
	switch mode {
	case cluster.ModeDuplex:
		return exitOK
	case cluster.ModeSimplex, cluster.ModeSyncing:
		return exitDegraded
	case cluster.ModeNoQuorum:
		return exitNoService
	}
	return exitFailure // a mode this build does not know
}

// statusTimeout bounds one request for a member's status or events.
const statusTimeout = 5 * time.Second

// statusClient asks a member given by --addr.
var statusClient = &http.Client{Timeout: statusTimeout}

func baseURL(addr string) string {
	addr = strings.TrimSuffix(addr, "/")
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return addr
}

// errRefused: a member answered, and refused the request (a wrong manager token).
var errRefused = errors.New("refused")

// fetchView asks one member for the cluster view with the state hashes of mode; token
// is the manager token, sent with hash=live.
func fetchView(ctx context.Context, client *http.Client, base string, mode cluster.HashMode, token string) (cluster.View, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ftvs/cluster?hash="+mode.String(), nil)
	if err != nil {
		return cluster.View{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return cluster.View{}, fmt.Errorf("ask %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var refusal struct{ Error string }
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&refusal)
		return cluster.View{}, fmt.Errorf("ask %s: %w: %s: %s", base, errRefused, resp.Status, refusal.Error)
	}
	var v cluster.View
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&v); err != nil {
		return cluster.View{}, fmt.Errorf("ask %s: %s: %w", base, resp.Status, err)
	}
	return v, nil
}

// clusterView asks the members listed in a cluster dir, first answer wins; if none
// answers, every member is reported unreachable.
func clusterView(ctx context.Context, dir string, mode cluster.HashMode, token string) (cluster.View, error) {
	h, err := loadClusterHTTP(dir)
	if err != nil {
		return cluster.View{}, err
	}
	client := h.client(statusTimeout)
	defer client.CloseIdleConnections()
	var errs []error
	for _, m := range h.cfg.Members {
		v, err := fetchView(ctx, client, h.url(m), mode, token)
		if err == nil {
			return v, nil
		}
		if errors.Is(err, errRefused) {
			return cluster.View{}, err
		}
		errs = append(errs, err)
	}
	var members []cluster.Status
	for i, m := range h.cfg.Members {
		members = append(members, cluster.Status{Member: m.Name, Role: cluster.RoleUnreachable, VirtualServer: vserver.StatusUnknown, Gateway: h.url(m), Error: errs[i].Error()})
	}
	return cluster.BuildView("", members), nil
}

func anyConfig(dir string) (*config.Config, error) {
	var errs []error
	for _, name := range config.MemberNames {
		cfg, err := config.Load(filepath.Join(dir, name+".toml"))
		if err == nil {
			return cfg, nil
		}
		errs = append(errs, err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cluster dir: %w (write one with `ftvs init DIR`)", err)
	}
	return nil, fmt.Errorf("no readable member config in %s: %w", dir, errors.Join(errs...))
}

var modeWords = map[cluster.Mode]string{
	cluster.ModeDuplex:   "DUPLEX    both CoServers run the virtual server",
	cluster.ModeSimplex:  "SIMPLEX   one CoServer runs the virtual server: redundancy lost",
	cluster.ModeSyncing:  "SYNCING   a CoServer is being brought back",
	cluster.ModeNoQuorum: "NO QUORUM fewer than two members reach each other: no service",
}

func printView(w io.Writer, v cluster.View) {
	words := modeWords[v.Mode]
	if words == "" {
		words = string(v.Mode)
	}
	fmt.Fprintf(w, "virtual server: %s\n", words)
	if v.Leader != "" {
		fmt.Fprintf(w, "leader: %s", v.Leader)
	}
	if v.AskedVia != "" {
		fmt.Fprintf(w, "   (asked %s)", v.AskedVia)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tROLE\tVIRTUAL SERVER\tAPPLIED\tSTATE HASH\tPID\tVERSION\tADDRESS")
	for _, m := range v.Members {
		hash := m.StateHash
		if len(hash) > 12 {
			hash = hash[:12] + "…"
		}
		switch {
		case hash == "":
			hash = "-"
		case m.StateHashIndex != 0:
			hash += fmt.Sprintf(" @ %d", m.StateHashIndex) // the applied index it describes
		}
		pid := "-"
		if m.PID != 0 {
			pid = fmt.Sprint(m.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", m.Member, m.Role, m.VirtualServer, m.AppliedIndex, hash, pid, dash(m.Version), m.Gateway)
	}
	tw.Flush()
	printLinks(w, v.Links)
	for _, m := range v.Members {
		if m.Sync != nil {
			fmt.Fprintf(w, "sync: %s %s\n", m.Member, m.Sync)
		}
		if m.Failure != "" {
			fmt.Fprintf(w, "failure: %s: %s\n", m.Member, m.Failure)
		}
		if m.Role == cluster.RoleUnreachable && m.Error != "" {
			fmt.Fprintf(w, "unreachable: %s: %s\n", m.Member, m.Error)
		}
		if c := m.Clock; c != nil && c.Skewed {
			fmt.Fprintf(w, "clock: %s's clock is %s (the other members agree); entries carry the cluster's time; set that host's time right (NTP)\n",
				m.Member, clusterclock.Relative(clusterclock.OffsetOf(c.OffsetMs), "the cluster's time"))
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printLinks shows each pair of members and the state of its links a and b, as the
// members at either end see them (down if either end says so).
func printLinks(w io.Writer, links []cluster.Link) {
	if len(links) == 0 {
		return
	}
	type pair struct{ x, y string }
	state := map[pair]map[string]link.Liveness{} // pair -> link -> state
	reason := map[pair]map[string]string{}
	var order []pair
	for _, l := range links {
		p := pair{l.From, l.To}
		if p.x > p.y {
			p = pair{l.To, l.From}
		}
		if state[p] == nil {
			state[p], reason[p] = map[string]link.Liveness{}, map[string]string{}
			order = append(order, p)
		}
		if state[p][l.Link] != link.Down {
			state[p][l.Link] = l.State
		}
		if l.State == link.Down && l.Reason != "" {
			reason[p][l.Link] = l.From + " says: " + l.Reason
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i].x+order[i].y < order[j].x+order[j].y })
	fmt.Fprint(w, "links:")
	for _, p := range order {
		fmt.Fprintf(w, "  %s-%s a:%s b:%s", p.x, p.y, state[p]["a"], state[p]["b"])
	}
	fmt.Fprintln(w)
	for _, p := range order {
		for _, l := range []string{"a", "b"} {
			if r := reason[p][l]; r != "" {
				fmt.Fprintf(w, "link down: %s-%s link %s (%s)\n", p.x, p.y, l, r)
			}
		}
	}
}
