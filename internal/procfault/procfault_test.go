package procfault

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The tests run themselves as a child process that injects the fault into itself.
const childEnv = "PROCFAULT_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "kill":
		Kill()
		time.Sleep(10 * time.Second)
		os.Exit(3) // not killed
	case "stop":
		start := time.Now()
		if err := Stop(time.Second); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(4)
		}
		// A goroutine that wakes often sees the gap the stop left.
		var longest time.Duration
		last := time.Now()
		for time.Since(start) < 2*time.Second {
			time.Sleep(10 * time.Millisecond)
			if gap := time.Since(last); gap > longest {
				longest = gap
			}
			last = time.Now()
		}
		os.Stdout.WriteString(longest.String())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(t *testing.T, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

func TestKill(t *testing.T) {
	err := child(t, "kill").Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("the child was not killed: %v", err)
	}
}

func TestStopEndsByItself(t *testing.T) {
	out, err := child(t, "stop").Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	longest, err := time.ParseDuration(string(out))
	if err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	// A stop of a second leaves a gap of at least that; more on a busy machine.
	if longest < time.Second {
		t.Fatalf("the longest gap in the child was %v: it was not stopped for a second", longest)
	}
}

func TestCheckStop(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, time.Hour} {
		if CheckStop(d) == nil {
			t.Errorf("CheckStop(%v) accepted it", d)
		}
	}
	if err := CheckStop(10 * time.Second); err != nil {
		t.Error(err)
	}
}
