package cluster

import "testing"

func TestKindOf(t *testing.T) {
	for name, want := range map[string]Kind{CoServer1: KindCoServer, CoServer2: KindCoServer, Witness: KindWitness} {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", name, got, want)
		}
	}
}
