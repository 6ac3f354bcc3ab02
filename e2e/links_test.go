package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/config"
)

// linkFault asks member on to cut or restore its link(s) to peer (link a, b or both),
// through the fault-injection API with the cluster's manager token.
func (c *cluster) linkFault(on, peer, link, action string) error {
	tok, err := os.ReadFile(filepath.Join(c.dir, "manager.token"))
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/ftvs/v1/faults/link?peer=%s&link=%s&action=%s", c.url(on), peer, link, action)
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s link %s to %s: %s %s", action, on, link, peer, resp.Status, b)
	}
	return nil
}

// cutFor cuts link(s) between member on and every other member, waits, and restores.
func cutFor(who func(*cluster) (string, error), link string, d time.Duration) func(*cluster, func(string, ...any)) error {
	return func(c *cluster, logf func(string, ...any)) error {
		on, err := who(c)
		if err != nil {
			return err
		}
		var peers []string
		for _, n := range config.MemberNames {
			if n != on {
				peers = append(peers, n)
			}
		}
		for _, p := range peers {
			if err := c.linkFault(on, p, link, "cut"); err != nil {
				return err
			}
		}
		logf("cut link %s between %s and %v", link, on, peers)
		end := time.Now().Add(d)
		if link == "both" && on != config.Witness {
			// The isolated CoServer drops out: the other side runs simplex without it.
			v, err := c.waitModeVia(ftcluster.ModeSimplex, d, otherCoServer(on))
			if err != nil {
				return fmt.Errorf("with %s cut off, %s's view never became simplex: %v", on, otherCoServer(on), err)
			}
			logf("%s dropped out: %s sees %s, unreachable %v", on, otherCoServer(on), v.Mode, v.Unreachable)
		}
		time.Sleep(time.Until(end))
		for _, p := range peers {
			if err := c.linkFault(on, p, link, "restore"); err != nil {
				return err
			}
		}
		logf("restored link %s of %s", link, on)
		return nil
	}
}

// leaderWatch polls every member's status and records any moment at which two members
// lead in the same term (split brain), and every leader seen.
type leaderWatch struct {
	mu      sync.Mutex
	leaders map[string]bool
	split   []string
	stop    chan struct{}
	done    chan struct{}
}

func watchLeaders(c *cluster) *leaderWatch {
	w := &leaderWatch{leaders: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			byTerm := map[uint64][]string{}
			for _, n := range config.MemberNames {
				st, err := c.memberStatus(n, false)
				if err == nil && st.Role == ftcluster.RoleLeader {
					byTerm[st.Term] = append(byTerm[st.Term], n)
				}
			}
			w.mu.Lock()
			for term, ls := range byTerm {
				for _, l := range ls {
					w.leaders[l] = true
				}
				if len(ls) > 1 {
					w.split = append(w.split, fmt.Sprintf("term %d: %v", term, ls))
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *leaderWatch) finish() (leaders []string, split []string) {
	close(w.stop)
	<-w.done
	for l := range w.leaders {
		leaders = append(leaders, l)
	}
	return leaders, w.split
}

// Link faults under load, checked with porcupine. While one link remains, nothing
// fails: not a request, not an acknowledged write, and the leader does not change.
// With both links of a CoServer cut, it drops out and the cluster runs simplex; no two
// members ever lead in the same term; restored, it syncs back to duplex.
func TestLinkFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		inject    func(*cluster, func(string, ...any)) error
		oneLink   bool     // a link remains: no failure, no election
		wantEvent []string // in some member's output
	}{
		{"cut-a-of-leader", cutFor(theLeader, "a", 1500*time.Millisecond), true,
			[]string{"event=link.redundancy_lost", "link=a", "event=link.redundancy_restored"}},
		{"cut-b-of-follower", cutFor(theFollower, "b", 1500*time.Millisecond), true,
			[]string{"event=link.redundancy_lost", "link=b", "event=link.redundancy_restored"}},
		{"cut-both-of-follower", cutFor(theFollower, "both", 2*time.Second), false,
			[]string{"event=link.all_down"}},
		{"cut-both-of-leader", cutFor(theLeader, "both", 2*time.Second), false,
			[]string{"event=link.all_down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Timers 4x the defaults, in the same ratio (a link is declared down well
			// before a follower would start an election), so that a CI machine loaded by
			// other tests does not turn a link failover into an election by accident.
			timers := []string{"--heartbeat-timeout", "400ms", "--election-timeout", "400ms", "--leader-lease-timeout", "400ms",
				"--link-probe-interval", "40ms", "--link-down-after", "200ms"}
			c := newClusterWith(t, append([]string{"--allow-fault-injection"}, timers...), timers)
			c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
			before, err := c.leaderCoServerErr()
			if err != nil {
				t.Fatal(err)
			}
			w := watchLeaders(c)
			res := chaosUnderFault(t, c, clusterFault{tc.name, tc.inject}, "TestLinkFaults")
			leaders, split := w.finish()
			if len(split) > 0 {
				t.Fatalf("split brain: two members led in the same term: %v", split)
			}
			if tc.oneLink {
				if res.Ambiguous+res.NotApplied+res.FailedReads > 0 {
					t.Fatalf("with one link up, %d requests failed (%d ambiguous writes, %d not applied, %d reads): %v",
						res.Ambiguous+res.NotApplied+res.FailedReads, res.Ambiguous, res.NotApplied, res.FailedReads, res)
				}
				if len(leaders) != 1 || leaders[0] != before {
					t.Fatalf("with one link up the leader changed: was %s, seen %v", before, leaders)
				}
			}
			var out strings.Builder
			for _, n := range config.MemberNames {
				out.WriteString(c.member(n).out.String())
			}
			for _, want := range tc.wantEvent {
				if !strings.Contains(out.String(), want) {
					t.Errorf("no %q in the members' output", want)
				}
			}
		})
	}
}

// Members refuse a peer whose certificate comes from another cluster's CA, and one that
// presents none, and say so in an event. The cluster goes on without it.
func TestForeignCertificateRefused(t *testing.T) {
	c := newCluster(t)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	other := filepath.Join(t.TempDir(), "other")
	if code, out, stderr := ftvs(t, "init", other); code != 0 {
		t.Fatalf("ftvs init %s: %d %s %s", other, code, out, stderr)
	}
	// coserver2 comes back with the other cluster's CA and certificate.
	c.kill(config.CoServer2)
	c.member(config.CoServer2).args = []string{"--tls-dir", filepath.Join(other, "pki")}
	c.restart(config.CoServer2)
	if _, err := c.waitModeVia(ftcluster.ModeSimplex, 15*time.Second, config.CoServer1); err != nil {
		t.Fatalf("with coserver2 refused, coserver1 should run simplex: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.member(config.CoServer1).out.String(), "event=link.peer_refused") {
		if time.Now().After(deadline) {
			t.Fatalf("coserver1 logged no link.peer_refused event:\n%s", tail(c.member(config.CoServer1).out.String(), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A client without any certificate: the TLS handshake on link a fails.
	cfg, err := config.Load(filepath.Join(c.dir, "coserver1.toml"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", cfg.Self().LinkA, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Write([]byte("FTVL"))
		if err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
		conn.Close()
	}
	if err == nil {
		t.Fatal("a connection without a client certificate was accepted on link a")
	}
	// Back with the right certificate, coserver2 syncs and the pair is duplex again.
	c.kill(config.CoServer2)
	c.member(config.CoServer2).args = nil
	c.restart(config.CoServer2)
	c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
	c.waitConverged(convergeTimeout)
}
