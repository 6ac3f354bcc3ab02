package vserver_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/testenv"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
	"github.com/ftvs/ftvs/internal/wasm"
)

// Tick entries run the guest's tick export at their index and time: the kv example
// removes keys whose TTL ran out at the first tick after it, reads stop seeing them
// from the moment it ran out, and two servers (compiler, interpreter) fed the same
// entries, ticks included, answer the same and end in the same state.
func TestTicksExpireKeys(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := guesttest.Build(t, kvGuest)
	servers := []*vserver.Server{newServer(t, vm.Config{}), newServer(t, vm.Config{Interpreter: true})}
	for _, s := range servers {
		install(t, s, "kv", bin)
	}
	sec := int64(time.Second)
	tick := entry.Entry{Kind: entry.KindTick}
	steps := []struct {
		at   int64 // seconds after t0
		e    entry.Entry
		want string // status line and the start of the body
	}{
		{1, request("PUT", "/kv/short?ttl=2s", "a", 1), "204"},
		{1, request("PUT", "/kv/long?ttl=1h", "b", 2), "204"},
		{1, request("PUT", "/kv/forever", "c", 3), "204"},
		{1, request("PUT", "/kv/bad?ttl=-1s", "d", 4), "400 ttl -1s: give a positive duration"},
		{2, tick, ""},
		{2, request("GET", "/kv/short", "", 5), "200 a"},
		{3, request("GET", "/stats", "", 6), `200 {"expired":0,"expiring":2,"keys":3,"last_tick":"2026-11-25T12:00:02`},
		{4, request("GET", "/kv/short", "", 7), "404"}, // expired, not yet removed
		{4, request("GET", "/kv?prefix=", "", 8), `200 ["forever","long"]`},
		{5, tick, ""},
		{5, request("GET", "/stats", "", 9), `200 {"expired":1,"expiring":1,"keys":2,"last_tick":"2026-11-25T12:00:05`},
		{6, request("PUT", "/kv/long", "b2", 10), "204"}, // a put without ttl: no longer expires
		{3700, tick, ""},
		{3700, request("GET", "/kv/long", "", 11), "200 b2"},
		{3700, request("GET", "/stats", "", 12), `200 {"expired":1,"expiring":0,"keys":2,"last_tick":"2026-11-25T13:01:40`},
	}
	for i, st := range steps {
		var answers []string
		for _, s := range servers {
			res := s.Apply(context.Background(), vserver.Input{Index: uint64(i + 2), TimeNanos: t0 + st.at*sec, Entry: st.e})
			if res.Err != nil {
				t.Fatalf("step %d (%s): %v", i, st.e.Kind, res.Err)
			}
			answers = append(answers, summary(res.Response))
		}
		if answers[0] != answers[1] {
			t.Fatalf("step %d: the servers answer differently:\n%s\n%s", i, answers[0], answers[1])
		}
		if !strings.HasPrefix(answers[0], st.want) {
			t.Fatalf("step %d: %q, want %q...", i, answers[0], st.want)
		}
	}
	if hash(t, servers[0]) != hash(t, servers[1]) {
		t.Fatal("the same entries, ticks included, left the servers in different states")
	}
}

// summary is a response's status code and body ("" for none).
func summary(resp []byte) string {
	if resp == nil {
		return ""
	}
	head, body, _ := strings.Cut(string(resp), "\r\n\r\n")
	code := strings.Fields(head)[1]
	return strings.TrimSpace(code + " " + body)
}

// The kv example carries its TTLs across a module update (export, import): a key
// keeps expiring at the same time in the new module.
func TestTTLSurvivesStateTransfer(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	bin := guesttest.Build(t, kvGuest)
	e, err := vm.NewEngine(context.Background(), vm.Config{CacheDir: guesttest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	m, err := e.Load(context.Background(), "kv", bin, wasm.NewestMetering)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *vm.Instance {
		in, err := m.Start(context.Background(), [32]byte{1}, t0)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	old := start()
	if _, _, err := old.Handle(context.Background(), 2, t0, [32]byte{}, request("PUT", "/kv/k?ttl=10s", "v", 0).Payload); err != nil {
		t.Fatal(err)
	}
	state, err := old.ExportState(context.Background(), 3, t0, [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Expires map[string]int64 `json:"expires"`
	}
	if err := json.Unmarshal(state, &doc); err != nil || doc.Expires["k"] == 0 {
		t.Fatalf("exported state %s: %v", state, err)
	}
	fresh := start()
	if err := fresh.ImportState(context.Background(), 3, t0, [32]byte{}, state); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   int64
		want string
	}{{9, "200 v"}, {11, "404"}} {
		out, _, err := fresh.Handle(context.Background(), uint64(3+c.at), t0+c.at*int64(time.Second), [32]byte{}, request("GET", "/kv/k", "", 0).Payload)
		if err != nil || !strings.HasPrefix(summary(out), c.want) {
			t.Fatalf("GET /kv/k %d s after the put, in the new module: %q %v, want %s", c.at, summary(out), err, c.want)
		}
	}
}
