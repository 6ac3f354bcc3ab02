package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
)

// Idempotent retries across a SIGKILL of the leader: clients insert rows into the SQLite
// guest (a table without a unique key, so a request applied twice would leave two rows),
// each request with an Idempotency-Key, and send a request that failed again, through
// the other gateway, until it is acknowledged. At the end every acknowledged request has
// exactly one row, on both CoServers.
func TestIdempotentRetriesAcrossFailover(t *testing.T) {
	t.Parallel()
	c := newSQLiteCluster(t)
	gw := c.gateways()
	sqlExec(t, gw[0], "CREATE TABLE orders(k TEXT, at TEXT)")

	insert := func(gateway, key string) (int, []byte, http.Header, error) {
		req, err := http.NewRequest("POST", gateway+"/exec", bytes.NewReader([]byte(
			fmt.Sprintf(`{"sql": "INSERT INTO orders VALUES (?, datetime('now'))", "args": [%q]}`, key))))
		if err != nil {
			return 0, nil, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := loadClient.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes(), resp.Header, err
	}
	const clients = 8
	var (
		acked, retried, replayed atomic.Int64
		wg                       sync.WaitGroup
		stop                     = make(chan struct{})
	)
	for cl := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("c%d-%04d", cl, i)
				deadline := time.Now().Add(30 * time.Second)
				for attempt := 0; ; attempt++ {
					code, body, h, err := insert(gw[(cl+attempt)%2], key)
					if err == nil && code == http.StatusOK {
						acked.Add(1)
						if h.Get("Idempotent-Replayed") == "true" {
							replayed.Add(1)
						}
						break
					}
					if code == http.StatusBadRequest || time.Now().After(deadline) {
						t.Errorf("insert %s: %d %s %v", key, code, body, err)
						return
					}
					retried.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	leader := c.leaderCoServer()
	c.kill(leader)
	time.Sleep(time.Second)
	c.restart(leader)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
	t.Logf("%d inserts acknowledged, %d attempts sent again, %d answered from the idempotency table", acked.Load(), retried.Load(), replayed.Load())

	for _, g := range gw {
		var counts [][]int64
		if err := json.Unmarshal([]byte(sqlQuery(t, g, "SELECT count(*), count(DISTINCT k) FROM orders")), &counts); err != nil {
			t.Fatal(err)
		}
		if rows, keys := counts[0][0], counts[0][1]; rows != acked.Load() || keys != rows {
			t.Fatalf("through %s: %d rows of %d keys, want one row per acknowledged insert (%d)", g, rows, keys, acked.Load())
		}
	}
}
