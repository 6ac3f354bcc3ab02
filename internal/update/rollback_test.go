package update

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/cluster"
	"github.com/ftvs/ftvs/internal/entry"
	"github.com/ftvs/ftvs/internal/vm"
	"github.com/ftvs/ftvs/internal/vserver"
)

// earlier is a module of the history.
func earlier(name, version string) vserver.HistoryModule {
	bin := []byte("\x00asm\x01\x00\x00\x00" + name + version)
	return vserver.HistoryModule{Module: &vm.Module{Name: name, SHA256: sha256.Sum256(bin), Binary: bin}, Version: version}
}

func TestRollback(t *testing.T) {
	kv100, kv101 := earlier("kv", "1.0.0"), earlier("kv", "1.0.1")
	for _, tc := range []struct {
		name    string
		to      string
		setup   func(*fakeMember)
		code    int
		error   string
		message string
		target  vserver.HistoryModule
		reasons []Reason
	}{
		{name: "nothing to go back to", setup: func(f *fakeMember) { f.hist = nil }, code: 409,
			error: "rollback refused: no earlier module (the virtual server has run only its current module)"},
		{name: "no such module", to: "ffff", code: 400,
			error: `rollback refused: no earlier module "ffff"; the earlier modules are kv 1.0.0 (` + kv100.Module.SHA256Hex()[:12] + `), kv 1.0.1 (` + kv101.Module.SHA256Hex()[:12] + `)`},
		{name: "the previous module", code: 200, target: kv101,
			message: "rolled back to kv 1.0.1 (" + kv101.Module.SHA256Hex()[:12] + ") at index 42, with the current state"},
		{name: "one named by a prefix, in capitals", to: strings.ToUpper(kv100.Module.SHA256Hex()[:8]), code: 200, target: kv100,
			message: "rolled back to kv 1.0.0 (" + kv100.Module.SHA256Hex()[:12] + ") at index 42, with the current state"},
		{name: "a failed rehearsal", setup: func(f *fakeMember) { f.failOn = map[string]string{"coserver1": "import: trap"} }, code: 409, target: kv101,
			error: "rollback refused",
			reasons: []Reason{{Member: "coserver1", Problem: "rehearsal of the rollback on coserver1 failed: import: trap",
				Remedy: "the earlier module cannot take the current state: keep the current module, or update to a fixed one"}}},
		{name: "a proposal that fails", setup: func(f *fakeMember) { f.proposeErr = errors.New("no leader for 1s") }, code: 503, target: kv101,
			error: "rollback not applied: no leader for 1s"},
		{name: "the switch failed", setup: func(f *fakeMember) { f.result = vserver.Result{Index: 7, Err: errors.New("start: trap")} }, code: 409, target: kv101,
			error: "rollback failed at index 7 on every CoServer (the current module keeps running): start: trap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.hist = []vserver.HistoryModule{kv100, kv101}
			if tc.setup != nil {
				tc.setup(f)
			}
			code, rep := Rollback(context.Background(), f, cluster.RollbackRequest{To: tc.to})
			if code != tc.code || rep.Error != tc.error || rep.Message != tc.message {
				t.Fatalf("%d %+v", code, rep)
			}
			if len(rep.Reasons) != len(tc.reasons) || len(tc.reasons) > 0 && rep.Reasons[0] != tc.reasons[0] {
				t.Errorf("reasons %+v, want %+v", rep.Reasons, tc.reasons)
			}
			if logs := f.logs.String(); strings.Contains(logs, "event=rollback.refused ") != (tc.reasons != nil) {
				t.Errorf("logs:\n%s", logs)
			}
			if tc.target.Module == nil {
				if f.rehearsed != nil || f.proposed != nil {
					t.Errorf("rehearsed %q, proposed %+v", f.rehearsed, f.proposed)
				}
				return
			}
			if rep.Module.Name != "kv" || rep.Module.Version != tc.target.Version || rep.SHA256 != tc.target.Module.SHA256Hex() || len(rep.Rehearsals) != 2 {
				t.Errorf("reply %+v", rep)
			}
			if tc.reasons != nil {
				if f.proposed != nil {
					t.Errorf("proposed %+v", f.proposed)
				}
				return
			}
			if len(f.proposed) != 1 || f.proposed[0].Kind != entry.KindRollback || string(f.proposed[0].Payload) != string(tc.target.Module.SHA256[:]) {
				t.Errorf("proposed %+v", f.proposed)
			}
		})
	}
}

// A rollback is rehearsed on the CoServers that answer and run the virtual server.
func TestRollbackRehearsesOnRunningCoServers(t *testing.T) {
	f := newFake()
	f.hist = []vserver.HistoryModule{earlier("kv", "1.0.0")}
	f.view = view("coserver1", coserver("coserver1"), with(coserver("coserver2"), unreachable), witness())
	code, rep := Rollback(context.Background(), f, cluster.RollbackRequest{})
	if code != 200 || len(rep.Rehearsals) != 1 || rep.Rehearsals[0].Member != "coserver1" {
		t.Fatalf("%d %+v", code, rep)
	}
	if len(f.rehearsed) != 1 || f.rehearsed[0] != "here kv" {
		t.Errorf("rehearsed %q", f.rehearsed)
	}
}
