package bench

// The load itself: clients that write (and read) as fast as the target answers,
// their tallies, and a fault injected at its time.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// loadOpts are what RunWithFault adds to a plain load.
type loadOpts struct {
	// keep: return the acknowledged writes, make values unique, and retry a failed write
	// (the same key and value, after retryPause) until it is acknowledged or the run
	// ends. ftvs targets send it with an Idempotency-Key (UseIdempotencyKeys), so a
	// retry after an unknown outcome is applied once.
	keep    bool
	faultAt time.Duration
	fault   func(start time.Time) // if set, called faultAt into the run, or with a zero start if the run ends first
}

// runLoad is the load loop shared by Run, RunTarget and RunWithFault.
func runLoad(ctx context.Context, cfg Config, t Target, o loadOpts) (Result, []Write, error) {
	if cfg.Clients <= 0 || cfg.Duration <= 0 || cfg.ValueSize < 0 {
		return Result{}, nil, fmt.Errorf("bench: clients (%d) and duration (%s) must be positive, value size (%d) not negative", cfg.Clients, cfg.Duration, cfg.ValueSize)
	}
	if t == nil {
		return Result{}, nil, errors.New("bench: no target")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "bench"
		if o.keep {
			cfg.KeyPrefix = fmt.Sprintf("bench-%08x", rand.Uint32())
		}
	}
	if cfg.Reads {
		if o.keep || o.fault != nil {
			return Result{}, nil, errors.New("bench: a read load runs without a fault")
		}
		if err := writeReadKeys(ctx, cfg, t); err != nil {
			return Result{}, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu  sync.Mutex
		all loadTally
		wg  sync.WaitGroup
	)
	start := time.Now()
	if o.fault != nil {
		go injectFault(ctx, o, start)
	}
	for c := range cfg.Clients {
		ct := t
		if pc, ok := t.(PerClient); ok {
			ct = pc.ForClient(c)
		}
		wg.Go(func() {
			var local loadTally
			if cfg.Reads {
				local = readClient(ctx, cfg, ct, c, start)
			} else {
				local = loadClient(ctx, cfg, ct, c, start, o.keep)
			}
			mu.Lock()
			all.add(local)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all.result(cfg.Clients, time.Since(start)), all.writes, nil
}

// injectFault calls o.fault with start once o.faultAt has passed, or with a zero start
// if ctx, the run, ends first.
func injectFault(ctx context.Context, o loadOpts, start time.Time) {
	tm := time.NewTimer(o.faultAt)
	defer tm.Stop()
	select {
	case <-tm.C:
		o.fault(start)
	case <-ctx.Done():
		o.fault(time.Time{}) // the run ended first: no fault
	}
}

// loadTally is what load clients counted: the latencies of acknowledged writes, those
// writes (when kept), the failed writes and the first failure's message.
type loadTally struct {
	lats     []time.Duration
	acks     []time.Duration // when each write was acknowledged, from the start of the run
	writes   []Write
	failed   int
	retries  int // attempts of writes sent again (keep)
	firstErr string
}

// add counts o's writes in t; t's first failure stays the first.
func (t *loadTally) add(o loadTally) {
	t.lats = append(t.lats, o.lats...)
	t.acks = append(t.acks, o.acks...)
	t.writes = append(t.writes, o.writes...)
	t.failed += o.failed
	t.retries += o.retries
	if t.firstErr == "" {
		t.firstErr = o.firstErr
	}
}

// fail counts a failed request; the first failure's message is kept.
func (t *loadTally) fail(err error) {
	t.failed++
	if t.firstErr == "" {
		t.firstErr = err.Error()
	}
}

// ack counts a request sent at t0 and acknowledged now, in a run that began at start,
// and returns when it was acknowledged, from the start.
func (t *loadTally) ack(t0, start time.Time) time.Duration {
	now := time.Now()
	t.lats = append(t.lats, now.Sub(t0))
	t.acks = append(t.acks, now.Sub(start))
	return now.Sub(start)
}

// result is the Result of a run by clients clients that lasted elapsed and counted t.
func (t *loadTally) result(clients int, elapsed time.Duration) Result {
	lats := t.lats
	slices.Sort(lats)
	r := Result{Clients: clients, Duration: elapsed, OK: len(lats), Failed: t.failed, Retries: t.retries, FirstErr: t.firstErr}
	r.OpsPerSec = float64(len(lats)) / elapsed.Seconds()
	r.P50, r.P90, r.P99 = quantile(lats, 0.50), quantile(lats, 0.90), quantile(lats, 0.99)
	if len(lats) > 0 {
		r.Max = lats[len(lats)-1]
	}
	slices.Sort(t.acks)
	for i := 1; i < len(t.acks); i++ {
		if d := t.acks[i] - t.acks[i-1]; d > r.LongestGap {
			r.LongestGap, r.GapAt = d, t.acks[i-1]
		}
	}
	return r
}

// loadClient is load client c of a run that began at start: it PUTs values of
// cfg.ValueSize random letters to t, each under a new key, until ctx ends. With keep,
// each value is unique and kept with its write, and a failed write is sent again after
// a pause of retryPause until it is acknowledged (its latency counts from the first
// attempt) or refused for good (a permanent StatusError: counted as failed).
func loadClient(ctx context.Context, cfg Config, t Target, c int, start time.Time, keep bool) loadTally {
	var tally loadTally
	rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
	value := make([]byte, cfg.ValueSize)
	for i := 0; ctx.Err() == nil; i++ {
		if keep {
			value = make([]byte, cfg.ValueSize) // kept for VerifyAcked
		}
		for j := range value {
			value[j] = 'a' + byte(rng.IntN(26))
		}
		key := fmt.Sprintf("%s-%d-%d", cfg.KeyPrefix, c, i)
		if keep {
			copy(value, key+"=") // unique even if the random part is not
		}
		t0 := time.Now()
		err := t.Put(ctx, key, value)
		for keep && err != nil && ctx.Err() == nil && !permanent(err) {
			tally.retries++
			if tally.firstErr == "" {
				tally.firstErr = err.Error()
			}
			pause := time.NewTimer(retryPause)
			select {
			case <-pause.C:
				err = t.Put(ctx, key, value)
			case <-ctx.Done():
				pause.Stop()
			}
		}
		if ctx.Err() != nil {
			break // the run ended during this request: count nothing
		}
		if err != nil {
			tally.fail(err)
			continue
		}
		at := tally.ack(t0, start)
		if keep {
			tally.writes = append(tally.writes, Write{Key: key, Value: value, At: at})
		}
	}
	return tally
}

// readKeys is how many keys each client of a read load reads in turn.
const readKeys = 16

// readKey is key j of client c in a read load, and its value (a few bytes over the
// value size: the key, so that a wrong answer shows).
func readKey(cfg Config, c, j int) (string, []byte) {
	key := fmt.Sprintf("%s-%d-r%d", cfg.KeyPrefix, c, j)
	v := make([]byte, cfg.ValueSize)
	for i := range v {
		v[i] = 'a' + byte((c+j+i)%26)
	}
	return key, append([]byte(key+"="), v...)
}

// writeReadKeys writes the keys of a read load, before it is timed.
func writeReadKeys(ctx context.Context, cfg Config, t Target) error {
	errs := make([]error, cfg.Clients)
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		ct := t
		if pc, ok := t.(PerClient); ok {
			ct = pc.ForClient(c)
		}
		wg.Go(func() {
			for j := range readKeys {
				key, v := readKey(cfg, c, j)
				if err := ct.Put(ctx, key, v); err != nil {
					errs[c] = fmt.Errorf("bench: writing the keys to read: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readClient is client c of a read load: it GETs its keys in turn until ctx ends, and
// counts a wrong value as a failure.
func readClient(ctx context.Context, cfg Config, t Target, c int, start time.Time) loadTally {
	var tally loadTally
	for i := 0; ctx.Err() == nil; i++ {
		key, want := readKey(cfg, c, i%readKeys)
		t0 := time.Now()
		got, ok, err := t.Get(ctx, key)
		if ctx.Err() != nil {
			break
		}
		if err == nil && (!ok || !bytes.Equal(got, want)) {
			err = fmt.Errorf("GET %s: found %v, %d bytes %.20q, want %.20q", key, ok, len(got), got, want)
		}
		if err != nil {
			tally.fail(err)
			continue
		}
		tally.ack(t0, start)
	}
	return tally
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
