package vserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

const (
	kv2Guest        = "github.com/ftvs/ftvs/examples/kv2"
	trapImportGuest = "github.com/ftvs/ftvs/internal/testguest/trapimport"
	unhealthyGuest  = "github.com/ftvs/ftvs/internal/testguest/unhealthy"
	trapsAfterGuest = "github.com/ftvs/ftvs/internal/testguest/trapsafter"
)

// replicas applies the same entries to two servers and checks they stay identical.
type replicas struct {
	t    *testing.T
	a, b *vserver.Server
	next uint64
}

func newReplicas(t *testing.T) *replicas {
	r := &replicas{t: t, a: newServer(t, vm.Config{}), b: newServer(t, vm.Config{}), next: 2}
	kv := guesttest.Build(t, kvGuest)
	install(t, r.a, "kv", kv)
	install(t, r.b, "kv", kv)
	return r
}

// apply applies one entry to both replicas and returns a's result; the results and
// state hashes must agree.
func (r *replicas) apply(kind entry.Kind, payload []byte) vserver.Result {
	r.t.Helper()
	in := vserver.Input{Index: r.next, TimeNanos: t0 + int64(r.next)*int64(time.Millisecond), Entry: entry.Entry{Kind: kind, Seed: [32]byte{byte(r.next), 7}, Payload: payload}}
	r.next++
	ra, rb := r.a.Apply(context.Background(), in), r.b.Apply(context.Background(), in)
	if !bytes.Equal(ra.Response, rb.Response) || fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
		r.t.Fatalf("entry %d: replicas disagree: %q %v / %q %v", in.Index, ra.Response, ra.Err, rb.Response, rb.Err)
	}
	if hash(r.t, r.a) != hash(r.t, r.b) {
		r.t.Fatalf("entry %d: state hashes differ", in.Index)
	}
	return ra
}

func (r *replicas) request(format string, args ...any) vserver.Result {
	r.t.Helper()
	return r.apply(entry.KindRequest, []byte(fmt.Sprintf(format, args...)))
}

func (r *replicas) put(key, value string) {
	r.t.Helper()
	res := r.request("PUT /kv/%s HTTP/1.1\r\nHost: vs\r\nContent-Length: %d\r\n\r\n%s", key, len(value), value)
	if res.Err != nil || !bytes.HasPrefix(res.Response, []byte("HTTP/1.1 204")) {
		r.t.Fatalf("PUT %s: %q %v", key, res.Response, res.Err)
	}
}

// get returns the response to GET /kv/key.
func (r *replicas) get(key string) string {
	r.t.Helper()
	res := r.request("GET /kv/%s HTTP/1.1\r\nHost: vs\r\n\r\n", key)
	if res.Err != nil {
		r.t.Fatalf("GET %s: %v", key, res.Err)
	}
	return string(res.Response)
}

func (r *replicas) update(name, version, pkg string) vserver.Result {
	r.t.Helper()
	p, err := vserver.EncodeUpdatePayload(vserver.UpdatePayload{Name: name, Version: version, Wasm: guesttest.Build(r.t, pkg),
		RollbackAfterTraps: vserver.DefaultRollbackAfterTraps, Probation: 10})
	if err != nil {
		r.t.Fatal(err)
	}
	return r.apply(entry.KindUpdate, p)
}

func wantValue(t *testing.T, resp, value string) {
	t.Helper()
	if !strings.HasPrefix(resp, "HTTP/1.1 200") || !strings.HasSuffix(resp, "\r\n\r\n"+value) {
		t.Fatalf("response %q, want 200 with body %q", resp, value)
	}
}

// kv → kv2 (values gain a creation time) carries every value across, identically on
// both replicas; kv2's own writes survive a rollback to kv; the rollback can be undone.
func TestUpdateAndRollback(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	r := newReplicas(t)
	for i := range 50 {
		r.put(fmt.Sprintf("k%02d", i), fmt.Sprintf("v1-%d", i))
	}
	if res := r.update("kv", "2.0.0", kv2Guest); res.Err != nil {
		t.Fatalf("update to kv2: %v", res.Err)
	}
	if m := r.a.Module(); m == nil || r.a.ModuleVersion() != "2.0.0" || len(r.a.History()) != 1 || !r.a.OnProbation() {
		t.Fatalf("after the update: module %v version %q history %d probation %v", m, r.a.ModuleVersion(), len(r.a.History()), r.a.OnProbation())
	}
	resp := r.get("k07")
	wantValue(t, resp, "v1-7")
	if !strings.Contains(resp, "X-Kv-Version: 2") || !strings.Contains(resp, "X-Created-At: ") {
		t.Fatalf("kv2 should answer with its headers: %q", resp)
	}
	r.put("k07", "v2-7")
	r.put("new", "from-v2")

	before := hash(t, r.a)
	if res := r.apply(entry.KindRollback, nil); res.Err != nil {
		t.Fatalf("rollback: %v", res.Err)
	}
	if r.a.ModuleVersion() != "" || hash(t, r.a) == before {
		t.Fatalf("after the rollback: version %q", r.a.ModuleVersion())
	}
	wantValue(t, r.get("k07"), "v2-7")
	wantValue(t, r.get("new"), "from-v2")
	wantValue(t, r.get("k49"), "v1-49")
	if strings.Contains(r.get("k07"), "X-Kv-Version") {
		t.Fatal("kv still answers like kv2 after the rollback")
	}
	// The rollback can itself be rolled back: kv2 is in the history now.
	if res := r.apply(entry.KindRollback, nil); res.Err != nil || r.a.ModuleVersion() != "2.0.0" {
		t.Fatalf("rollback of the rollback: %v, version %q", res.Err, r.a.ModuleVersion())
	}
	wantValue(t, r.get("new"), "from-v2")
}

// An update whose module traps in its import, or fails its health check in the
// rehearsal, changes nothing: same module, same state hash.
func TestUpdateRefused(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	r := newReplicas(t)
	r.put("a", "1")
	mod, before := r.a.Module(), hash(t, r.a)

	res := r.update("bad", "1.0.0", trapImportGuest)
	var trap *vm.TrapError
	if !errors.Is(res.Err, vserver.ErrUpdate) || !errors.As(res.Err, &trap) {
		t.Fatalf("update to a module that traps in import: %v, want ErrUpdate and a trap", res.Err)
	}
	if r.a.Module() != mod || hash(t, r.a) != before || len(r.a.History()) != 0 {
		t.Fatal("a refused update changed the virtual server")
	}
	wantValue(t, r.get("a"), "1")
	if res := r.apply(entry.KindRollback, nil); !errors.Is(res.Err, vserver.ErrUpdate) || !strings.Contains(res.Err.Error(), "no earlier module") {
		t.Fatalf("rollback without history: %v", res.Err)
	}
	if res := r.update("kv", "1.0.0", kvGuest); !errors.Is(res.Err, vserver.ErrSameModule) {
		t.Fatalf("update to the running module: %v", res.Err)
	}

	// Rehearsals on a copy: kv2 passes with its health check; unhealthy and
	// trapimport fail; the live server is untouched throughout.
	ctx := context.Background()
	after := hash(t, r.a)
	c, err := r.a.CopyState()
	if err != nil {
		t.Fatal(err)
	}
	load := func(name, pkg string) *vm.Module {
		m, err := r.a.Engine().Load(ctx, name, guesttest.Build(t, pkg), wasm.NewestMetering)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	rh, err := vserver.Rehearse(ctx, c, load("kv", kv2Guest))
	if err != nil || !strings.Contains(rh.Health, "200") || rh.StateHash == "" {
		t.Fatalf("rehearsal of kv2: %+v %v", rh, err)
	}
	if _, err := vserver.Rehearse(ctx, c, load("unhealthy", unhealthyGuest)); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("rehearsal of an unhealthy module: %v", err)
	}
	if _, err := vserver.Rehearse(ctx, c, load("bad", trapImportGuest)); err == nil || !strings.Contains(err.Error(), "exited with code 3") {
		t.Fatalf("rehearsal of a module that traps in import: %v", err)
	}
	if r.a.Module() != mod || hash(t, r.a) != after {
		t.Fatalf("a rehearsal changed the virtual server: module %v/%v", r.a.Module() != mod, hash(t, r.a) != after)
	}
}

// A module that passes the switch but traps on RollbackAfterTraps consecutive entries
// while on probation is rolled back by every replica at the same entry, and the state
// carried back is the one it had.
func TestAutomaticRollback(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	r := newReplicas(t)
	r.put("a", "1")
	if res := r.update("bad", "9.9.9", trapsAfterGuest); res.Err != nil {
		t.Fatalf("update to trapsafter: %v", res.Err)
	}
	for i := range vserver.DefaultRollbackAfterTraps {
		// Payloads of several lengths (32 bytes is the size of a rollback target).
		res := r.request("GET /kv/a?n=%d HTTP/1.1\r\nHost: vs\r\n\r\n", i*100)
		var trap *vm.TrapError
		if !errors.As(res.Err, &trap) {
			t.Fatalf("request %d under trapsafter: %v, want a trap", i, res.Err)
		}
	}
	if r.a.Module().Name != "kv" || r.a.OnProbation() {
		t.Fatalf("no automatic rollback: running %s, probation %v", r.a.Module().Name, r.a.OnProbation())
	}
	wantValue(t, r.get("a"), "1")
}

// A snapshot taken after an update carries the history and the probation: a replica
// restored from it rolls back exactly like the one it was taken from.
func TestSnapshotCarriesHistory(t *testing.T) {
	testenv.SkipUnderRace(t) // one goroutine: see vserver_test.go
	r := newReplicas(t)
	r.put("a", "1")
	if res := r.update("kv", "2.0.0", kv2Guest); res.Err != nil {
		t.Fatal(res.Err)
	}
	snap, err := r.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	read, err := vserver.ReadSnapshot(&buf, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	c := newServer(t, vm.Config{})
	if err := c.Restore(context.Background(), read); err != nil {
		t.Fatal(err)
	}
	if c.ModuleVersion() != "2.0.0" || len(c.History()) != 1 || !c.OnProbation() || hash(t, c) != hash(t, r.a) {
		t.Fatalf("restored: version %q history %d probation %v", c.ModuleVersion(), len(c.History()), c.OnProbation())
	}
	in := vserver.Input{Index: r.next, TimeNanos: t0 + int64(r.next)*int64(time.Millisecond), Entry: entry.Entry{Kind: entry.KindRollback, Seed: [32]byte{9}}}
	ra, rc := r.a.Apply(context.Background(), in), c.Apply(context.Background(), in)
	if ra.Err != nil || rc.Err != nil || hash(t, r.a) != hash(t, c) {
		t.Fatalf("rollback on the original (%v) and the restored replica (%v) differ", ra.Err, rc.Err)
	}
}

// The update payload decoder takes any bytes without panicking, and what it accepts
// encodes back to the same bytes.
func FuzzUpdatePayload(f *testing.F) {
	p, _ := vserver.EncodeUpdatePayload(vserver.UpdatePayload{Name: "kv", Version: "2.0.0", Wasm: []byte("\x00asm"), RollbackAfterTraps: 3, Probation: 1000})
	f.Add(p)
	f.Add([]byte{})
	f.Add([]byte{1, 2, 'k', 'v', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := vserver.DecodeUpdatePayload(b)
		if err != nil {
			if !errors.Is(err, entry.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		back, err := vserver.EncodeUpdatePayload(got)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("payload does not round-trip: %v", err)
		}
	})
}
