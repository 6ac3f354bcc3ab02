package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/gateway"
	"github.com/ftvs/ftvs/internal/guesttest"
	"github.com/ftvs/ftvs/internal/manager"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

func startLone(t *testing.T, dir string, guest []byte, explicit bool) (*CoServer, error) {
	t.Helper()
	return Start(context.Background(), Config{
		Name: "coserver1", DataDir: dir, HTTPAddr: "127.0.0.1:0", Simplex: true,
		GuestName: "kv", Guest: guest, GuestExplicit: explicit,
		Engine: testEngine(t), Gateway: testGateway,
	})
}

// testGateway mounts the gateway on a test member, as cmd/ftvs does.
func testGateway(m *Member) (http.Handler, error) {
	return gateway.New(gateway.Config{Cluster: m, MaxRequestBytes: m.MaxRequestBytes(),
		ProposeTimeout: m.ProposeTimeout(), Logger: m.Logger(), ClientToken: m.ClientToken()})
}

// testManager mounts the Manager on a test member, as cmd/ftvs does.
func testManager(m *Member) (http.Handler, error) {
	return manager.Handler(manager.Config{Member: m, Token: m.cfg.ManagerToken, Logger: m.log})
}

// httpDo sends a request over TCP (a lone member's port) and returns the answer's
// status and body.
func httpDo(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	return httpDoWith(t, http.DefaultClient, method, url, body)
}

func httpDoWith(t testing.TB, client *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A lone CoServer in-process: write, snapshot, close, reopen, read; the data dir lock
// refuses a second opener; another explicit guest is refused for an existing data dir.
func TestLoneCoServerLifecycle(t *testing.T) {
	kv := guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv")
	dir := t.TempDir()
	c, err := startLone(t, dir, kv, false)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := httpDo(t, "PUT", c.GatewayURL()+"/kv/a", "1"); code != 204 {
		t.Fatalf("PUT = %d", code)
	}
	if err := c.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpDo(t, "PUT", c.GatewayURL()+"/kv/b", "2"); code != 204 {
		t.Fatalf("PUT = %d", code)
	}
	st := c.Status(cluster.HashLive)
	if st.Role != cluster.RoleLeader || st.Mode != cluster.ModeSimplex || st.VirtualServer != vserver.StatusRunning || st.StateHash == "" || st.LastSnapshotIndex == 0 {
		t.Fatalf("status = %+v", st)
	}
	if _, err := startLone(t, dir, kv, false); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second opener: %v, want ErrDataDirInUse", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err := Inspect(context.Background(), dir, vm.Config{CacheDir: guesttest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.AppliedIndex != st.AppliedIndex || rep.StateHash != st.StateHash || rep.LastSnapshotIndex != st.LastSnapshotIndex {
		t.Fatalf("inspect = %+v, status was %+v", rep, st)
	}

	other := guesttest.Build(t, "github.com/ftvs/ftvs/internal/testguest")
	if _, err := startLone(t, dir, other, true); err == nil || !strings.Contains(err.Error(), "changes its module only by an update") {
		t.Fatalf("another explicit guest: %v", err)
	}
	c, err = startLone(t, dir, kv, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for key, want := range map[string]string{"a": "1", "b": "2"} {
		if code, body := httpDo(t, "GET", c.GatewayURL()+"/kv/"+key, ""); code != 200 || body != want {
			t.Fatalf("GET %s = %d %q", key, code, body)
		}
	}
	if got := c.Status(cluster.HashLive); got.StateHash == st.StateHash || got.AppliedIndex <= st.AppliedIndex {
		// the GETs above are entries too: the state moved on
		t.Fatalf("status after reads = %+v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: "d", HTTPAddr: "x", Simplex: true, Guest: []byte{1}}, "member name"},
		{Config{Name: "c", HTTPAddr: "x", Simplex: true, Guest: []byte{1}}, "--data"},
		{Config{Name: "c", DataDir: "d", Simplex: true, Guest: []byte{1}}, "--http"},
		{Config{Name: "c", DataDir: "d", HTTPAddr: "x", Guest: []byte{1}}, "--simplex"},
		{Config{Name: "c", DataDir: "d", HTTPAddr: "x", Simplex: true}, "guest"},
	} {
		if _, err := Start(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) = %v, want it to mention %q", tc.cfg, err, tc.want)
		}
	}
}
