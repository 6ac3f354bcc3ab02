// Package bench drives a kv virtual server with concurrent PUTs and reports throughput
// and latency.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config configures a run.
type Config struct {
	URL       string // gateway base URL, e.g. http://127.0.0.1:8080
	Clients   int
	Duration  time.Duration
	ValueSize int
	// KeyPrefix keeps runs apart; default "bench".
	KeyPrefix string
}

// Result summarizes a run.
type Result struct {
	Clients   int
	Duration  time.Duration
	OK        int
	Failed    int
	OpsPerSec float64
	P50, P90  time.Duration
	P99, Max  time.Duration
	FirstErr  string
}

func (r Result) String() string {
	s := fmt.Sprintf("clients=%d ops=%d failed=%d duration=%s ops/s=%.0f p50=%s p90=%s p99=%s max=%s",
		r.Clients, r.OK, r.Failed, r.Duration.Round(time.Millisecond), r.OpsPerSec, r.P50, r.P90, r.P99, r.Max)
	if r.FirstErr != "" {
		s += " first_error=" + r.FirstErr
	}
	return s
}

// Run PUTs values of cfg.ValueSize bytes from cfg.Clients goroutines for cfg.Duration.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Clients <= 0 || cfg.Duration <= 0 || cfg.ValueSize < 0 {
		return Result{}, fmt.Errorf("bench: clients (%d) and duration (%s) must be positive, value size (%d) not negative", cfg.Clients, cfg.Duration, cfg.ValueSize)
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "bench"
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu       sync.Mutex
		lats     []time.Duration
		failed   int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for c := range cfg.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			value := make([]byte, cfg.ValueSize)
			var local []time.Duration
			var localFail int
			var localErr string
			for i := 0; ctx.Err() == nil; i++ {
				for j := range value {
					value[j] = 'a' + byte(rng.IntN(26))
				}
				url := fmt.Sprintf("%s/kv/%s-%d-%d", cfg.URL, cfg.KeyPrefix, c, i)
				t0 := time.Now()
				err := put(ctx, client, url, value)
				if ctx.Err() != nil {
					break // the run ended during this request: count nothing
				}
				if err != nil {
					localFail++
					if localErr == "" {
						localErr = err.Error()
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			failed += localFail
			if firstErr == "" {
				firstErr = localErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lats)
	r := Result{Clients: cfg.Clients, Duration: elapsed, OK: len(lats), Failed: failed, FirstErr: firstErr}
	r.OpsPerSec = float64(len(lats)) / elapsed.Seconds()
	r.P50, r.P90, r.P99 = quantile(lats, 0.50), quantile(lats, 0.90), quantile(lats, 0.99)
	if len(lats) > 0 {
		r.Max = lats[len(lats)-1]
	}
	return r, nil
}

func put(ctx context.Context, c *http.Client, url string, value []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(value))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("PUT %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i].Round(time.Microsecond)
}
