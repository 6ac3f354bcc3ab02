package vm_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/examples/sqlite"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/wasm"
)

// The ABI's conformance tests against a guest that is not Go: the SQLite example, the
// real SQLite library and a C shim (examples/sqlite). They show the ABI is language
// neutral: requests and responses, traps and fuel, the abort flag, state export and
// import, health, and the determinism of the clock and randomness.

func startSQLite(t testing.TB, e *vm.Engine, seed byte) *vm.Instance {
	t.Helper()
	m, err := e.Load(context.Background(), "sqlite", sqlite.Module, wasm.NewestMetering)
	if err != nil {
		t.Fatal(err)
	}
	in, err := m.Start(context.Background(), [32]byte{seed}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(context.Background()) })
	return in
}

// sqlRows is a /query answer.
type sqlRows struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

func sqlQuery(t testing.TB, in *vm.Instance, index uint64, sql string) sqlRows {
	t.Helper()
	r := mustCall(t, in, index, "POST", "/query", sql)
	var rows sqlRows
	if r.status != 200 || json.Unmarshal([]byte(r.body), &rows) != nil {
		t.Fatalf("query %q: %d %s", sql, r.status, r.body)
	}
	return rows
}

func TestSQLiteExecAndQuery(t *testing.T) {
	in := startSQLite(t, newEngine(t, vm.Config{}), 1)
	steps := []struct {
		target, body string
		status       int
		want         string // in the body
	}{
		{"/exec", "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB)", 200, `{"changes":0,"last_insert_id":0}`},
		{"/exec", `{"sql": "INSERT INTO t(name, score) VALUES (?, ?)", "args": ["ada", 1.5]}`, 200, `{"changes":1,"last_insert_id":1}`},
		{"/exec", `{"sql": "INSERT INTO t(name, score, data) VALUES (:n, @s, x'00ff')", "args": {"n": "bob \"b\"", "s": 2}}`, 200, `{"changes":1,"last_insert_id":2}`},
		{"/query", "SELECT id, name, score, data, NULL AS nil FROM t ORDER BY id", 200,
			`{"columns":["id","name","score","data","nil"],"rows":[[1,"ada",1.5,null,null],[2,"bob \"b\"",2.0,"AP8=",null]]}`},
		// A failed statement undoes every statement of its request.
		{"/exec", "INSERT INTO t(name) VALUES ('cy'); INSERT INTO t(name) VALUES ('ada')", 400, "UNIQUE constraint failed: t.name"},
		{"/exec", "UPDATE t SET score = 0; SELECT nosuch FROM t", 400, "no such column: nosuch"},
		{"/query", "SELECT count(*), sum(score) FROM t", 200, `"rows":[[2,3.5]]`},
		// Refusals name the problem and change nothing.
		{"/exec", "BEGIN; DELETE FROM t; COMMIT", 400, "each request is one transaction"},
		{"/exec", "ATTACH ':memory:' AS side", 400, "ATTACH and DETACH are not allowed"},
		{"/exec", "PRAGMA journal_mode = OFF", 400, "journal_mode is not allowed"},
		{"/query", "DELETE FROM t", 400, "send this one to /exec"},
		{"/query", "SELECT 1; SELECT 2", 400, "/query runs one statement"},
		{"/exec", `{"sql": "SELECT ?", "args": [[1]]}`, 400, "args[0]: a parameter is a string, number, boolean or null"},
		{"/exec", `{"sql": "SELECT :a", "args": {"b": 1}}`, 400, "args.b: the statement has no parameter"},
		{"/exec", `{"sql": 1}`, 400, `needs \"sql\", a string`},
		{"/query", `{"sql": "SELECT 7", "args": null}`, 200, `"rows":[[7]]`},
		{"/exec", `{"sql": `, 400, "not valid JSON"},
		{"/exec", "  -- nothing\n", 400, "no SQL statement"},
		{"/query", "SELECT count(*) FROM t", 200, `"rows":[[2]]`},
	}
	for i, s := range steps {
		ctype := "text/plain"
		if strings.HasPrefix(s.body, "{") {
			ctype = "application/json"
		}
		raw := []byte("POST " + s.target + " HTTP/1.1\r\nHost: vs\r\nContent-Type: " + ctype + "\r\nContent-Length: " +
			strconv.Itoa(len(s.body)) + "\r\n\r\n" + s.body)
		out, _, err := in.Handle(context.Background(), uint64(i+1), 0, [32]byte{byte(i)}, raw)
		if err != nil {
			t.Fatalf("step %d, %s %q: %v", i, s.target, s.body, err)
		}
		status, body, _ := strings.Cut(string(out), "\r\n\r\n")
		if !strings.HasPrefix(status, "HTTP/1.1 "+strconv.Itoa(s.status)+" ") || !strings.Contains(body, s.want) {
			t.Fatalf("step %d, %s %q:\n%s\n\n%s\nwant %d and %s", i, s.target, s.body, status, body, s.status, s.want)
		}
	}
	if r := mustCall(t, in, 100, "GET", "/exec", ""); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET /exec = %d, Allow %q", r.status, r.header.Get("Allow"))
	}
	if r := mustCall(t, in, 101, "GET", "/nowhere", ""); r.status != 404 {
		t.Fatalf("GET /nowhere = %d", r.status)
	}
	out, _, err := in.Handle(context.Background(), 102, 0, [32]byte{}, []byte("garbage"))
	if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 400 ") {
		t.Fatalf("a malformed request: %q, %v (want 400, no trap)", out, err)
	}
}

// SQLite's random(), randomblob() and datetime('now') come from the entry's seed and
// time, so two CoServers, one compiling the guest and one interpreting it, return the
// same values, and end in the same state.
func TestSQLiteRandomAndTimeAreReplicated(t *testing.T) {
	a := startSQLite(t, newEngine(t, vm.Config{}), 3)
	b := startSQLite(t, newEngine(t, vm.Config{Interpreter: true}), 3)
	const create = "CREATE TABLE r(v INTEGER, blob BLOB, at TEXT)"
	const insert = "INSERT INTO r VALUES (random(), randomblob(16), strftime('%Y-%m-%d %H:%M:%f', 'now'))"
	const query = "SELECT v, hex(blob), at FROM r ORDER BY rowid"
	var answers [2]string
	for k, in := range []*vm.Instance{a, b} {
		mustCall(t, in, 1, "POST", "/exec", create)
		for i := uint64(2); i <= 4; i++ {
			mustCall(t, in, i, "POST", "/exec", insert)
		}
		answers[k] = mustCall(t, in, 5, "POST", "/query", query).body
	}
	if answers[0] != answers[1] {
		t.Fatalf("the CoServers differ:\n%s\n%s", answers[0], answers[1])
	}
	ha, _ := a.StateHash()
	hb, _ := b.StateHash()
	if ha != hb {
		t.Fatal("the same entries left the two instances in different states")
	}
	rows := sqlQuery(t, a, 6, query).Rows
	if rows[0][0] == rows[1][0] || rows[0][1] == rows[1][1] {
		t.Fatalf("two entries with other seeds drew the same random values: %v", rows)
	}
	// call stamps entry i at 2026-01-01 00:00:i; the guest's clock reads at least that.
	if at := rows[2][2].(string); !strings.HasPrefix(at, "2026-01-01 00:00:04.") {
		t.Fatalf("datetime('now') at entry 4 = %q, want the entry's time 2026-01-01 00:00:04", at)
	}
}

func TestSQLiteTrapsAndFuel(t *testing.T) {
	e := newEngine(t, vm.Config{FuelPerEntry: 20_000_000})
	a, b := startSQLite(t, e, 1), startSQLite(t, e, 1)
	var used [2]int64
	for k, in := range []*vm.Instance{a, b} {
		raw := request("POST", "/exec", "CREATE TABLE t(x); INSERT INTO t SELECT value FROM json_each('[1,2,3]')")
		_, fuel, err := in.Handle(context.Background(), 1, 0, [32]byte{}, raw)
		if err != nil {
			t.Fatal(err)
		}
		used[k] = fuel
	}
	if used[0] != used[1] || used[0] == 0 {
		t.Fatalf("the same entry used %d and %d units of fuel", used[0], used[1])
	}
	_, err := call(t, a, 2, "POST", "/query", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
	var trap *vm.TrapError
	if !errors.As(err, &trap) || !trap.OutOfFuel || !a.Dead() {
		t.Fatalf("a query without end: %v (dead %v), want out of fuel and a dead instance", err, a.Dead())
	}
}

// A request that runs out of guest memory half way is answered 500 with the abort
// flag: the host undoes the whole entry.
func TestSQLiteOutOfMemoryAborts(t *testing.T) {
	in := startSQLite(t, newEngine(t, vm.Config{MemoryLimitBytes: 32 << 20}), 1)
	mustCall(t, in, 1, "POST", "/exec", "CREATE TABLE t(b BLOB)")
	r, err := call(t, in, 2, "POST", "/exec", "INSERT INTO t VALUES (randomblob(1000)); INSERT INTO t VALUES (randomblob(100000000))")
	if !errors.Is(err, vm.ErrAborted) || r.status != 500 || !strings.Contains(r.body, "out of guest memory") {
		t.Fatalf("a 100 MB blob in 32 MiB: %d %s, %v; want 500 and ErrAborted", r.status, r.body, err)
	}
	if in.Dead() {
		t.Fatal("an aborted entry must not kill the instance")
	}
}

func TestSQLiteStateTransferAndHealth(t *testing.T) {
	e := newEngine(t, vm.Config{})
	old := startSQLite(t, e, 1)
	mustCall(t, old, 1, "POST", "/exec", "CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER)")
	mustCall(t, old, 2, "POST", "/exec", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO t SELECT 'k' || i, i FROM n")
	state, err := old.ExportState(context.Background(), 3, 0, [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(state), "SQLite format 3\x00") {
		t.Fatalf("the state is not a database file: %q", state[:min(len(state), 16)])
	}
	fresh := startSQLite(t, e, 2)
	if err := fresh.ImportState(context.Background(), 3, 0, [32]byte{}, state); err != nil {
		t.Fatal(err)
	}
	if rows := sqlQuery(t, fresh, 4, "SELECT count(*), sum(v) FROM t").Rows; rows[0][0] != 5000.0 || rows[0][1] != 12502500.0 {
		t.Fatalf("after the import: %v", rows)
	}
	if ok, err := fresh.Health(context.Background(), 5, 0, [32]byte{}); !ok || err != nil {
		t.Fatalf("health: ok=%v err=%v", ok, err)
	}
	bad := startSQLite(t, e, 3)
	err = bad.ImportState(context.Background(), 3, 0, [32]byte{}, []byte("not a database, and long enough to look like a header..............................................................................................."))
	var ge *vm.GuestError
	if !errors.As(err, &ge) {
		t.Fatalf("import of garbage: %v, want the guest's error", err)
	}
	t.Logf("import of garbage: %v", err)
}
