package drill

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPlanIsTheSeeds(t *testing.T) {
	a := Plan(7, 10*time.Minute, 10*time.Second, Kinds)
	b := Plan(7, 10*time.Minute, 10*time.Second, Kinds)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two plans")
	}
	if c := Plan(8, 10*time.Minute, 10*time.Second, Kinds); reflect.DeepEqual(a, c) {
		t.Fatal("two seeds gave the same plan")
	}
	seen := map[Kind]int{}
	var last time.Duration
	for _, f := range a {
		seen[f.Kind]++
		if gap := f.Due - last; gap < 5*time.Second || gap > 15*time.Second {
			t.Errorf("%v due %v after the one before; want 5-15 s", f, gap)
		}
		last = f.Due
		if f.Due >= 9*time.Minute {
			t.Errorf("%v due at %v, in the drill's last tenth", f, f.Due)
		}
		switch f.Kind {
		case Stop:
			if f.Hold < 5*time.Second || f.Hold >= 15*time.Second {
				t.Errorf("%v: stop held %v", f, f.Hold)
			}
		case Link:
			if f.Target == f.Peer || f.Link != "a" && f.Link != "b" {
				t.Errorf("%v: bad link", f)
			}
		case Delay, Loss:
			if f.Target == f.Peer || f.Delay < 0 || f.Delay > 50*time.Millisecond || f.Loss < 0 || f.Loss > 0.2 || (f.Delay == 0) == (f.Loss == 0) {
				t.Errorf("%v: bad impairment", f)
			}
		case Disk:
			if f.Mode != "full" && f.Mode != "sync" || f.Hold < 3*time.Second {
				t.Errorf("%v: bad disk fault", f)
			}
		case Skew:
			if a := max(f.Skew, -f.Skew); a < 10*time.Second || a > 10*time.Minute || f.Hold < 5*time.Second {
				t.Errorf("%v: bad clock skew", f)
			}
		case Links, Diverge:
			if f.Target == RoleWitness {
				t.Errorf("%v: a CoServer fault on the witness", f)
			}
		}
	}
	for _, k := range Kinds {
		if seen[k] < 5 {
			t.Errorf("%s drawn %d times in 10 minutes at one fault per 10 s", k, seen[k])
		}
	}
	if only := Plan(7, time.Minute, 10*time.Second, []Kind{Kill}); len(only) == 0 || only[0].Kind != Kill {
		t.Errorf("plan of kills only: %v", only)
	}
}

func TestParseKindsAndRate(t *testing.T) {
	if k, err := ParseKinds("kill, stop,kill"); err != nil || !reflect.DeepEqual(k, []Kind{Kill, Stop}) {
		t.Errorf("ParseKinds: %v %v", k, err)
	}
	if k, err := ParseKinds("skew"); err != nil || !reflect.DeepEqual(k, []Kind{Skew}) {
		t.Errorf("ParseKinds(skew): %v %v", k, err)
	}
	for in, want := range map[string]string{
		"kill,melt,": `unknown fault "melt": use some of kill,stop,link,links,witness,diverge,disk,delay,loss,skew`,
	} {
		if _, err := ParseKinds(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKinds(%q): %v, want %q", in, err, want)
		}
	}
	for in, want := range map[string]time.Duration{"1/10s": 10 * time.Second, "3/1m": 20 * time.Second, "30s": 30 * time.Second} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0/10s", "x/10s", "1/", "1/-3s", "10/1s", "1.5/10s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted it", in)
		}
	}
}
