package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/alerts"
	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// [alerts]: members POST their error events to the webhook as they happen, with the
// cluster id, the token and what to do; a CoServer killed is reported by the members
// left (link.all_down), and nothing below the severity is sent.
func TestAlertsWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []alerts.Alert
	var auths []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a alerts.Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got, auths = append(got, a), append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer hook.Close()
	token := filepath.Join(t.TempDir(), "alerts.token")
	os.WriteFile(token, []byte("alerts-token-0123456789\n"), 0o600)
	args := []string{"--alerts-webhook-url", hook.URL, "--alerts-token-file", token, "--alerts-min-severity", "error"}
	c := newClusterWith(t, args, args)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.kill(config.CoServer2)
	var downs []alerts.Alert
	deadline := time.Now().Add(20 * time.Second)
	for len(downs) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		downs = downs[:0]
		for _, a := range got {
			if a.Code == "link.all_down" && a.Details["peer"] == config.CoServer2 {
				downs = append(downs, a)
			}
		}
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(downs) < 2 {
		t.Fatalf("the webhook has %d link.all_down alerts for coserver2 (want one from each member left); all: %+v", len(downs), got)
	}
	cfg, err := config.Load(filepath.Join(c.dir, "coserver1.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range got {
		if a.Severity != "error" || a.Cluster != cfg.Cluster || a.Action == "" || a.Seq == 0 || auths[i] != "Bearer alerts-token-0123456789" {
			t.Fatalf("alert %d: %+v (Authorization %q)", i, a, auths[i])
		}
	}
	t.Logf("%d alerts, e.g. %s from %s: %s (action: %s)", len(got), downs[0].Code, downs[0].Member, downs[0].Message, downs[0].Action)
}
