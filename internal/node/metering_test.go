package node

import (
	"testing"

	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/wasm"
)

// Builds of protocol level 2 run calls-only metering; from level 3 on, bulk metering;
// this build runs the newest metering it knows.
func TestMeteringOf(t *testing.T) {
	for p, want := range map[int]wasm.Metering{1: wasm.MeterCalls, 2: wasm.MeterCalls, 3: wasm.MeterBulk, 4: wasm.MeterBulk} {
		if got := meteringOf(p); got != want {
			t.Errorf("meteringOf(%d) = %v, want %v", p, got, want)
		}
	}
	if got := meteringOf(version.Protocol); got != wasm.NewestMetering {
		t.Errorf("this build (protocol %d) runs %v, but knows %v", version.Protocol, got, wasm.NewestMetering)
	}
}
