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
