package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
)

// newSQLiteCluster is a cluster whose CoServers run the SQLite example, once duplex.
func newSQLiteCluster(t *testing.T) *cluster {
	t.Helper()
	wasm, err := filepath.Abs("../examples/sqlite/sqlite.wasm")
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, "--guest", wasm)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	return c
}

// sqlExec runs SQL through a gateway's POST /exec until it is answered 200. Only
// statements that may run twice belong here: an answer lost to a failover is sent again.
func sqlExec(t *testing.T, gateway, sql string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, _, err := send("POST", gateway+"/exec", []byte(sql))
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) || code == http.StatusBadRequest {
			t.Fatalf("POST %s/exec %q: %d %s %v", gateway, sql, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sqlQuery runs a query through a gateway and returns its rows as JSON text.
func sqlQuery(t *testing.T, gateway, sql string) string {
	t.Helper()
	code, body, _, err := send("POST", gateway+"/query", []byte(sql))
	var rows struct {
		Rows json.RawMessage `json:"rows"`
	}
	if err != nil || code != http.StatusOK || json.Unmarshal(body, &rows) != nil {
		t.Fatalf("POST %s/query %q: %d %s %v", gateway, sql, code, body, err)
	}
	return string(rows.Rows)
}

// The SQLite example (real SQLite, a C guest) as the virtual server of a real pair:
// rows written through both gateways with random(), randomblob() and datetime('now')
// leave both CoServers in the same state, and a SIGKILL of the leader loses no
// acknowledged row.
func TestSQLiteGuestPair(t *testing.T) {
	t.Parallel()
	c := newSQLiteCluster(t)
	gw := c.gateways()
	sqlExec(t, gw[0], "CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, r INTEGER, b BLOB, at TEXT)")
	insert := func(gateway string, i int) {
		sqlExec(t, gateway, fmt.Sprintf("INSERT OR IGNORE INTO t VALUES ('row%03d', random(), randomblob(8), datetime('now'))", i))
	}
	for i := range 20 {
		insert(gw[i%2], i)
	}
	// The same state on both CoServers means the same random and time values.
	c.waitConverged(convergeTimeout)

	leader := c.leaderCoServer()
	c.kill(leader)
	survivor := c.url(otherCoServer(leader))
	for i := 20; i < 30; i++ {
		insert(survivor, i)
	}
	c.restart(leader)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)

	const keys = "SELECT json_group_array(k) FROM (SELECT k FROM t ORDER BY k)"
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("row%03d", i))
	}
	for _, g := range gw {
		var got [][]string
		if err := json.Unmarshal([]byte(sqlQuery(t, g, keys)), &got); err != nil || len(got) != 1 {
			t.Fatalf("keys through %s: %v %v", g, got, err)
		}
		var ks []string
		if err := json.Unmarshal([]byte(got[0][0]), &ks); err != nil || !slices.Equal(ks, want) {
			t.Fatalf("keys through %s = %v %v, want row000..row029", g, ks, err)
		}
	}
	const values = "SELECT k, r, hex(b), at FROM t ORDER BY k"
	if a, b := sqlQuery(t, gw[0], values), sqlQuery(t, gw[1], values); a != b {
		t.Fatalf("the gateways answer differently:\n%s\n%s", a, b)
	}
}
