package link

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreeLoopbackAddrs returns n distinct loopback addresses whose ports are free now: the
// members' links and gateways of a cluster on one machine (ftvs init, in-process tests).
//
// A port is free only until someone takes it, and a cluster's members start one after
// the other: the first ones dial the others at once, and every outgoing connection takes
// a source port from the kernel's ephemeral range (Linux: 32768-60999 by default), as
// does any ":0" listen on the machine. A member configured to listen on a port in that
// range can find it taken by its own peers' connections. So the ports are picked at
// random below the ephemeral range (from 10000), where the kernel never hands one out;
// only when that leaves too little room, or the range is unknown, do they come from ":0".
func FreeLoopbackAddrs(n int) ([]string, error) {
	if lo := ephemeralLow(); lo-minPickedPort >= 1000 {
		below := func() string {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(minPickedPort+rand.IntN(lo-minPickedPort)))
		}
		if addrs, err := listenAll(n, 50*n, below); err == nil {
			return addrs, nil
		}
	}
	return listenAll(n, n, func() string { return "127.0.0.1:0" })
}

// minPickedPort is the lowest port FreeLoopbackAddrs picks: above the well-known and
// commonly configured ones.
const minPickedPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range, or 0 if unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// listenAll holds listeners on addresses from next until n are open, so the ports are
// distinct, and closes them; it gives up after tries attempts.
func listenAll(n, tries int, next func() string) ([]string, error) {
	var addrs []string
	var lastErr error
	for i := 0; len(addrs) < n; i++ {
		if i >= tries {
			return nil, fmt.Errorf("%d free loopback ports: %d of %d tries failed, the last: %w", n, i-len(addrs), tries, lastErr)
		}
		l, err := net.Listen("tcp", next())
		if err != nil {
			lastErr = err // taken
			continue
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
