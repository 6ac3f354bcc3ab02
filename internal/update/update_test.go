package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/modmeta"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// fakeMember is coserver1 of a cluster, as an update sees it. The real member is
// covered by internal/node's tests and the e2e update tests.
type fakeMember struct {
	view       cluster.View
	current    string
	hist       []vserver.HistoryModule
	loadErr    error
	failOn     map[string]string // member → rehearsal error
	proposeErr error
	result     vserver.Result
	logs       bytes.Buffer

	mu        sync.Mutex
	loaded    []string // names given to Load
	rehearsed []string // "here" or the peer's name, then the module's name
	proposed  []entry.Entry
}

func newFake() *fakeMember {
	return &fakeMember{
		view:    view("coserver1", with(coserver("coserver1"), func(st *cluster.Status) { st.Role = "leader" }), coserver("coserver2"), witness()),
		current: "kv",
		result:  vserver.Result{Index: 42},
	}
}

func (f *fakeMember) Name() string          { return "coserver1" }
func (f *fakeMember) Logger() *slog.Logger  { return slog.New(slog.NewTextHandler(&f.logs, nil)) }
func (f *fakeMember) CurrentModule() string { return f.current }

func (f *fakeMember) History() []vserver.HistoryModule     { return f.hist }
func (f *fakeMember) Cluster(context.Context) cluster.View { return f.view }

func (f *fakeMember) Load(_ context.Context, name string, bin []byte) (*vm.Module, error) {
	f.loaded = append(f.loaded, name)
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	return &vm.Module{Name: name, SHA256: sha256.Sum256(bin), Binary: bin}, nil
}

func (f *fakeMember) Rehearse(_ context.Context, name string, bin []byte) RehearsalReport {
	return f.rehearse("here", "coserver1", name)
}

func (f *fakeMember) RehearsePeer(_ context.Context, peer, name string, bin []byte) RehearsalReport {
	return f.rehearse(peer, peer, name)
}

func (f *fakeMember) rehearse(where, member, name string) RehearsalReport {
	f.mu.Lock()
	f.rehearsed = append(f.rehearsed, where+" "+name)
	f.mu.Unlock()
	if e := f.failOn[member]; e != "" {
		return RehearsalReport{Member: member, Error: e, Seconds: 0.5}
	}
	return RehearsalReport{Member: member, OK: true, Health: "ok", StateHash: "abc", Seconds: 0.5}
}

func (f *fakeMember) Propose(_ context.Context, e entry.Entry) (vserver.Result, error) {
	f.proposed = append(f.proposed, e)
	return f.result, f.proposeErr
}

// module is a minimal wasm module with meta as its metadata (none if meta is zero).
func module(t *testing.T, meta modmeta.Meta) []byte {
	t.Helper()
	bin := []byte("\x00asm\x01\x00\x00\x00")
	if meta.Equal(modmeta.Meta{}) {
		return bin
	}
	bin, err := modmeta.Stamp(bin, meta)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func shaOf(bin []byte) string {
	s := sha256.Sum256(bin)
	return hex.EncodeToString(s[:])
}

func TestRunSwitches(t *testing.T) {
	f := newFake()
	bin := module(t, kv110)
	code, rep := Run(context.Background(), f, cluster.UpdateRequest{}, bin)
	if code != 200 || rep.Error != "" || rep.Reasons != nil || rep.Warnings != nil {
		t.Fatalf("%d %+v", code, rep)
	}
	if want := "kv 1.1.0 runs from index 42 (rehearsed on coserver1 and coserver2); `ftvs rollback` goes back to the previous module"; rep.Message != want {
		t.Errorf("message %q, want %q", rep.Message, want)
	}
	if !rep.Module.Equal(kv110) || rep.SHA256 != shaOf(bin) || rep.Index != 42 {
		t.Errorf("module %+v sha256 %s index %d", rep.Module, rep.SHA256, rep.Index)
	}
	if len(rep.Rehearsals) != 2 || rep.Rehearsals[0].Member != "coserver1" || rep.Rehearsals[1].Member != "coserver2" {
		t.Errorf("rehearsals %+v", rep.Rehearsals)
	}
	slices.Sort(f.rehearsed)
	if want := []string{"coserver2 kv", "here kv"}; !slices.Equal(f.rehearsed, want) {
		t.Errorf("rehearsed %q, want %q", f.rehearsed, want)
	}
	if len(f.proposed) != 1 || f.proposed[0].Kind != entry.KindUpdate || f.proposed[0].Seed == ([entry.SeedSize]byte{}) {
		t.Fatalf("proposed %+v", f.proposed)
	}
	p, err := vserver.DecodeUpdatePayload(f.proposed[0].Payload)
	if err != nil || p.Name != "kv" || p.Version != "1.1.0" || !bytes.Equal(p.Wasm, bin) ||
		p.RollbackAfterTraps != vserver.DefaultRollbackAfterTraps || p.Probation != vserver.DefaultProbation {
		t.Errorf("payload %+v, %v", p, err)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "event=update.rehearsed ") || strings.Contains(logs, "update.refused") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestRunDryRun(t *testing.T) {
	f := newFake()
	code, rep := Run(context.Background(), f, cluster.UpdateRequest{DryRun: true}, module(t, kv110))
	if want := "dry run: kv 1.1.0 passed every check and the rehearsal on coserver1 and coserver2; nothing was changed"; code != 200 || rep.Message != want || rep.Index != 0 {
		t.Fatalf("%d %+v", code, rep)
	}
	if len(f.rehearsed) != 2 || f.proposed != nil {
		t.Errorf("rehearsed %q, proposed %+v", f.rehearsed, f.proposed)
	}
}

// The module's name: its metadata's, else the one given, else the service keeps its own.
func TestRunNamesTheModule(t *testing.T) {
	for _, tc := range []struct {
		name, given, want string
		meta              modmeta.Meta
		warnings          []string
	}{
		{name: "from the metadata", meta: kv110, want: "kv"},
		{name: "given overrides the metadata", meta: kv110, given: "orders", want: "orders"},
		{name: "given, no metadata", given: "orders", want: "orders", warnings: []string{modmeta.NoSectionWarning}},
		{name: "neither: the current name", want: "counter", warnings: []string{modmeta.NoSectionWarning}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.current = "counter"
			code, rep := Run(context.Background(), f, cluster.UpdateRequest{Name: tc.given, DryRun: true}, module(t, tc.meta))
			if code != 200 || rep.Module.Name != tc.want || !slices.Equal(rep.Warnings, tc.warnings) {
				t.Fatalf("%d %+v", code, rep)
			}
			if !slices.Equal(f.loaded, []string{tc.want}) {
				t.Errorf("loaded %q", f.loaded)
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	const rehearsalRemedy = "fix the module (its state import or its health check); the running module and its state are unchanged"
	for _, tc := range []struct {
		name     string
		req      cluster.UpdateRequest
		bin      []byte // default: kv 1.1.0
		setup    func(*fakeMember)
		code     int
		error    string
		reasons  []Reason // Problem may be a prefix
		proposed bool
		rehearse bool
	}{
		{name: "metadata", bin: []byte("not wasm"), code: 400,
			reasons: []Reason{{Problem: "module metadata: ", Remedy: "rebuild the module with `ftvs module build`, or stamp it with `ftvs module stamp`"}}},
		{name: "a module that does not load", setup: func(f *fakeMember) { f.loadErr = errors.New("no memory export") }, code: 400,
			error: "update refused: module kv: no memory export", reasons: []Reason{{Problem: "module kv: no memory export", Remedy: "fix the module; nothing was changed"}}},
		{name: "advisories that do not parse", req: cluster.UpdateRequest{Advisories: "[[advisory]]\nid = 1\n", AdvisoriesName: "adv.toml"}, code: 400,
			reasons: []Reason{{Problem: "advisories: adv.toml:", Remedy: "fix the advisories file; nothing was changed"}}},
		{name: "an advisory that blocks", req: cluster.UpdateRequest{Advisories: blockKV}, code: 409,
			error: "update refused: advisory FTVS-1: kv 1.1.0 loses writes; advisory FTVS-1: kv 1.1.0 loses writes",
			reasons: []Reason{
				{Member: "coserver1", Problem: "advisory FTVS-1: kv 1.1.0 loses writes", Remedy: "use kv 1.1.1"},
				{Member: "coserver2", Problem: "advisory FTVS-1: kv 1.1.0 loses writes", Remedy: "use kv 1.1.1"},
			}},
		{name: "no leader", setup: func(f *fakeMember) { f.view.Leader = "" }, code: 409,
			error: "update refused: the cluster has no leader (no quorum)", reasons: []Reason{noLeader}},
		{name: "a failed rehearsal", setup: func(f *fakeMember) { f.failOn = map[string]string{"coserver2": "import: trap"} }, code: 409, rehearse: true,
			error:   "update refused: rehearsal on coserver2 failed: import: trap",
			reasons: []Reason{{Member: "coserver2", Problem: "rehearsal on coserver2 failed: import: trap", Remedy: rehearsalRemedy}}},
		{name: "the switch failed", setup: func(f *fakeMember) { f.result = vserver.Result{Index: 7, Err: errors.New("start: trap")} }, code: 409,
			rehearse: true, proposed: true, error: "update refused: the switch at index 7 failed on every CoServer: start: trap",
			reasons: []Reason{{Problem: "the switch at index 7 failed on every CoServer: start: trap", Remedy: "the old module keeps running with its state; fix the module"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			bin := tc.bin
			if bin == nil {
				bin = module(t, kv110)
			}
			code, rep := Run(context.Background(), f, tc.req, bin)
			if code != tc.code || rep.Message != "" || rep.Index != 0 {
				t.Fatalf("%d %+v", code, rep)
			}
			if tc.error != "" && rep.Error != tc.error {
				t.Errorf("error %q, want %q", rep.Error, tc.error)
			}
			if len(rep.Reasons) != len(tc.reasons) {
				t.Fatalf("reasons %+v, want %+v", rep.Reasons, tc.reasons)
			}
			for i, r := range rep.Reasons {
				w := tc.reasons[i]
				if r.Member != w.Member || !strings.HasPrefix(r.Problem, w.Problem) || r.Remedy != w.Remedy {
					t.Errorf("reason %d is %+v, want %+v", i, r, w)
				}
			}
			if (len(f.rehearsed) > 0) != tc.rehearse || (len(f.proposed) > 0) != tc.proposed {
				t.Errorf("rehearsed %q, proposed %d entries", f.rehearsed, len(f.proposed))
			}
			if logs := f.logs.String(); !strings.Contains(logs, "event=update.refused ") || strings.Contains(logs, "event=update.rehearsed ") != tc.proposed {
				t.Errorf("logs:\n%s", logs)
			}
		})
	}
}

// A proposal that fails is answered 503 with its error, and recorded as no refusal.
func TestRunProposalFails(t *testing.T) {
	f := newFake()
	f.proposeErr = errors.New("no leader for 1s")
	code, rep := Run(context.Background(), f, cluster.UpdateRequest{}, module(t, kv110))
	if code != 503 || rep.Error != "update not applied: no leader for 1s" || rep.Reasons != nil || len(rep.Rehearsals) != 2 {
		t.Fatalf("%d %+v", code, rep)
	}
	if strings.Contains(f.logs.String(), "update.refused") {
		t.Errorf("logs:\n%s", f.logs.String())
	}
}
