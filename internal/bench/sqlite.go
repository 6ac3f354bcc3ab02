package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The SQLite example guest (examples/sqlite) as a key-value store: a write is one
// INSERT OR REPLACE of a row into table ftvs_bench through POST /exec, a read a SELECT
// of it through POST /query, both with the key and value as JSON arguments.

const (
	sqliteTable  = "CREATE TABLE IF NOT EXISTS ftvs_bench(k TEXT PRIMARY KEY, v TEXT NOT NULL)"
	sqliteInsert = "INSERT OR REPLACE INTO ftvs_bench(k, v) VALUES (?, ?)"
	sqliteSelect = "SELECT v FROM ftvs_bench WHERE k = ?"
)

// sqlitePost sends {"sql": sql, "args": args} to base+path (with an Idempotency-Key
// when idem is not empty) and decodes the 200 answer into out. Another answer is a
// StatusError (a 400 is SQLite's error, with its message: permanent).
func sqlitePost(ctx context.Context, c *http.Client, base, path, sql, idem string, out any, args ...string) error {
	body, err := json.Marshal(struct {
		SQL  string   `json:"sql"`
		Args []string `json:"args,omitempty"`
	}{sql, args})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Request: "POST " + req.URL.String(), Code: resp.StatusCode, Status: resp.Status, Body: string(bytes.TrimSpace(truncate(b, 512)))}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("POST %s: the answer is not the SQLite guest's JSON: %w", req.URL, err)
	}
	return nil
}

// sqlitePut stores value under key, creating the table on the first write.
func (t *HTTPTarget) sqlitePut(ctx context.Context, key string, value []byte) error {
	var res struct {
		Changes int64 `json:"changes"`
	}
	if !t.tableMade.Load() {
		if err := sqlitePost(ctx, t.client(), t.URL, "/exec", sqliteTable, "", &res); err != nil {
			return err
		}
		t.tableMade.Store(true)
	}
	idem := ""
	if t.Idempotent {
		idem = key
	}
	if err := sqlitePost(ctx, t.client(), t.URL, "/exec", sqliteInsert, idem, &res, key, string(value)); err != nil {
		return err
	}
	if res.Changes != 1 {
		return fmt.Errorf("INSERT of %s into %s changed %d rows, want 1", key, t.URL, res.Changes)
	}
	return nil
}

// sqliteGet reads key back.
func (t *HTTPTarget) sqliteGet(ctx context.Context, key string) ([]byte, bool, error) {
	var res struct {
		Rows [][]string `json:"rows"`
	}
	if err := sqlitePost(ctx, t.client(), t.URL, "/query", sqliteSelect, "", &res, key); err != nil {
		return nil, false, err
	}
	if len(res.Rows) == 0 || len(res.Rows[0]) == 0 {
		return nil, false, nil
	}
	return []byte(res.Rows[0][0]), true, nil
}
