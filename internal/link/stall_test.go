package link

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// peerProcessEnv, when set, makes TestProbePeerProcess the peer of
// TestProbeSurvivesOwnStall: "coserver2" in a process of its own, whose links the test
// can keep answering while it stops itself. Its value is the test's link addresses.
const peerProcessEnv = "FTVS_LINK_TEST_PEER"

// A member whose own process was not running for a while (a busy machine, a stop of the
// process) does not blame its links for the pongs it did not read meanwhile: they
// arrived in time and wait in the socket. (Go fires the expired read deadline before it
// polls the network, so the prober used to see a timeout and declare the link down.)
// The peer runs in another process and keeps answering while this one is stopped, or
// is stopped too and answers only after it.
func TestProbeSurvivesOwnStall(t *testing.T) {
	if testing.Short() {
		t.Skip("stops the test process")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to stop and continue the test process")
	}
	lns := listen2(t, nil)
	peer := exec.Command(os.Args[0], "-test.run=^TestProbePeerProcess$")
	self := addrs(lns)
	peer.Env = append(os.Environ(), peerProcessEnv+"="+self[0]+","+self[1])
	peer.Stderr = os.Stderr
	stdin, err := peer.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := peer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the peer exits when its stdin closes
		peer.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("peer process: %v", err)
	}
	var peerAddrs [2]string
	if _, err := fmt.Sscanf(line, "listening %s %s", &peerAddrs[0], &peerAddrs[1]); err != nil {
		t.Fatalf("peer process said %q: %v", line, err)
	}
	// Long timings: the peer must never be late by DownAfter on a busy machine, or
	// the test would see a real timeout. With 1 s, CI saw it once: the peer, a -race
	// process beside the test command's others, did not answer a probe within 1 s.
	const probe, down = 100 * time.Millisecond, 2 * time.Second
	ev := newRecorder()
	l, err := New(Config{Self: "coserver1", Listeners: lns, Peers: map[string][2]string{"coserver2": peerAddrs},
		ProbeInterval: probe, DownAfter: down, Logger: testLogger(t), OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	waitUp(t, l, 10*time.Second)

	stall := 3 * down / 2
	for i := range 3 {
		before := ev.len()
		// Stopped by another process, which continues it after the stall. In the
		// second round the peer is stopped as well and continues 50 ms after this
		// process: the pong to the first ping after the stall then comes 50 ms later
		// at least (as it may from a busy peer), not at once.
		self, peerStopped := os.Getpid(), "the peer answered"
		script := fmt.Sprintf("kill -STOP %d; sleep %.3f; kill -CONT %d", self, stall.Seconds(), self)
		if i == 1 {
			peerStopped = "the peer was stopped as well, and continued 50 ms after it"
			script = fmt.Sprintf("kill -STOP %d %d; sleep %.3f; kill -CONT %d; sleep 0.05; kill -CONT %d",
				self, peer.Process.Pid, stall.Seconds(), self, peer.Process.Pid)
		}
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("stop and continue: %v %s", err, out)
		}
		time.Sleep(2 * down) // a link declared down would be by now
		for _, e := range ev.all()[before:] {
			if e.Code == EventRedundancyLost || e.Code == EventAllDown {
				t.Errorf("stall %d: %s %v after this process was stopped for %s (%s)", i, e.Code, e.Details, stall, peerStopped)
			}
		}
	}
}

// TestProbePeerProcess is the peer process of TestProbeSurvivesOwnStall; run directly,
// it does nothing.
func TestProbePeerProcess(t *testing.T) {
	test := os.Getenv(peerProcessEnv)
	if test == "" {
		t.Skip("the peer process of TestProbeSurvivesOwnStall")
	}
	a, b, _ := strings.Cut(test, ",")
	lns := listen2(t, nil)
	l, err := New(Config{Self: "coserver2", Listeners: lns, Peers: map[string][2]string{"coserver1": {a, b}},
		ProbeInterval: 100 * time.Millisecond, DownAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fmt.Printf("listening %s %s\n", lns[0].Addr(), lns[1].Addr())
	bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes stdin
}
