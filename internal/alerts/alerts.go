// Package alerts sends a member's events to an operator's webhook ([alerts] in the
// member file): each event at or above a severity, as one JSON POST, in the order the
// member recorded them, sent again until the receiver answers 2xx or the event is too
// old to matter. It follows the member's event log, so an event the live stream dropped
// (a receiver slower than the events) is read back from the log, never skipped.
package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/events"
)

// Source is the member's event log.
type Source interface {
	SubscribeEvents() (<-chan events.Event, func())
	QueryEvents(q events.Query) ([]events.Event, error)
}

// Config configures a Sender.
type Config struct {
	URL         string        // the webhook
	MinSeverity string        // info, warning or error (default error)
	Token       string        // sent as Authorization: Bearer, if not ""
	Cluster     string        // the cluster id, in every alert
	Timeout     time.Duration // per POST; default 10 s
	MaxAge      time.Duration // an event older than this is given up; default 1 h
	Client      *http.Client  // default: a client with Timeout
	Logger      *slog.Logger
	// Backoff is the first wait after a failed POST, doubled up to a minute; default 1 s.
	Backoff time.Duration
	// Since, if set, sends the log's events from this time on as well (the member's
	// start: what it recorded before the sender ran), else only those after Start.
	Since time.Time
}

// Alert is what the webhook receives: the event, its cluster, and what EVENTS.md says
// to do about it.
type Alert struct {
	Cluster string `json:"cluster"`
	events.Event
	Action string `json:"action,omitempty"`
}

// Start sends src's events from now on (it has subscribed when it returns) until ctx
// ends; done is closed then.
func Start(ctx context.Context, src Source, cfg Config) (done <-chan struct{}) {
	if cfg.MinSeverity == "" {
		cfg.MinSeverity = events.SeverityError
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &sender{cfg: cfg, src: src, q: events.Query{MinSeverity: cfg.MinSeverity}}
	// From now on (or cfg.Since): the log's last event before the subscription, and the
	// log again right after it for what came between.
	if evs, err := src.QueryEvents(events.Query{Limit: 1}); err == nil && len(evs) > 0 && cfg.Since.IsZero() {
		s.last = evs[len(evs)-1].Seq
	}
	ch, cancel := src.SubscribeEvents()
	d := make(chan struct{})
	go func() {
		defer close(d)
		s.catchUp(ctx)
		s.run(ctx, ch, cancel)
	}()
	return d
}

type sender struct {
	cfg  Config
	src  Source
	q    events.Query
	last uint64 // the Seq of the last event handled (sent or given up)
}

// run follows the subscription ch, and subscribes again whenever the log cuts it off.
func (s *sender) run(ctx context.Context, ch <-chan events.Event, cancel func()) {
	for {
		s.follow(ctx, ch)
		cancel()
		if ctx.Err() != nil {
			return
		}
		select { // the log is closing, or cut this subscriber off: catch up from it
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		ch, cancel = s.src.SubscribeEvents()
		s.catchUp(ctx) // what the stream dropped meanwhile is in the log

	}
}

// follow sends the events of one subscription until it ends.
func (s *sender) follow(ctx context.Context, ch <-chan events.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-ch:
			if !ok {
				return
			}
			s.handle(ctx, e)
		}
	}
}

// catchUp sends the events the log holds after the last one handled.
func (s *sender) catchUp(ctx context.Context) {
	q := s.q
	q.AfterSeq, q.Since, q.Limit = s.last, s.cfg.Since, 10000
	evs, err := s.src.QueryEvents(q)
	if err != nil {
		s.cfg.Logger.Warn("alerts: read the event log to catch up", "err", err)
		return
	}
	for _, e := range evs {
		s.handle(ctx, e)
	}
}

// handle sends e if it is new and severe enough.
func (s *sender) handle(ctx context.Context, e events.Event) {
	if e.Seq != 0 && e.Seq <= s.last {
		return
	}
	if e.Seq > s.last {
		s.last = e.Seq
	}
	if !s.q.Matches(e) {
		return
	}
	s.deliver(ctx, e)
}

// deliver POSTs e until the webhook takes it, the event is older than MaxAge, or ctx
// ends. Its own failures are logged without an event code: they must not alert.
func (s *sender) deliver(ctx context.Context, e events.Event) {
	body, err := json.Marshal(Alert{Cluster: s.cfg.Cluster, Event: e, Action: action(e.Code)})
	if err != nil {
		s.cfg.Logger.Warn("alerts: encode an event", "seq", e.Seq, "err", err)
		return
	}
	wait := s.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := s.post(ctx, body)
		if err == nil {
			return
		}
		if time.Since(e.Time) > s.cfg.MaxAge {
			s.cfg.Logger.Warn("alerts: gave up sending an event to the webhook", "code", e.Code, "seq", e.Seq, "attempts", attempt, "err", err)
			return
		}
		if attempt == 1 {
			s.cfg.Logger.Warn("alerts: the webhook did not take an event; sending it again", "code", e.Code, "seq", e.Seq, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

func (s *sender) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ftvs-alerts")
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// action is what the catalogue says to do about code.
func action(code string) string {
	k, _ := events.Lookup(code)
	return k.Action
}
