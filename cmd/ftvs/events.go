package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/internal/events"
)

// eventsFlags are the flags of `ftvs events`.
type eventsFlags struct {
	dir, addr       string
	tokenFile       string
	follow, asJSON  bool
	since, severity string
	limit           int
}

// runEvents is `ftvs events`: the members' event logs, merged by time.
func runEvents(args []string, stdout, stderr io.Writer) int {
	f, code := parseEventsFlags(args, stderr)
	if code >= 0 {
		return code
	}
	q, code := f.query(stderr)
	if code >= 0 {
		return code
	}
	h, bases, code := f.sources(stderr)
	if code >= 0 {
		return code
	}
	show := eventPrinter(stdout, f.asJSON)
	if !f.follow {
		return printPastEvents(h, bases, q, show, stderr)
	}
	followEvents(h, bases, q, show, stderr)
	return exitOK
}

// parseEventsFlags parses the flags of `ftvs events` and checks that exactly one of
// --cluster and --addr is given. It returns an exit code, or -1 to go on.
func parseEventsFlags(args []string, stderr io.Writer) (eventsFlags, int) {
	var f eventsFlags
	fs := newFlags("events", stderr)
	clusterVar(fs, &f.dir, "", "cluster dir written by `ftvs init` (asks every member)")
	fs.StringVar(&f.addr, "addr", "", "one member's HTTP address (host:port or URL)")
	fs.StringVar(&f.tokenFile, "token-file", "", `with --addr: the manager token, for a member whose reads need one (manager.reads = "token")`)
	fs.BoolVar(&f.follow, "follow", false, "keep printing new events until interrupted")
	fs.StringVar(&f.since, "since", "", "only events since a time (RFC 3339) or a duration ago (e.g. 10m)")
	fs.StringVar(&f.severity, "severity", "", "only events of this severity or worse: info, warning, error")
	fs.IntVar(&f.limit, "limit", 200, "at most this many past events per member (newest kept)")
	jsonVar(fs, &f.asJSON, "print one JSON event per line")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return f, code
	}
	if (f.dir == "") == (f.addr == "") {
		fmt.Fprintln(stderr, "ftvs events: give --cluster DIR or --addr HOST:PORT (one of them)")
		return f, exitUsage
	}
	return f, -1
}

// query checks --since, --severity and --limit and turns them into the query of the
// members' event API. It returns an exit code, or -1 to go on.
func (f eventsFlags) query(stderr io.Writer) (url.Values, int) {
	q := url.Values{}
	if f.since != "" {
		t, err := parseSince(f.since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "ftvs events: --since %q: %v\n", f.since, err)
			return nil, exitUsage
		}
		q.Set("since", t.UTC().Format(time.RFC3339Nano))
	}
	switch f.severity {
	case "", "info", "warning", "error":
		if f.severity != "" {
			q.Set("severity", f.severity)
		}
	default:
		fmt.Fprintf(stderr, "ftvs events: --severity %q: use info, warning or error\n", f.severity)
		return nil, exitUsage
	}
	if f.limit <= 0 {
		fmt.Fprintf(stderr, "ftvs events: --limit %d: give a positive number\n", f.limit)
		return nil, exitUsage
	}
	q.Set("limit", fmt.Sprint(f.limit))
	return q, -1
}

// sources are the base URLs of the members to ask (the one of --addr, or every member
// of --cluster) and the cluster's HTTP settings (zero with --addr). It returns an exit
// code, or -1 to go on.
func (f eventsFlags) sources(stderr io.Writer) (clusterHTTP, []string, int) {
	if f.addr != "" {
		h := clusterHTTP{}
		if f.tokenFile != "" {
			b, err := os.ReadFile(f.tokenFile)
			if err != nil {
				fmt.Fprintf(stderr, "ftvs events: manager token: %v\n", err)
				return clusterHTTP{}, nil, exitUsage
			}
			h.tr = withToken{http.DefaultTransport, strings.TrimSpace(string(b))}
		}
		return h, []string{baseURL(f.addr)}, -1
	}
	h, err := loadClusterHTTP(f.dir)
	if err != nil {
		fmt.Fprintf(stderr, "ftvs events: %v\n", err)
		return clusterHTTP{}, nil, exitUsage
	}
	return h, h.urls(false, ""), -1
}

// eventPrinter prints one event to w: a readable line, or a line of JSON if asJSON.
func eventPrinter(w io.Writer, asJSON bool) func(events.Event) {
	return func(e events.Event) {
		if asJSON {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "%s\n", b)
			return
		}
		fmt.Fprintln(w, formatEvent(e))
	}
}

// printPastEvents asks each member at bases for its events, merges them by time and
// shows them. A member that does not answer is reported on stderr; it fails only if
// none answers.
func printPastEvents(h clusterHTTP, bases []string, q url.Values, show func(events.Event), stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var all []events.Event
	failed := 0
	for _, b := range bases {
		evs, err := fetchEvents(ctx, h.client(statusTimeout), b, q)
		if err != nil {
			fmt.Fprintf(stderr, "ftvs events: %v\n", err)
			failed++
			continue
		}
		all = append(all, evs...)
	}
	if failed == len(bases) {
		return exitFailure
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	for _, e := range all {
		show(e)
	}
	return exitOK
}

// followEvents follows the event stream of each member at bases, one at a time through
// show, until interrupted (SIGINT or SIGTERM). A stream that fails is reported on stderr.
func followEvents(h clusterHTTP, bases []string, q url.Values, show func(events.Event), stderr io.Writer) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range bases {
		wg.Go(func() {
			err := streamEvents(ctx, h.client(0), b, q, func(e events.Event) {
				mu.Lock()
				show(e)
				mu.Unlock()
			})
			if err != nil && ctx.Err() == nil {
				mu.Lock()
				fmt.Fprintf(stderr, "ftvs events: %s: %v\n", b, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// parseSince reads an RFC 3339 time or a duration ago.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("give a time like 2026-11-25T10:00:00Z or a duration like 10m")
	}
	return t, nil
}

var severityMark = map[string]string{"info": " ", "warning": "!", "error": "X"}

// formatEvent is one readable line: time, severity mark, member, code, message, details.
func formatEvent(e events.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %-7s %-9s %-26s %s", e.Time.Local().Format("2006-01-02 15:04:05.000"), severityMark[e.Severity], e.Severity, e.Member, e.Code, e.Message)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := e.Details[k]
		if strings.ContainsAny(v, " \t") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

func fetchEvents(ctx context.Context, client *http.Client, base string, q url.Values) ([]events.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ftvs/v1/events?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s: %w", base, err)
	}
	defer resp.Body.Close()
	var body struct {
		Events []events.Event `json:"events"`
		Error  string         `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("ask %s: %s: %w", base, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ask %s: %s: %s", base, resp.Status, body.Error)
	}
	return body.Events, nil
}

// streamEvents follows a member's event stream (server-sent events), reconnecting
// after the last event seen until ctx ends. client has no timeout: the stream is
// long-lived.
func streamEvents(ctx context.Context, client *http.Client, base string, q url.Values, fn func(events.Event)) error {
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ftvs/v1/events/stream?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := client.Do(req)
		if err == nil {
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "id: "):
					last = strings.TrimPrefix(line, "id: ")
				case strings.HasPrefix(line, "data: "):
					var e events.Event
					if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) == nil {
						fn(e)
					}
				}
			}
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second): // the member restarted or is away: try again
		}
	}
}
