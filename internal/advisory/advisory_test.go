package advisory

import (
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/version"
)

func TestKernelVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"6.1.0-18-amd64", "6.1.0.18"},
		{"5.15.0-91-generic", "5.15.0.91"},
		{"4.18.0-513.9.1.el8_9.x86_64", "4.18.0.513"},
		{"6.1.2.2147", "6.1.2.2147"},
		{"6.1.2.2147-7", "6.1.2.2147"}, // four parts already
		{"1.2.3.4.5", "1.2.3.4"},
		{"6.6.13+bpo-amd64", "6.6.13"},
		{"14.0-RELEASE-p3", "14.0"},
		{"6.8", "6.8"},
		{"6.1.", "6.1"},
		{"6.1-rc7", "6.1"},
		{"6..1", "6"},
		{"6-", "6"},
		{"99999999999999999999.1", ""}, // too large to be a number
	} {
		v, ok := KernelVersion(tc.in)
		if got := v.String(); (tc.want == "") == ok || ok && got != tc.want {
			t.Errorf("KernelVersion(%q) = %s, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "Linux", "-18", "v6.1", " 6.1"} {
		if v, ok := KernelVersion(bad); ok {
			t.Errorf("KernelVersion(%q) = %s, want not a version", bad, v)
		}
	}
}

func mustParse(t *testing.T, data string) []Advisory {
	t.Helper()
	advs, err := Parse("test.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return advs
}

// when is a TOML file of one advisory, id A, with these conditions.
func when(action string, conds ...string) string {
	return "[[advisory]]\nid = \"A\"\naction = \"" + action + "\"\ntext = \"t\"\nremedy = \"r\"\n[advisory.when]\n" + strings.Join(conds, "\n") + "\n"
}

func TestConditionMatches(t *testing.T) {
	bad := Facts{Member: "coserver2", ModuleName: "kv", ModuleVersion: "1.1.0", RuntimeVersion: "0.1.0-dev", ABI: 1, OS: "linux", Arch: "amd64", Kernel: "6.1.0-18-amd64"}
	with := func(f func(*Facts)) Facts { g := bad; f(&g); return g }
	tests := []struct {
		name    string
		conds   []string
		facts   Facts
		match   bool
		missing []string // for a gap
	}{
		{"all conditions hold", []string{`module = "kv"`, `module_version = ">=1.1, <1.1.1"`, `runtime_version = "<0.2"`, `abi = ">=1"`, `os = "linux"`, `arch = ["arm64", "amd64"]`, `kernel = ">=6.1, <6.1.2.2147"`}, bad, true, nil},
		{"other module", []string{`module = "kv"`}, with(func(f *Facts) { f.ModuleName = "kv2" }), false, nil},
		{"fixed module version", []string{`module_version = ">=1.1, <1.1.1"`}, with(func(f *Facts) { f.ModuleVersion = "1.1.1" }), false, nil},
		{"new runtime", []string{`runtime_version = "<0.2"`}, with(func(f *Facts) { f.RuntimeVersion = "0.2.0" }), false, nil},
		{"abi", []string{`abi = 2`}, bad, false, nil},
		{"abi exact", []string{`abi = 1`}, bad, true, nil},
		{"os", []string{`os = ["freebsd", "darwin"]`}, bad, false, nil},
		{"arch", []string{`arch = "arm64"`}, bad, false, nil},
		{"fixed kernel build", []string{`kernel = ">=6.1, <6.1.0.19"`}, with(func(f *Facts) { f.Kernel = "6.1.0-19-amd64" }), false, nil},
		{"kernel build in range", []string{`kernel = ">=6.1, <6.1.0.19"`}, bad, true, nil},
		{"star matches unknown", []string{`module = "*"`, `kernel = "*"`, `os = "*"`}, Facts{Member: "witness"}, true, nil},
		{"unknown module version", []string{`module = "kv"`, `module_version = "<2"`}, with(func(f *Facts) { f.ModuleVersion = "" }), false, []string{"module_version"}},
		{"unreadable module version", []string{`module_version = "<2"`}, with(func(f *Facts) { f.ModuleVersion = "latest" }), false, []string{"module_version"}},
		{"unknown kernel", []string{`os = "linux"`, `kernel = ">=6"`}, with(func(f *Facts) { f.Kernel = "" }), false, []string{"kernel"}},
		{"kernel without a number", []string{`kernel = ">=6"`}, with(func(f *Facts) { f.Kernel = "generic" }), false, []string{"kernel"}},
		{"unreachable member", []string{`runtime_version = "<0.2"`, `abi = 1`, `arch = "amd64"`}, Facts{Member: "witness"}, false, []string{"runtime_version", "abi", "arch"}},
		{"a failing known fact is no gap", []string{`os = "windows"`, `kernel = ">=6"`}, with(func(f *Facts) { f.Kernel = "" }), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			advs := mustParse(t, when("block", tc.conds...))
			if got := advs[0].When.Matches(tc.facts); got != tc.match {
				t.Errorf("Matches = %v, want %v", got, tc.match)
			}
			ms := Evaluate(advs, []Facts{tc.facts})
			if (len(ms) == 1) != tc.match || len(ms) > 1 {
				t.Errorf("Evaluate = %v", ms)
			}
			gaps := Gaps(advs, []Facts{tc.facts})
			switch {
			case tc.missing == nil && len(gaps) != 0:
				t.Errorf("Gaps = %v, want none", gaps)
			case tc.missing != nil && (len(gaps) != 1 || !slices.Equal(gaps[0].Missing, tc.missing)):
				t.Errorf("Gaps = %v, want one missing %v", gaps, tc.missing)
			}
		})
	}
}

func TestEvaluateOrderAndKinds(t *testing.T) {
	advs := mustParse(t, `
[[advisory]]
id = "W"
action = "warn"
text = "slow"
remedy = "wait"
when.arch = "arm64"

[[advisory]]
id = "B"
action = "block"
text = "breaks."
remedy = "update the runtime first"
when.runtime_version = "<0.2"
`)
	facts := []Facts{
		{Member: "coserver1", RuntimeVersion: "0.1.0", Arch: "arm64"},
		{Member: "coserver2", RuntimeVersion: "0.2.0", Arch: "arm64"},
		{Member: "witness", RuntimeVersion: "0.1.0", Arch: "amd64"},
	}
	ms := Evaluate(advs, facts)
	var got []string
	for _, m := range ms {
		got = append(got, m.Advisory.ID+"@"+m.Facts.Member)
	}
	if want := []string{"W@coserver1", "W@coserver2", "B@coserver1", "B@witness"}; !slices.Equal(got, want) {
		t.Fatalf("Evaluate: %v, want %v", got, want)
	}
	if b, w := Blocking(ms), Warnings(ms); len(b) != 2 || len(w) != 2 || b[0].Advisory.ID != "B" || w[0].Advisory.ID != "W" || len(ms) != 4 {
		t.Fatalf("Blocking %v, Warnings %v", b, w)
	}
	if got := Evaluate(nil, facts); got != nil {
		t.Errorf("no advisories: %v", got)
	}
}

func TestStrings(t *testing.T) {
	a := Advisory{ID: "FTVS-2026-001", Action: Block, Text: "kv 1.1 corrupts its state at import", Remedy: "install kv 1.1.1."}
	f := Facts{Member: "coserver2", ModuleName: "kv", ModuleVersion: "1.1.0", RuntimeVersion: "0.1.0-dev", ABI: 1, OS: "linux", Arch: "amd64", Kernel: "6.1.0-18-amd64"}
	want := "BLOCK FTVS-2026-001 on coserver2 (kv 1.1.0, ftvs 0.1.0-dev, linux/amd64 kernel 6.1.0-18-amd64): kv 1.1 corrupts its state at import. Remedy: install kv 1.1.1."
	if got := (Match{a, f}).String(); got != want {
		t.Errorf("Match.String:\n got %s\nwant %s", got, want)
	}
	for _, tc := range []struct {
		f    Facts
		want string
	}{
		{Facts{Member: "witness"}, "no facts known"},
		{Facts{ModuleName: "kv", RuntimeVersion: "0.1.0"}, "kv, ftvs 0.1.0"},
		{Facts{ModuleVersion: "1.2", Arch: "arm64"}, "module 1.2, ?/arm64"},
		{Facts{Kernel: "6.1"}, "kernel 6.1"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.f, got, tc.want)
		}
	}
	g := Gap{Advisory: a, Facts: Facts{Member: "coserver1", ModuleName: "kv"}, Missing: []string{"module_version"}}
	if got, want := g.String(), "? BLOCK FTVS-2026-001 on coserver1 (kv): cannot tell: module_version unknown"; got != want {
		t.Errorf("Gap.String:\n got %s\nwant %s", got, want)
	}
}

func TestLocalFacts(t *testing.T) {
	f := LocalFacts()
	if f.Member != LocalMember || f.RuntimeVersion != version.Version || f.ABI != version.ABI || f.OS != runtime.GOOS || f.Arch != runtime.GOARCH || f.ModuleName != "" {
		t.Fatalf("LocalFacts() = %+v", f)
	}
}

// Advisories marshalled as {"advisories": [...]} are a file that parses back to the same.
func TestJSONRoundTrip(t *testing.T) {
	for _, data := range []string{goodTOML, goodJSON, when("warn", `module = "*"`)} {
		advs, err := Parse("x", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, advs)
	}
}

func roundTrip(t *testing.T, advs []Advisory) {
	t.Helper()
	first, err := json.Marshal(map[string]any{"advisories": advs})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("again.json", first)
	if err != nil {
		t.Fatalf("re-encoded file does not parse: %v\n%s", err, first)
	}
	if again == nil {
		again = []Advisory{}
	}
	second, _ := json.Marshal(map[string]any{"advisories": again})
	if string(first) != string(second) {
		t.Fatalf("round trip differs:\n%s\n%s", first, second)
	}
}
