package link

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeLoopbackAddrsBelowEphemeralRange(t *testing.T) {
	addrs, err := FreeLoopbackAddrs(9)
	if err != nil {
		t.Fatal(err)
	}
	lo := ephemeralLow()
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s handed out twice: %v", a, addrs)
		}
		seen[a] = true
		_, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		if lo-minPickedPort >= 1000 && (port < minPickedPort || port >= lo) {
			t.Errorf("port %d is not in [%d, %d), below the kernel's ephemeral range", port, minPickedPort, lo)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		l.Close()
	}
	t.Logf("ephemeral range from %d; picked %v", lo, addrs)
}
