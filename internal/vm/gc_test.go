package vm

import (
	"runtime/debug"
	"testing"
)

func TestHoldGCNests(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	a := HoldGC()
	b := HoldGC()
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GC percent %d while held, want -1", p)
	}
	a()
	a() // a second release of the same hold changes nothing
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("GC percent %d while still held once, want -1", p)
	}
	b()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("GC percent %d after the last release, want 100 restored", p)
	}
}
