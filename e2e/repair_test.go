package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ftcluster "github.com/ftvs/ftvs/internal/cluster"
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
		name      string
		compacted bool // kill only once the log is compacted past the older snapshot
		damage    func(t *testing.T, data string)
	}{
		{"raft log", false, func(t *testing.T, data string) {
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
		{"stable store", false, func(t *testing.T, data string) {
			path := filepath.Join(data, "raft", "stable")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeAt(t, path, []byte{b[20] ^ 0x5a}, 20) // a byte in the first slot
		}},
		{"newest snapshot, log compacted past the older one", true, func(t *testing.T, data string) {
			files := snapshotFiles(t, data)
			if len(files) < 2 {
				t.Fatalf("%d snapshots, want two", len(files))
			}
			corrupt(t, files[0], 2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "--snapshot-threshold", "300", "--snapshot-interval", "200ms", "--trailing-logs", "50")
			c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
			putKeys(t, c.gateways(), n)
			c.waitConverged(convergeTimeout)
			data := c.member(config.CoServer2).dataDir
			// coserver2 snapshots when its log has grown by 300 entries since its last
			// snapshot, looked at every 200 ms or so: a member that applied most of the load
			// between two looks (on a busy machine) took one snapshot where three fit, and
			// nothing new will come. Write again (the same keys and values: readKeys
			// still holds) until it has two.
			for attempt := 1; len(snapshotFiles(t, data)) < 2; attempt++ {
				if attempt == 5 {
					t.Fatalf("coserver2 took fewer than two snapshots after %d rounds of writes", attempt)
				}
				t.Logf("round %d: coserver2 has %d snapshots; 400 more writes", attempt, len(snapshotFiles(t, data)))
				putKeys(t, c.gateways(), 400)
				for deadline := time.Now().Add(5 * time.Second); len(snapshotFiles(t, data)) < 2 && time.Now().Before(deadline); {
					time.Sleep(100 * time.Millisecond)
				}
			}
			c.kill(config.CoServer2)
			for attempt := 1; tc.compacted && !compactedPastOlder(t, c.member(config.CoServer2).out.String(), data); attempt++ {
				// The kill landed between a snapshot and the compaction that follows it:
				// the log still reaches back to the older snapshot and nothing would need
				// a repair. Write past the snapshot threshold again, so that coserver2
				// takes another snapshot (and compacts after it), and kill it then. (The
				// load is over by now: without new writes nothing changes on disk, and
				// every attempt found the same state.)
				if attempt == 5 {
					t.Fatal("coserver2 was killed between a snapshot and its compaction five times")
				}
				t.Logf("attempt %d: killed before the newest snapshot's compaction; again", attempt)
				newest := snapshotFiles(t, data)[0]
				c.restart(config.CoServer2)
				c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
				putKeys(t, c.gateways(), 400) // the same keys and values: readKeys still holds
				for deadline := time.Now().Add(30 * time.Second); snapshotFiles(t, data)[0] == newest; {
					if time.Now().After(deadline) {
						t.Fatal("coserver2 took no new snapshot after 400 more writes")
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(300 * time.Millisecond)
				c.kill(config.CoServer2)
			}
			tc.damage(t, data)
			start := time.Now()
			c.restart(config.CoServer2)
			c.waitMode(ftcluster.ModeDuplex, duplexTimeout)
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

// compactedPastOlder reports whether a killed member's raft log starts after its older
// snapshot: raft logged "snapshot complete up to" (which follows the compaction) for the
// newest snapshot on disk. With --trailing-logs well below the snapshot threshold, that
// compaction drops the entries just after the older snapshot.
func compactedPastOlder(t *testing.T, out, data string) bool {
	t.Helper()
	files := snapshotFiles(t, data)
	if len(files) < 2 {
		return false
	}
	var term, idx, ms int
	fmt.Sscanf(filepath.Base(filepath.Dir(files[0])), "%d-%d-%d", &term, &idx, &ms)
	for line := range strings.Lines(out) {
		if strings.Contains(line, `msg="snapshot complete up to"`) && strings.HasSuffix(strings.TrimSpace(line), fmt.Sprintf(" index=%d", idx)) {
			return true
		}
	}
	return false
}
