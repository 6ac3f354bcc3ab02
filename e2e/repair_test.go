package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftvs/ftvs/internal/config"
)

// Damage that no crash explains, in each of a CoServer's stores: the CoServer sets the
// damaged files aside (never deletes them), rejoins, syncs from its peer, and the
// cluster is duplex again with every acknowledged write there, without a person.
// Before this build it refused to start (log), started with a term and vote it could
// not trust (stable store), or panicked in raft (newest snapshot, with the log
// compacted past the older one).
func TestCorruptionRepairsItself(t *testing.T) {
	const n = 1500
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, data string)
	}{
		{"raft log", func(t *testing.T, data string) {
			segs, _ := filepath.Glob(filepath.Join(data, "raft", "wal", "seg-*.wal"))
			if len(segs) == 0 {
				t.Fatal("no raft log segment")
			}
			seg := segs[len(segs)-1]
			b, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			off := writtenEnd(t, seg) / 2
			writeAt(t, seg, []byte{b[off] ^ 0x5a}, off)
		}},
		{"stable store", func(t *testing.T, data string) {
			path := filepath.Join(data, "raft", "stable")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeAt(t, path, []byte{b[20] ^ 0x5a}, 20) // a byte in the first slot
		}},
		{"newest snapshot, log compacted past the older one", func(t *testing.T, data string) {
			files := snapshotFiles(t, data)
			if len(files) < 2 {
				t.Fatalf("%d snapshots, want two", len(files))
			}
			corrupt(t, files[0], 2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "--snapshot-threshold", "300", "--snapshot-interval", "200ms", "--trailing-logs", "50")
			c.waitMode("duplex", duplexTimeout)
			putKeys(t, c.gateways(), n)
			c.waitConverged(convergeTimeout)
			data := c.member(config.CoServer2).dataDir
			deadline := time.Now().Add(30 * time.Second)
			for len(snapshotFiles(t, data)) < 2 {
				if time.Now().After(deadline) {
					t.Fatal("coserver2 took fewer than two snapshots")
				}
				time.Sleep(100 * time.Millisecond)
			}
			c.kill(config.CoServer2)
			tc.damage(t, data)
			start := time.Now()
			c.restart(config.CoServer2)
			c.waitMode("duplex", duplexTimeout)
			c.waitConverged(convergeTimeout)
			t.Logf("duplex and converged %s after the restart on damaged storage", time.Since(start).Round(time.Millisecond))
			readKeys(t, c.url(config.CoServer2), n)
			out := c.member(config.CoServer2).out.String()
			for _, ev := range []string{"event=storage.corrupt", "event=member.repairing", "event=member.readded"} {
				if !contains(out, ev) {
					t.Errorf("coserver2 did not report %s", ev)
				}
			}
			if aside, _ := filepath.Glob(filepath.Join(data, "corrupt-*", "REASON.txt")); len(aside) == 0 {
				t.Error("nothing was set aside in corrupt-TIME/")
			}
			for deadline := time.Now().Add(10 * time.Second); !contains(c.member(config.CoServer2).out.String(), "event=member.repaired"); {
				if time.Now().After(deadline) {
					t.Fatal("coserver2 did not report member.repaired")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
