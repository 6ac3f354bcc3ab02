// Package bench drives a kv virtual server with concurrent PUTs and reports throughput
// and latency.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/internal/kvload"
)

// Config configures a run.
type Config struct {
	URL       string // gateway base URL, e.g. http://127.0.0.1:8080
	Clients   int
	Duration  time.Duration
	ValueSize int
	// KeyPrefix keeps runs apart; default "bench", and for a run that keeps its writes
	// (RunWithFault) "bench-" and 8 random hex digits: its writes carry their keys as
	// Idempotency-Keys, which a second run on the same cluster must not send again.
	KeyPrefix string
	// Reads makes the load GETs instead of PUTs: each client first writes readKeys keys
	// (untimed), then reads them in turn and checks every value. With a guest that
	// declares its reads read-only they take the read path (no log entry).
	Reads bool
}

// Result summarizes a run.
type Result struct {
	Clients  int
	Duration time.Duration
	OK       int
	Failed   int
	// Retries counts attempts that failed and were sent again (RunWithFault's writes are
	// retried until acknowledged).
	Retries   int
	OpsPerSec float64
	P50, P90  time.Duration
	P99, Max  time.Duration
	// LongestGap is the longest time between two consecutive acknowledged writes (of
	// any clients): how long the service stood still at worst. GapAt is when it began,
	// from the start of the run.
	LongestGap, GapAt time.Duration
	FirstErr          string
}

func (r Result) String() string {
	s := fmt.Sprintf("clients=%d ops=%d failed=%d duration=%s ops/s=%.0f p50=%s p90=%s p99=%s max=%s longest_gap=%s gap_at=%s",
		r.Clients, r.OK, r.Failed, r.Duration.Round(time.Millisecond), r.OpsPerSec, r.P50, r.P90, r.P99, r.Max,
		r.LongestGap.Round(time.Microsecond), r.GapAt.Round(time.Millisecond))
	if r.Retries > 0 {
		s += fmt.Sprintf(" retried=%d", r.Retries)
	}
	if r.FirstErr != "" {
		s += " first_error=" + r.FirstErr
	}
	return s
}

// Run PUTs values of cfg.ValueSize bytes from cfg.Clients goroutines for cfg.Duration.
func Run(ctx context.Context, cfg Config) (Result, error) {
	client := newHTTPClient(cfg.Clients)
	defer client.Transport.(*http.Transport).CloseIdleConnections()
	return RunTarget(ctx, cfg, &HTTPTarget{URL: cfg.URL, Client: client})
}

// put PUTs value under key on the kv guest behind the gateway at base.
func put(ctx context.Context, c *http.Client, base, key string, value []byte, idempotent bool) error {
	if value == nil {
		value = []byte{}
	}
	req, err := kvload.NewRequest(ctx, http.MethodPut, base, key, value)
	if err != nil {
		return err
	}
	if idempotent {
		req.Header.Set("Idempotency-Key", key) // every write of a run has a key of its own
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusNoContent {
		return &StatusError{Request: "PUT " + req.URL.String(), Code: resp.StatusCode, Status: resp.Status, Body: string(bytes.TrimSpace(body))}
	}
	return nil
}

// StatusError is an answer of the target other than the one a request expects.
type StatusError struct {
	Request string // "METHOD URL"
	Code    int
	Status  string
	Body    string // its start
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Request, e.Status, e.Body) }

// Permanent reports whether sending the same request again cannot succeed: a 4xx answer
// other than 408 (timeout), 425 (too early) and 429 (too many requests). A 422 from
// ftvs, for one, says the Idempotency-Key was first sent with another request.
func (e *StatusError) Permanent() bool {
	switch e.Code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return e.Code >= 400 && e.Code < 500
}

// permanent reports whether err is a StatusError that sending again cannot cure.
func permanent(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Permanent()
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i].Round(time.Microsecond)
}
