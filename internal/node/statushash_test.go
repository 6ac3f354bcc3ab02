package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/guesttest"
)

// The state hash a status carries: none (hash=0); the checked one by default, which
// hashes nothing for the request (a lone CoServer compares nothing and has none); the
// live one only with the manager token, at the index it answers with. Unknown values:
// 400 on the v1 paths, the checked hash on the originals.
func TestStatusHashModes(t *testing.T) {
	const token = "manager-secret-0123456789"
	c, err := Start(context.Background(), Config{
		Name: "coserver1", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Simplex: true, ManagerToken: token,
		GuestName: "kv", Guest: guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv"),
		Engine: testEngine(t), Manager: testManager, Gateway: testGateway,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, _ := httpDo(t, "PUT", c.GatewayURL()+"/kv/a", "1"); code != 204 {
		t.Fatalf("PUT = %d", code)
	}
	get := func(path, auth string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", c.GatewayURL()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, tc := range []struct {
		path, auth string
		code       int
		hash       bool
		want       string // in the body
	}{
		{"/ftvs/v1/status", "", 200, false, `"applied_index"`}, // checked: none on a lone CoServer
		{"/ftvs/v1/status?hash=1", "", 200, false, `"applied_index"`},
		{"/ftvs/status?hash=yes", "", 200, false, `"applied_index"`},
		{"/ftvs/v1/status?hash=0", "", 200, false, `"applied_index"`},
		{"/ftvs/v1/status?hash=live", "", 401, false, `{"error":"missing credentials: GET /ftvs/v1/status?hash=live`},
		{"/ftvs/v1/status?hash=live", "Bearer wrong", 401, false, `"error":"wrong token`},
		{"/ftvs/status?hash=live", "", 401, false, `Authorization: Bearer TOKEN`},
		{"/ftvs/cluster?hash=live", "", 401, false, `manager token`},
		{"/ftvs/v1/cluster?hash=live", "", 401, false, `manager token`},
		{"/ftvs/v1/virtual-server?hash=live", "", 401, false, `manager token`},
		{"/ftvs/v1/members?hash=2", "", 400, false, `use 1 (the hash computed at the last comparison point, the default), 0 (none: cheaper) or live`},
		{"/ftvs/v1/status?hash=live", "Bearer " + token, 200, true, `"state_hash_index"`},
		{"/ftvs/status?hash=live", "Bearer " + token, 200, true, `"state_hash_index"`},
	} {
		code, hdr, body := get(tc.path, tc.auth)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s (auth %q): %d %s, want %d with %s", tc.path, tc.auth, code, body, tc.code, tc.want)
			continue
		}
		if code == 401 && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate", tc.path)
		}
		if code != 200 {
			continue
		}
		var st cluster.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("GET %s: %v: %s", tc.path, err, body)
		}
		if (st.StateHash != "") != tc.hash || (st.StateHashIndex != 0) != tc.hash || tc.hash && st.StateHashIndex != st.AppliedIndex {
			t.Errorf("GET %s: state_hash %q at %d, applied %d; want a hash: %v (at the applied index)", tc.path, st.StateHash, st.StateHashIndex, st.AppliedIndex, tc.hash)
		}
	}
	// In process: the live hash is the state's at the index it reports.
	a, b := c.Status(cluster.HashLive), c.Status(cluster.HashLive)
	if a.StateHash == "" || a.StateHash != b.StateHash || a.StateHashIndex != a.AppliedIndex {
		t.Fatalf("live hashes %q at %d, %q at %d; applied %d", a.StateHash, a.StateHashIndex, b.StateHash, b.StateHashIndex, a.AppliedIndex)
	}
}

// checkStatusHashes: on a quiet pair (only check entries appended, which change no
// guest state), each CoServer's checked hash is its checker's, at or below its applied
// index, and equals the live state's hash; both CoServers' checked hashes are equal.
func (c *testCluster) checkStatusHashes() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var last string
		var hashes []string
		for _, name := range []string{"coserver1", "coserver2"} {
			m := c.m[name]
			before := m.div.Stats().LatestIndex
			st, live := m.Status(cluster.HashChecked), m.Status(cluster.HashLive)
			switch {
			case st.StateHash == "" || st.StateHashIndex < before || st.StateHashIndex > st.AppliedIndex:
				last = fmt.Sprintf("%s: checked hash %q at %d (checker's latest was at %d), applied %d", name, st.StateHash, st.StateHashIndex, before, st.AppliedIndex)
			case live.StateHash != st.StateHash:
				last = fmt.Sprintf("%s: checked hash %s at %d, live %s at %d", name, st.StateHash, st.StateHashIndex, live.StateHash, live.StateHashIndex)
			}
			hashes = append(hashes, st.StateHash)
		}
		if last == "" && hashes[0] != hashes[1] {
			last = fmt.Sprintf("checked hashes differ: %v", hashes)
		}
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal(last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
