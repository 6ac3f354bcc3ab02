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

// runEvents is `ftvs events`: the members' event logs, merged by time.
func runEvents(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("events", stderr)
	dir := fs.String("cluster", "", "cluster dir written by `ftvs init` (asks every member)")
	addr := fs.String("addr", "", "one member's HTTP address (host:port or URL)")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	since := fs.String("since", "", "only events since a time (RFC 3339) or a duration ago (e.g. 10m)")
	severity := fs.String("severity", "", "only events of this severity or worse: info, warning, error")
	limit := fs.Int("limit", 200, "at most this many past events per member (newest kept)")
	asJSON := fs.Bool("json", false, "print one JSON event per line")
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	if (*dir == "") == (*addr == "") {
		fmt.Fprintln(stderr, "ftvs events: give --cluster DIR or --addr HOST:PORT (one of them)")
		return exitUsage
	}
	q := url.Values{}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "ftvs events: --since %q: %v\n", *since, err)
			return exitUsage
		}
		q.Set("since", t.UTC().Format(time.RFC3339Nano))
	}
	switch *severity {
	case "", "info", "warning", "error":
		if *severity != "" {
			q.Set("severity", *severity)
		}
	default:
		fmt.Fprintf(stderr, "ftvs events: --severity %q: use info, warning or error\n", *severity)
		return exitUsage
	}
	if *limit <= 0 {
		fmt.Fprintf(stderr, "ftvs events: --limit %d: give a positive number\n", *limit)
		return exitUsage
	}
	q.Set("limit", fmt.Sprint(*limit))

	var h clusterHTTP
	var bases []string
	if *addr != "" {
		bases = []string{baseURL(*addr)}
	} else {
		var err error
		if h, err = loadClusterHTTP(*dir); err != nil {
			fmt.Fprintf(stderr, "ftvs events: %v\n", err)
			return exitUsage
		}
		bases = h.urls(false, "")
	}
	show := func(e events.Event) {
		if *asJSON {
			b, _ := json.Marshal(e)
			fmt.Fprintf(stdout, "%s\n", b)
			return
		}
		fmt.Fprintln(stdout, formatEvent(e))
	}

	if !*follow {
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
	return exitOK
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
	fmt.Fprintf(&b, "%s %s %-7s %-9s %-26s %s", e.Time.Local().Format("15:04:05.000"), severityMark[e.Severity], e.Severity, e.Member, e.Code, e.Message)
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
