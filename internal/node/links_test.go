package node

import (
	"testing"

	"github.com/ftvs/ftvs/internal/entry"
)

// A repeated seed joins the first call; finished calls are forgotten after dedupKeep,
// oldest first, and unfinished ones never.
func TestAppendDedup(t *testing.T) {
	var d appendDedup
	seed := func(b byte) (s [entry.SeedSize]byte) { s[0] = b; return s }
	c1, first := d.begin(seed(1))
	if !first {
		t.Fatal("a new seed must run")
	}
	if c, first := d.begin(seed(1)); first || c != c1 {
		t.Fatal("a repeated seed must join the first call")
	}
	c2, _ := d.begin(seed(2))
	close(c1.done) // 1 finished, 2 still running
	c1.at = c1.at.Add(-2 * dedupKeep)
	c2.at = c2.at.Add(-2 * dedupKeep)
	d.begin(seed(3))
	if _, ok := d.pending[seed(1)]; ok {
		t.Error("a finished call past dedupKeep was kept")
	}
	if _, ok := d.pending[seed(2)]; !ok {
		t.Error("a running call was forgotten")
	}
	if len(d.order) != 2 {
		t.Errorf("order holds %d calls, want 2", len(d.order))
	}
	// A call that appended nothing ("not the leader") is forgotten: a retry runs afresh.
	c4, _ := d.begin(seed(4))
	d.forget(seed(4), c4)
	if _, first := d.begin(seed(4)); !first {
		t.Error("a forgotten seed was answered from memory")
	}
}
