package node

import (
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
)

// The actions the witness cannot carry out itself reach the leader over the links, and
// the leader's answer comes back as it gave it: the same status and the same JSON as
// when asked directly.
func TestWitnessRelaysActions(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		c := newTestCluster(t)
		for _, name := range []string{"coserver1", "coserver2", "witness"} {
			c.start(name)
		}
		c.waitMode(c.m["witness"], cluster.ModeDuplex)
		leader := c.leader()
		other := map[string]string{"coserver1": "coserver2", "coserver2": "coserver1"}[leader]

		// Nothing to roll back to: the leader refuses, with its reasons.
		direct, directBody := c.httpDo("POST", c.m[leader].GatewayURL()+"/ftvs/v1/rollback", "")
		relayed, relayedBody := c.httpDo("POST", c.m["witness"].GatewayURL()+"/ftvs/v1/rollback", "")
		if direct != 409 || relayed != direct || relayedBody != directBody {
			t.Fatalf("rollback: directly %d %q, through the witness %d %q", direct, directBody, relayed, relayedBody)
		}
		if code, body := c.httpDo("POST", c.m["witness"].GatewayURL()+"/ftvs/v1/update", `{"module": "AGFzbQEAAAA="}`); code != 400 || !strings.Contains(body, `"reasons"`) {
			t.Fatalf("update of a module without metadata through the witness: %d %q", code, body)
		}
		// A refusal of the CoServer concerned, then its success.
		if code, body := c.httpDo("POST", c.m["witness"].GatewayURL()+"/ftvs/v1/leadership/transfer", `{"to": "coserver9"}`); code != 400 || !strings.Contains(body, `"error":"\"to\": \"coserver9\" is not a CoServer`) {
			t.Fatalf("transfer to no CoServer: %d %q", code, body)
		}
		code, body := c.httpDo("POST", c.m["witness"].GatewayURL()+"/ftvs/v1/leadership/transfer", `{"to": "`+other+`"}`)
		if code != 200 || body != `{"message":"`+other+` leads now"}`+"\n" {
			t.Fatalf("transfer through the witness: %d %q", code, body)
		}
		if code, body := c.httpDo("POST", c.m["witness"].GatewayURL()+"/ftvs/v1/coservers/"+leader+"/enable", ""); code != 200 || body != `{"message":"`+leader+` is already enabled"}`+"\n" {
			t.Fatalf("enable through the witness: %d %q", code, body)
		}
	})
}
