package version

import (
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	// Level 3 (fuel metering of bulk memory instructions, recorded in the settings)
	// works with level 2, the first release's, and its own.
	if Protocol != 3 || MinPeerProtocol != FirstRelease {
		t.Errorf("Protocol %d, MinPeerProtocol %d; want 3 and %d in a default build", Protocol, MinPeerProtocol, FirstRelease)
	}
	if err := Self().Valid(); err != nil {
		t.Error(err)
	}
}

func TestMinFor(t *testing.T) {
	for p, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 10: 9} {
		if got := MinFor(p); got != want {
			t.Errorf("MinFor(%d) = %d, want %d", p, got, want)
		}
	}
}

func TestCompatibleWith(t *testing.T) {
	b := func(p, min int) Build { return Build{Protocol: p, MinPeerProtocol: min} }
	tests := []struct {
		name string
		a, b Build
		want bool
	}{
		{"same level", b(1, 1), b(1, 1), true},
		{"one level apart", b(1, 1), b(2, 1), true},
		{"one level apart, higher", b(3, 2), b(2, 1), true},
		{"two levels apart", b(1, 1), b(3, 2), false},
		{"one apart, but the newer dropped the older", b(1, 1), b(2, 2), false},
		{"wide range", b(5, 1), b(1, 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.CompatibleWith(tt.b); got != tt.want {
				t.Errorf("%+v with %+v: %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.CompatibleWith(tt.a); got != tt.want {
				t.Errorf("not symmetric: %+v with %+v: %v", tt.b, tt.a, got)
			}
		})
	}
	if !Compatible(Protocol) || !Compatible(Protocol+1) || Compatible(Protocol+2) {
		t.Errorf("Compatible: this build (protocol %d) must work with %d and %d, not %d", Protocol, Protocol, Protocol+1, Protocol+2)
	}
	if got := b(3, 2).Common(b(2, 1)); got != 2 {
		t.Errorf("Common = %d, want 2", got)
	}
}

func TestIncompatibleMessage(t *testing.T) {
	tests := []struct {
		name       string
		peer, self Build
		want       string
	}{
		{"newer peer", Build{"0.3.0", 3, 2}, Build{"0.1.0", 1, 1},
			"coserver2 runs ftvs 0.3.0 (protocol 3, works with 2 to 3); this member runs ftvs 0.1.0 (protocol 1), which works with protocols 1 to 1: " +
				"upgrade one protocol level at a time — every member to a release of protocol 2, then of protocol 3 (see UPGRADING.md)"},
		{"older peer", Build{"0.1.0", 1, 1}, Build{"0.3.0", 3, 2},
			"coserver2 runs ftvs 0.1.0 (protocol 1, works with 1 to 1); this member runs ftvs 0.3.0 (protocol 3), which works with protocols 2 to 3: " +
				"upgrade one protocol level at a time — every member to a release of protocol 2, then of protocol 3 (see UPGRADING.md)"},
		{"one level, dropped", Build{"", 2, 2}, Build{"0.1.0", 1, 1},
			"coserver2 runs ftvs of an unknown version (protocol 2, works with 2 to 2); this member runs ftvs 0.1.0 (protocol 1), which works with protocols 1 to 1: " +
				"upgrade one protocol level at a time — every member to a release of protocol 2 that still works with protocol 1 (see UPGRADING.md)"},
		{"far apart", Build{"9", 9, 8}, Build{"1", 1, 1}, "of protocol 2, then of protocol 3, then of protocol 4, then of protocol 5, then … up to protocol 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Incompatible("coserver2", tt.peer, tt.self); !strings.Contains(got, tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestMustLevel(t *testing.T) {
	for _, s := range []string{"", "0", "x", "65536", "-1"} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "protocol level") {
					t.Errorf("mustLevel(%q): %v, want a panic naming the protocol level", s, r)
				}
			}()
			mustLevel(s)
		}()
	}
	if got := mustLevel("65535"); got != MaxProtocol {
		t.Errorf("mustLevel(65535) = %d", got)
	}
}
