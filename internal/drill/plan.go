package drill

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The kinds of fault a drill injects.
const (
	Kill    Kind = "kill"    // SIGKILL a member; its supervisor restarts it
	Stop    Kind = "stop"    // SIGSTOP a member for 5-15 s
	Link    Kind = "link"    // cut one link between two members for 3-10 s
	Links   Kind = "links"   // cut both links of a CoServer to every peer for 3-10 s
	Witness Kind = "witness" // cut both links of the witness to every peer for 3-10 s
	Diverge Kind = "diverge" // flip a byte of a CoServer's guest memory
	Disk    Kind = "disk"    // a member's disk full, or its fsyncs failing, for 3-10 s
	Delay   Kind = "delay"   // one link between two members 5-50 ms slower each way, for 5-15 s
	Loss    Kind = "loss"    // 5-20% of the writes on one link held back a retransmission timeout, for 5-15 s
	Skew    Kind = "skew"    // a member's wall clock stepped 10 s to 10 min ahead or behind, for 5-15 s
)

// Kinds are the kinds a drill injects, in the order reports list them.
var Kinds = []Kind{Kill, Stop, Link, Links, Witness, Diverge, Disk, Delay, Loss, Skew}

// ParseKinds reads a comma-separated list of kinds ("all" or "" is every supported one).
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return slices.Clone(Kinds), nil
	}
	var kinds []Kind
	for _, f := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(f))
		switch {
		case slices.Contains(Kinds, k):
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		default:
			return nil, fmt.Errorf("unknown fault %q: use some of %s, separated by commas", k, kindList())
		}
	}
	return kinds, nil
}

func kindList() string {
	var names []string
	for _, k := range Kinds {
		names = append(names, string(k))
	}
	return strings.Join(names, ",")
}

// ParseRate reads a fault rate: "1/10s" (one fault every 10 s on average), "3/1m", or a
// plain interval such as "10s". It returns the mean interval between faults.
func ParseRate(s string) (time.Duration, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		n, per = "1", s
	}
	var count int
	if _, err := fmt.Sscanf(n, "%d", &count); err != nil || count <= 0 || fmt.Sprint(count) != n {
		return 0, fmt.Errorf("rate %q: want N/DURATION such as 1/10s", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("rate %q: want N/DURATION such as 1/10s", s)
	}
	every := d / time.Duration(count)
	if every < time.Second {
		return 0, fmt.Errorf("rate %q: at most one fault per second", s)
	}
	return every, nil
}

// Roles name members by what they are when a fault begins.
const (
	RoleLeader   = "leader"   // the CoServer that leads
	RoleFollower = "follower" // the other CoServer
	RoleWitness  = "witness"
)

// Fault is one planned fault: its kind, when it is due, whom it hits (by role), and how
// long it lasts where that is the fault's to say.
type Fault struct {
	N      int           `json:"n"`
	Kind   Kind          `json:"kind"`
	Due    time.Duration `json:"-"`              // since the drill's start; a fault waits for full redundancy first
	Target string        `json:"target"`         // a role
	Peer   string        `json:"peer,omitempty"` // link: the role at the link's other end
	Link   string        `json:"link,omitempty"` // link: a or b
	Hold   time.Duration `json:"-"`              // stop, link, links, witness
	// Delay and Loss are a delay or loss fault's impairment of the link.
	Delay time.Duration `json:"-"`
	Loss  float64       `json:"loss,omitempty"`
	// Skew is how far a skew fault moves the member's wall clock (negative: back).
	Skew time.Duration `json:"-"`
	// Mode is a disk fault's: full (no space left) or sync (fsync fails).
	Mode string `json:"mode,omitempty"`
	// Offset is where a diverge fault flips a byte of guest memory (the member takes it
	// modulo the memory size).
	Offset uint64 `json:"offset,omitempty"`
}

func (f Fault) String() string {
	s := fmt.Sprintf("#%d %s %s", f.N, f.Kind, f.Target)
	switch f.Kind {
	case Link:
		s += fmt.Sprintf("-%s link %s", f.Peer, f.Link)
	case Delay:
		s += fmt.Sprintf("-%s link %s +%v", f.Peer, f.Link, f.Delay)
	case Loss:
		s += fmt.Sprintf("-%s link %s %.0f%% loss", f.Peer, f.Link, 100*f.Loss)
	}
	if f.Kind == Disk {
		s += " " + f.Mode
	}
	if f.Kind == Skew {
		s += fmt.Sprintf(" %+ds", int64(f.Skew/time.Second))
	}
	if f.Hold > 0 {
		s += fmt.Sprintf(" for %v", f.Hold)
	}
	return s
}

// Plan draws the faults of a drill of the given duration from seed: one every `every`
// on average (uniformly from half to one and a half of it apart), the first after
// half of it, none in the last tenth of the drill (it ends with time to recover). The
// kinds come in rounds, each a shuffle of all of them, so that every kind recurs
// evenly. The same arguments give the same plan.
func Plan(seed uint64, duration, every time.Duration, kinds []Kind) []Fault {
	rng := rand.New(rand.NewPCG(seed, 0x6472696c6c)) // "drill"
	var plan []Fault
	roles := []string{RoleLeader, RoleFollower, RoleWitness}
	for at := every / 2; at < duration-duration/10 && len(kinds) > 0; at += every/2 + time.Duration(rng.Int64N(int64(every))) {
		if len(plan)%len(kinds) == 0 {
			kinds = slices.Clone(kinds)
			rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		}
		f := Fault{N: len(plan) + 1, Kind: kinds[len(plan)%len(kinds)], Due: at}
		hold := func(lo, hi int) time.Duration {
			return time.Duration(lo)*time.Second + time.Duration(rng.Int64N(int64(hi-lo)*int64(time.Second)/int64(time.Millisecond)))*time.Millisecond
		}
		switch f.Kind {
		case Kill:
			f.Target = roles[rng.IntN(3)]
		case Stop:
			f.Target, f.Hold = roles[rng.IntN(3)], hold(5, 15)
		case Link:
			i := rng.IntN(3)
			f.Target, f.Peer = roles[i], roles[(i+1+rng.IntN(2))%3]
			f.Link, f.Hold = []string{"a", "b"}[rng.IntN(2)], hold(3, 10)
		case Links:
			f.Target, f.Hold = roles[rng.IntN(2)], hold(3, 10)
		case Witness:
			f.Target, f.Hold = RoleWitness, hold(3, 10)
		case Diverge:
			f.Target, f.Offset = roles[rng.IntN(2)], rng.Uint64()
		case Disk:
			f.Target, f.Mode, f.Hold = roles[rng.IntN(3)], []string{"full", "sync"}[rng.IntN(2)], hold(3, 10)
		case Delay, Loss:
			i := rng.IntN(3)
			f.Target, f.Peer = roles[i], roles[(i+1+rng.IntN(2))%3]
			f.Link, f.Hold = []string{"a", "b"}[rng.IntN(2)], hold(5, 15)
			if f.Kind == Delay {
				f.Delay = time.Duration(5+rng.IntN(46)) * time.Millisecond
			} else {
				f.Loss = float64(5+rng.IntN(16)) / 100
			}
		case Skew:
			f.Target, f.Hold = roles[rng.IntN(3)], hold(5, 15)
			f.Skew = time.Duration(10+rng.IntN(591)) * time.Second
			if rng.IntN(2) == 0 {
				f.Skew = -f.Skew
			}
		}
		plan = append(plan, f)
	}
	return plan
}
