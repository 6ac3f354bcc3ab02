package bench

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// mapTarget is an in-memory store: the load generator's own test double (what the
// load does is the subject here, not a virtual server). corrupt, when set, is returned
// by every Get instead of the value.
type mapTarget struct {
	mu      sync.Mutex
	m       map[string][]byte
	gets    int
	corrupt []byte
}

func (t *mapTarget) Put(_ context.Context, key string, value []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[key] = append([]byte(nil), value...)
	return nil
}

func (t *mapTarget) Get(_ context.Context, key string) ([]byte, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gets++
	if t.corrupt != nil {
		return t.corrupt, true, nil
	}
	v, ok := t.m[key]
	return v, ok, nil
}

// A read load writes each client's keys first, then only reads them, and counts a
// wrong value as a failure.
func TestReadLoad(t *testing.T) {
	tg := &mapTarget{m: map[string][]byte{}}
	res, err := RunTarget(context.Background(), Config{Clients: 3, Duration: 50 * time.Millisecond, ValueSize: 8, Reads: true}, tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.m) != 3*readKeys || res.OK == 0 || res.Failed != 0 || res.OK > tg.gets {
		t.Fatalf("%d keys written, %v, %d gets", len(tg.m), res, tg.gets)
	}
	tg.corrupt = []byte("wrong")
	res, err = RunTarget(context.Background(), Config{Clients: 1, Duration: 20 * time.Millisecond, ValueSize: 8, Reads: true}, tg)
	if err != nil || res.OK != 0 || res.Failed == 0 || !strings.Contains(res.FirstErr, `want "bench-0-r`) {
		t.Fatalf("reads of wrong values: %v, %v", res, err)
	}
}

// idemTarget keeps the rule of ftvs's Idempotency-Keys (the key is the write's key): a
// key sent again with another value is refused with 422, for good.
type idemTarget struct {
	mapTarget
	puts int
}

func (t *idemTarget) Put(ctx context.Context, key string, value []byte) error {
	t.mu.Lock()
	t.puts++
	old, seen := t.m[key]
	t.mu.Unlock()
	if seen && string(old) != string(value) {
		return &StatusError{Request: "PUT /kv/" + key, Code: 422, Status: "422 Unprocessable Entity", Body: "Idempotency-Key was first sent with another request"}
	}
	return t.mapTarget.Put(ctx, key, value)
}

// Two runs that keep their writes (bench --failover twice on one cluster) use keys of
// their own: the second is not refused for the first one's Idempotency-Keys (it was:
// 0 writes acknowledged, every write retried with 422 until the run ended).
func TestKeptRunsUseKeysOfTheirOwn(t *testing.T) {
	tgt := &idemTarget{mapTarget: mapTarget{m: map[string][]byte{}}}
	// The fault time is at the very start of a run 500x as long: a run of 100 ms with
	// the fault at 10 ms ended before the fault's timer fired on a busy machine (CI).
	cfg := Config{Clients: 2, Duration: 500 * time.Millisecond, ValueSize: 64}
	for run := range 2 {
		res, fr, err := RunWithFault(context.Background(), cfg, tgt, time.Millisecond, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK == 0 || res.Failed != 0 || res.Retries != 0 || fr.Lost != 0 {
			t.Fatalf("run %d: %d acknowledged, %d failed, %d retried, %d lost (first error %q): want acknowledged writes only", run, res.OK, res.Failed, res.Retries, fr.Lost, res.FirstErr)
		}
	}
}

// A write refused for good (a 4xx other than 408, 425, 429) is counted as failed at once,
// not sent again until the run ends.
func TestPermanentRefusalIsNotRetried(t *testing.T) {
	tgt := &idemTarget{mapTarget: mapTarget{m: map[string][]byte{}}}
	cfg := Config{Clients: 1, Duration: 50 * time.Millisecond, ValueSize: 64, KeyPrefix: "fixed"}
	tgt.m["fixed-0-0"] = []byte("another value")
	res, _, err := RunWithFault(context.Background(), cfg, tgt, 10*time.Millisecond, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed < 1 || res.Retries != 0 || !strings.Contains(res.FirstErr, "422") {
		t.Fatalf("%d failed, %d retried, first error %q: want the 422 counted as a failure, not retried", res.Failed, res.Retries, res.FirstErr)
	}
	if res.OK == 0 {
		t.Fatalf("no write acknowledged after the refused one (%d attempts in all)", tgt.puts)
	}
}
