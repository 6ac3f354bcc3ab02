package node

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/guesttest"
)

// A fault drill's announcement, with its report, outlives a restart of the member; an
// unreadable record is ignored.
func TestDrillNoteOutlivesRestart(t *testing.T) {
	kv := guesttest.Build(t, "github.com/ftvs/ftvs/examples/kv")
	dir := t.TempDir()
	c, err := startLone(t, dir, kv, false)
	if err != nil {
		t.Fatal(err)
	}
	worst := 3.5
	d := cluster.Drill{State: "passed", Seed: 7, Started: "2026-12-08T01:00:00Z", Faults: 2, Verdict: "PASS",
		Report: &cluster.DrillReport{Ops: 10, Acked: 9, Linearizable: true, GuestClockWorstMs: &worst,
			ByKind: []cluster.DrillKind{{Kind: "skew", Count: 2, LongestUnavailableMs: 12}}}}
	if err := c.NoteDrill(d); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c, err = startLone(t, dir, kv, false); err != nil {
		t.Fatal(err)
	}
	got := c.Status(cluster.HashNone).Drill
	if got == nil || !reflect.DeepEqual(*got, d) {
		t.Fatalf("after a restart the drill is %+v, want %+v", got, d)
	}
	c.Close()
	if err := os.WriteFile(filepath.Join(dir, "DRILL"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = startLone(t, dir, kv, false); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Status(cluster.HashNone).Drill; got != nil {
		t.Fatalf("an unreadable record gave the drill %+v", got)
	}
}
