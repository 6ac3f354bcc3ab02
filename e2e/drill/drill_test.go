// Package drill is the test command's soak: `ftvs drill` for two minutes against `ftvs
// demo`, real processes on loopback, every kind of fault, and a PASS it must report.
// Its time budget: about 2.5 minutes (the drill's duration, the demo's start, the
// recovery after the last fault and the checks). FTVS_DRILL_DURATION and
// FTVS_DRILL_SEED override the duration and the seed (a failed run names its seed).
package drill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// report is the part of `ftvs drill --json`'s report the test reads.
type report struct {
	Seed         uint64         `json:"seed"`
	Pass         bool           `json:"pass"`
	Lost         int            `json:"lost"`
	Linearizable bool           `json:"linearizable"`
	Acked        int            `json:"acknowledged"`
	ByKind       map[string]any `json:"by_kind"`
	Failures     []string       `json:"failures"`
	Replay       string         `json:"replay"`
	Dir          string         `json:"dir"`
	Faults       []struct {
		Kind                 string  `json:"kind"`
		Member               string  `json:"member"`
		LongestUnavailableMs float64 `json:"longest_unavailable_ms"`
		RecoveredS           float64 `json:"recovered_after_s"`
	} `json:"faults"`
}

var kinds = []string{"kill", "stop", "link", "links", "witness", "diverge", "disk", "delay", "loss"}

func TestDrillSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes minutes")
	}
	bin := filepath.Join(t.TempDir(), "ftvs")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ftvs").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	duration := envOr("FTVS_DRILL_DURATION", "2m")
	seed := envOr("FTVS_DRILL_SEED", strconv.FormatInt(time.Now().UnixNano()%1_000_000+1, 10))
	t.Logf("drill seed %s (replay with FTVS_DRILL_SEED=%s go test ./e2e/drill/)", seed, seed)
	dir := filepath.Join(t.TempDir(), "demo")
	startDemo(t, bin, dir)
	keep, _ := filepath.Abs(filepath.Join("..", "artifacts", "drill-"+seed))
	var stdout, stderr bytes.Buffer
	deadline := time.Now().Add(2 * time.Minute)
	for {
		stdout.Reset()
		stderr.Reset()
		cmd := exec.Command(bin, "drill", "--cluster", filepath.Join(dir, "cluster"), "--duration", duration, "--seed", seed, "--json", "--keep", keep)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		// Exit 2: the drill could not start; the demo's cluster is still forming.
		if errors.As(err, &exit) && exit.ExitCode() == 2 && time.Now().Before(deadline) {
			time.Sleep(time.Second)
			continue
		}
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("ftvs drill: %v", err)
		}
		break
	}
	t.Logf("timeline:\n%s", stderr.String())
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("ftvs drill printed no report (%v):\n%s", err, stdout.String())
	}
	for _, f := range rep.Faults {
		t.Logf("%-8s %-10s unavailable %6.0f ms, full redundancy after %5.1fs", f.Kind, f.Member, f.LongestUnavailableMs, f.RecoveredS)
	}
	if !rep.Pass {
		t.Fatalf("the drill FAILED (seed %d): lost %d, linearizable %v, failures %q; replay: %s; kept: %s",
			rep.Seed, rep.Lost, rep.Linearizable, rep.Failures, rep.Replay, rep.Dir)
	}
	// The plan deals the kinds in shuffled rounds: two minutes at one fault per 10 s
	// (each waiting for the recovery from the one before) reach most of them.
	var seen, missing []string
	for _, k := range kinds {
		if rep.ByKind[k] == nil {
			missing = append(missing, k)
		} else {
			seen = append(seen, k)
		}
	}
	if len(seen) < 6 && duration == "2m" {
		t.Errorf("the drill injected faults of %d kinds only (none of %s)", len(seen), strings.Join(missing, ", "))
	}
	if rep.Acked < 1000 {
		t.Errorf("only %d requests acknowledged: the drill proves little", rep.Acked)
	}
	os.RemoveAll(keep)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startDemo starts `ftvs demo` in dir with fault injection on, and stops it (Ctrl-C, as
// an operator would) when the test ends.
func startDemo(t *testing.T, bin, dir string) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "demo.out"))
	if err != nil {
		t.Fatal(err)
	}
	demo := exec.Command(bin, "demo", "--dir", dir, "--allow-fault-injection")
	demo.Stdout, demo.Stderr = out, out
	demo.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- demo.Wait() }()
	t.Cleanup(func() {
		demo.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-demo.Process.Pid, syscall.SIGKILL)
			<-done
		}
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("ftvs demo's output (tail):\n%s", tail(string(b), 3000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("...%s", s[len(s)-n:])
}
