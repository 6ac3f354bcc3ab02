package link

import (
	"io"
	"net"
	"testing"
	"time"
)

// An impaired link delivers every byte, in order, and no sooner than its delay (plus a
// retransmission timeout for a lost write); removing the impairment keeps the order.
func TestImpairDelaysInOrder(t *testing.T) {
	ms, _ := newCluster(t, clusterOpts{probe: 200 * time.Millisecond, down: 10 * time.Second, dialTimeout: time.Second}, "coserver1", "coserver2")
	c1, c2 := ms["coserver1"], ms["coserver2"]
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := c2.layer.Listener(ProtoHTTP).Accept(); err == nil {
			accepted <- c
		}
	}()
	out := dial(t, c1.layer, "coserver2", ProtoHTTP)
	in := <-accepted
	defer in.Close()
	link := out.(*Conn).Link()

	for _, bad := range []Impairment{{Delay: -time.Second}, {Delay: time.Hour}, {Loss: 1.5}, {Loss: -0.1}} {
		if err := c1.layer.Impair("coserver2", link, bad); err == nil {
			t.Errorf("Impair(%+v) accepted it", bad)
		}
	}
	if err := c1.layer.Impair("nobody", link, Impairment{Delay: time.Second}); err == nil {
		t.Error("an unknown peer impaired")
	}

	const delay = 300 * time.Millisecond
	if err := c1.layer.Impair("coserver2", link, Impairment{Delay: delay, Loss: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, s := range []string{"one,", "two,", "three,"} {
		if _, err := out.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c1.layer.Impair("coserver2", link, Impairment{}); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("four")); err != nil {
		t.Fatal(err)
	}
	in.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len("one,two,three,four"))
	if _, err := io.ReadFull(in, got); err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	if took := time.Since(start); took < delay+lossRTO {
		t.Errorf("the bytes arrived after %v, before the delay and a lost segment's timeout (%v)", took, delay+lossRTO)
	}
	if string(got) != "one,two,three,four" {
		t.Errorf("got %q: reordered or lost", got)
	}
	// The other direction was never impaired.
	if _, err := in.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	out.SetReadDeadline(time.Now().Add(30 * time.Second))
	back := make([]byte, 4)
	if _, err := io.ReadFull(out, back); err != nil || string(back) != "back" {
		t.Fatalf("read back: %q %v", back, err)
	}
}
