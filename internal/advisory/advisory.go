// Package advisory reads the operator's advisories file — known-bad combinations of
// module, runtime and platform versions — and evaluates it against the facts of each
// member, for `ftvs update` (block or warn) and `ftvs doctor`. See DESIGN.md.
package advisory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ftvs/ftvs/internal/platform"
	"github.com/ftvs/ftvs/internal/version"
	"github.com/ftvs/ftvs/internal/vrange"
)

// Action is what an advisory does when it matches.
type Action string

const (
	// Block: `ftvs update` refuses the update.
	Block Action = "block"
	// Warn: `ftvs update` goes on and prints the advisory.
	Warn Action = "warn"
)

// Advisory is one known-bad combination and what to do about it.
type Advisory struct {
	ID     string    `json:"id"`
	Action Action    `json:"action"`
	Text   string    `json:"text"`   // what goes wrong
	Remedy string    `json:"remedy"` // what to do instead
	When   Condition `json:"when"`
	Line   int       `json:"-"` // where the advisory starts in its file, from 1; 0 if unknown
}

// Condition is when an advisory applies: every condition given must hold. The zero
// value of a field (empty string, nil list, a range that admits every version) is no
// condition. A condition on a fact the member does not report (empty, or a version that
// does not parse) does not hold: see Gaps for those.
type Condition struct {
	Module         string       // module name, exactly
	ModuleVersion  vrange.Range // the module's version
	RuntimeVersion vrange.Range // the ftvs runtime version of the member
	ABI            vrange.Range // the guest ABI level, a range over single integers
	OS             []string     // any of these (runtime.GOOS names)
	Arch           []string     // any of these (runtime.GOARCH names)
	Kernel         vrange.Range // the kernel release, read by KernelVersion
}

// Facts are what one member (or this machine, or an update about to happen) is: what
// advisories are evaluated against. An empty string, or ABI 0, is unknown.
type Facts struct {
	Member         string `json:"member"`
	ModuleName     string `json:"module_name,omitempty"`
	ModuleVersion  string `json:"module_version,omitempty"`
	RuntimeVersion string `json:"runtime_version,omitempty"`
	ABI            int    `json:"abi,omitempty"` // levels start at 1
	OS             string `json:"os,omitempty"`
	Arch           string `json:"arch,omitempty"`
	Kernel         string `json:"kernel,omitempty"` // as uname -r prints it
}

// LocalMember is the Member of LocalFacts.
const LocalMember = "this machine"

// LocalFacts are this machine's facts: this build's runtime version and ABI level, and
// the platform. The module is unknown: callers fill in ModuleName and ModuleVersion.
func LocalFacts() Facts {
	p := platform.Local()
	return Facts{
		Member:         LocalMember,
		RuntimeVersion: version.Version,
		ABI:            version.ABI,
		OS:             p.OS,
		Arch:           p.Arch,
		Kernel:         p.Kernel,
	}
}

// String is the facts for a person: "kv 1.1.0, ftvs 0.1.0-dev, linux/amd64 kernel
// 6.1.0-18-amd64"; unknown facts are left out.
func (f Facts) String() string {
	var parts []string
	if f.ModuleName != "" || f.ModuleVersion != "" {
		parts = append(parts, strings.TrimSpace(orUnknown(f.ModuleName, "module")+" "+f.ModuleVersion))
	}
	if f.RuntimeVersion != "" {
		parts = append(parts, "ftvs "+f.RuntimeVersion)
	}
	var plat []string
	if f.OS != "" || f.Arch != "" {
		plat = append(plat, orUnknown(f.OS, "?")+"/"+orUnknown(f.Arch, "?"))
	}
	if f.Kernel != "" {
		plat = append(plat, "kernel "+f.Kernel)
	}
	if len(plat) > 0 {
		parts = append(parts, strings.Join(plat, " "))
	}
	if len(parts) == 0 {
		return "no facts known"
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s, unknown string) string {
	if s == "" {
		return unknown
	}
	return s
}

// Match is one advisory that applies to one member.
type Match struct {
	Advisory Advisory `json:"advisory"`
	Facts    Facts    `json:"facts"`
}

// Block reports whether the match blocks (rather than warns).
func (m Match) Block() bool { return m.Advisory.Action == Block }

// String is the match for a person: "BLOCK FTVS-2026-001 on coserver2 (kv 1.1.0, ftvs
// 0.1.0-dev, linux/amd64 kernel 6.1.0-18-amd64): TEXT. Remedy: REMEDY".
func (m Match) String() string {
	return fmt.Sprintf("%s %s on %s (%s): %s Remedy: %s",
		strings.ToUpper(string(m.Advisory.Action)), m.Advisory.ID, m.Facts.Member, m.Facts,
		sentence(m.Advisory.Text), sentence(m.Advisory.Remedy))
}

// sentence ends s with a full stop unless it ends with punctuation already.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s[len(s)-1:], ".!?") {
		return s
	}
	return s + "."
}

// Gap is an advisory that may apply to a member but cannot be decided: every condition
// on a fact the member reports holds, and the conditions on Missing facts could not be
// checked.
type Gap struct {
	Advisory Advisory `json:"advisory"`
	Facts    Facts    `json:"facts"`
	Missing  []string `json:"missing"` // condition names, as in the file: module_version, kernel...
}

// String is the gap for a person: "? FTVS-2026-001 on coserver1 (kv, ftvs 0.1.0-dev):
// cannot tell: module_version unknown".
func (g Gap) String() string {
	return fmt.Sprintf("? %s %s on %s (%s): cannot tell: %s unknown",
		strings.ToUpper(string(g.Advisory.Action)), g.Advisory.ID, g.Facts.Member, g.Facts, strings.Join(g.Missing, ", "))
}

// Evaluate is every advisory that applies to each member: one Match per advisory and
// member, in the order of advs, then of facts.
func Evaluate(advs []Advisory, facts []Facts) []Match {
	var out []Match
	for _, a := range advs {
		for _, f := range facts {
			if ok, missing := a.When.check(f); ok && len(missing) == 0 {
				out = append(out, Match{Advisory: a, Facts: f})
			}
		}
	}
	return out
}

// Gaps is every advisory and member for which Evaluate could not decide, because a
// fact the advisory has a condition on is unknown, while all its other conditions hold.
func Gaps(advs []Advisory, facts []Facts) []Gap {
	var out []Gap
	for _, a := range advs {
		for _, f := range facts {
			if ok, missing := a.When.check(f); ok && len(missing) > 0 {
				out = append(out, Gap{Advisory: a, Facts: f, Missing: missing})
			}
		}
	}
	return out
}

// Blocking is the matches that block.
func Blocking(ms []Match) []Match {
	return slices.DeleteFunc(slices.Clone(ms), func(m Match) bool { return !m.Block() })
}

// Warnings is the matches that only warn.
func Warnings(ms []Match) []Match {
	return slices.DeleteFunc(slices.Clone(ms), Match.Block)
}

// Matches reports whether c holds for f. Unknown facts do not hold.
func (c Condition) Matches(f Facts) bool {
	ok, missing := c.check(f)
	return ok && len(missing) == 0
}

// check reports whether no condition fails on a known fact, and which conditions are on
// unknown facts.
func (c Condition) check(f Facts) (ok bool, missing []string) {
	ok = true
	test := func(name string, given, known, holds bool) {
		switch {
		case !given:
		case !known:
			missing = append(missing, name)
		case !holds:
			ok = false
		}
	}
	test("module", c.Module != "", f.ModuleName != "", c.Module == f.ModuleName)
	mv, mvErr := vrange.ParseVersion(f.ModuleVersion)
	test("module_version", !c.ModuleVersion.Any(), f.ModuleVersion != "" && mvErr == nil, c.ModuleVersion.Contains(mv))
	rv, rvErr := vrange.ParseVersion(f.RuntimeVersion)
	test("runtime_version", !c.RuntimeVersion.Any(), f.RuntimeVersion != "" && rvErr == nil, c.RuntimeVersion.Contains(rv))
	abi := vrange.Version{N: 1}
	abi.Parts[0] = uint64(max(f.ABI, 0))
	test("abi", !c.ABI.Any(), f.ABI > 0, c.ABI.Contains(abi))
	test("os", len(c.OS) > 0, f.OS != "", slices.Contains(c.OS, f.OS))
	test("arch", len(c.Arch) > 0, f.Arch != "", slices.Contains(c.Arch, f.Arch))
	kv, kvOK := KernelVersion(f.Kernel)
	test("kernel", !c.Kernel.Any(), kvOK, c.Kernel.Contains(kv))
	if !ok {
		return false, nil
	}
	return true, missing
}

// conditionJSON is a Condition as the file writes it.
type conditionJSON struct {
	Module         string   `json:"module,omitempty"`
	ModuleVersion  string   `json:"module_version,omitempty"`
	RuntimeVersion string   `json:"runtime_version,omitempty"`
	ABI            string   `json:"abi,omitempty"`
	OS             []string `json:"os,omitempty"`
	Arch           []string `json:"arch,omitempty"`
	Kernel         string   `json:"kernel,omitempty"`
}

// MarshalJSON writes c as the advisories file does, ranges as strings. A condition that
// holds everywhere is written {"module": "*"}, as the file must say it.
func (c Condition) MarshalJSON() ([]byte, error) {
	rng := func(r vrange.Range) string {
		if r.Any() {
			return ""
		}
		return r.String()
	}
	j := conditionJSON{
		Module: c.Module, ModuleVersion: rng(c.ModuleVersion), RuntimeVersion: rng(c.RuntimeVersion),
		ABI: rng(c.ABI), OS: c.OS, Arch: c.Arch, Kernel: rng(c.Kernel),
	}
	if j.Module == "" && j.ModuleVersion == "" && j.RuntimeVersion == "" && j.ABI == "" && len(j.OS) == 0 && len(j.Arch) == 0 && j.Kernel == "" {
		j.Module = "*"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // ">=6.1" stays readable
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// String is the condition for a person: `module=kv module_version=">=1.1, <1.1.1"`.
func (c Condition) String() string {
	var s []string
	add := func(k, v string) { s = append(s, k+"="+v) }
	rng := func(k string, r vrange.Range) {
		if !r.Any() {
			add(k, fmt.Sprintf("%q", r.String()))
		}
	}
	if c.Module != "" {
		add("module", c.Module)
	}
	rng("module_version", c.ModuleVersion)
	rng("runtime_version", c.RuntimeVersion)
	rng("abi", c.ABI)
	if len(c.OS) > 0 {
		add("os", strings.Join(c.OS, "|"))
	}
	if len(c.Arch) > 0 {
		add("arch", strings.Join(c.Arch, "|"))
	}
	rng("kernel", c.Kernel)
	if len(s) == 0 {
		return "always"
	}
	return strings.Join(s, " ")
}
