package config

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreeLoopbackAddrs returns n distinct loopback addresses whose ports are free now.
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
		if addrs, err := pickBelow(n, lo); err == nil {
			return addrs, nil
		}
	}
	return fromKernel(n)
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

// pickBelow holds n listeners on random ports in [minPickedPort, limit) at once, so the
// ports are distinct, and closes them.
func pickBelow(n, limit int) ([]string, error) {
	var addrs []string
	for tries := 0; len(addrs) < n; tries++ {
		if tries >= 50*n {
			return nil, fmt.Errorf("no free loopback port below %d after %d tries", limit, tries)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(minPickedPort+rand.IntN(limit-minPickedPort))))
		if err != nil {
			continue // taken
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// fromKernel holds n listeners on 127.0.0.1:0 at once and closes them.
func fromKernel(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
