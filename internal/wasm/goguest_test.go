package wasm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

var goGuest struct {
	once sync.Once
	bin  []byte
	err  error
	out  []byte
}

// goGuestBinary builds testdata/goguest as a wasip1 reactor (once per run).
func goGuestBinary(tb testing.TB) []byte {
	tb.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skip("go is not in PATH")
	}
	goGuest.once.Do(func() {
		dir, err := os.MkdirTemp("", "goguest")
		if err != nil {
			goGuest.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "guest.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
		cmd.Dir = filepath.Join("testdata", "goguest")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if goGuest.out, goGuest.err = cmd.CombinedOutput(); goGuest.err == nil {
			goGuest.bin, goGuest.err = os.ReadFile(out)
		}
	})
	if goGuest.err != nil {
		tb.Fatalf("build Go guest: %v\n%s", goGuest.err, goGuest.out)
	}
	return goGuest.bin
}

func TestGoGuest(t *testing.T) {
	bin := goGuestBinary(t)
	ctx, rt := newRuntime(t)
	run := func() (api.Module, *Instrumented, []int64) {
		mod, ins := instantiate(t, ctx, rt, bin)
		const budget = 1 << 40
		var used []int64
		call := func(name string, want uint64, args ...uint64) {
			setFuel(t, mod, budget)
			res, err := mod.ExportedFunction(name).Call(ctx, args...)
			if err != nil {
				t.Fatalf("%s%v: %v", name, args, err)
			}
			if name != "_initialize" && (len(res) != 1 || res[0] != want) {
				t.Fatalf("%s%v = %v, want %d", name, args, res, want)
			}
			used = append(used, budget-fuel(t, mod))
		}
		call("_initialize", 0)
		call("add", 42, 2, 40)
		call("add", 1001, 1, 1000)
		call("add", 42, 2, 40)
		return mod, ins, used
	}
	mod, ins, used := run()
	t.Logf("fuel used by _initialize, add(2,40), add(1,1000), add(2,40): %v", used)
	if d := used[2] - used[1]; d < 960 {
		t.Errorf("add(1,1000) used only %d more fuel than add(2,40); the loop is not metered", d)
	}
	_, _, again := run()
	for i := range used {
		if used[i] != again[i] {
			t.Fatalf("second instance used %v, first %v: metering is not deterministic", again, used)
		}
	}

	m := ins.Module
	t.Logf("%d bytes, %d functions, %d globals, %d exports, custom sections %v",
		len(bin), len(m.Funcs), len(m.Globals), len(m.Exports), customNames(m))
	if len(m.Globals) < 4 {
		t.Fatalf("only %d globals in a Go module", len(m.Globals))
	}
	for _, g := range ins.Globals {
		if _, was := m.ExportedGlobal(g.Index); was {
			continue
		}
		if !strings.HasPrefix(g.Export, GlobalExportPrefix) {
			t.Errorf("global %d exported as %q", g.Index, g.Export)
		}
		eg := mod.ExportedGlobal(g.Export)
		if eg == nil {
			t.Fatalf("global %d: no export %q in the instance", g.Index, g.Export)
		}
		if _, ok := eg.(api.MutableGlobal); ok != g.Mutable {
			t.Errorf("global %d: MutableGlobal %v, want %v", g.Index, ok, g.Mutable)
		}
		t.Logf("global %d %s mut=%v = %#x", g.Index, g.Type, g.Mutable, eg.Get())
	}
}

func customNames(m *Module) []string {
	var names []string
	for _, c := range m.CustomSections {
		names = append(names, c.Name)
	}
	return names
}

func BenchmarkInstrumentGoGuest(b *testing.B) {
	bin := goGuestBinary(b)
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Instrument(bin, MeterBulk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileInstrumentedGoGuest(b *testing.B) {
	bin := goGuestBinary(b)
	ins, err := Instrument(bin, MeterBulk)
	if err != nil {
		b.Fatal(err)
	}
	ctx, rt := newRuntime(b)
	for b.Loop() {
		cm, err := rt.CompileModule(ctx, ins.Binary)
		if err != nil {
			b.Fatal(err)
		}
		cm.Close(ctx)
	}
}
