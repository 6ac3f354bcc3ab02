package link

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTLSRefusals: a peer with a certificate from another CA, and a peer whose genuine
// certificate names another member than its header, are refused with an event.
func TestTLSRefusals(t *testing.T) {
	ms, ca := newCluster(t, clusterOpts{tls: true}, "coserver1", "coserver2")
	target := ms["coserver1"]
	tests := []struct {
		name       string
		tls        *TLSConfig
		wantReason string
		refused    bool // answered with a refusal code (else the handshake fails)
		// member is the refusal event's member: the header's claim, read only after a
		// handshake. It tells this rogue's refusals from a late one of the rogue before
		// (its probes dial too, and a handshake under way when it closed can fail after
		// the next subtest began: CI saw that).
		member string
	}{
		{"certificate from another CA", presenting(tlsFor(ca.issue(t, "coserver2")), newCA(t).issue(t, "coserver2")), "certificate", false, ""},
		{"certificate of another member", tlsFor(ca.issue(t, "witness")), `certificate names "witness"`, true, "coserver2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := target.ev.len()
			rogue, err := New(Config{Self: "coserver2", Listen: [2]string{"127.0.0.1:0", "127.0.0.1:0"},
				Peers: map[string][2]string{"coserver1": target.layer.Addrs()}, TLS: tt.tls, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer rogue.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := rogue.DialContext(ctx, "coserver1", ProtoRaft)
			if err == nil {
				c.Close()
				t.Fatal("rogue peer connected")
			}
			if tt.refused && !errors.Is(err, ErrRefused) {
				t.Errorf("dial error %v, want ErrRefused", err)
			}
			ev := target.ev.wait(t, n, EventPeerRefused, map[string]string{"member": tt.member}, 5*time.Second)
			if !strings.Contains(ev.Details["reason"], tt.wantReason) {
				t.Errorf("refusal reason %q, want it to contain %q", ev.Details["reason"], tt.wantReason)
			}
			t.Logf("dial: %v; event: %v", err, ev.Details)
		})
	}
	// The genuine members were not disturbed.
	for _, s := range target.layer.States() {
		if !s.Up {
			t.Errorf("state %+v", s)
		}
	}
}
