package advisory

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"

	"github.com/ftvs/ftvs/internal/suggest"
	"github.com/ftvs/ftvs/internal/vrange"
)

// Limits on one advisories file.
const (
	maxFileBytes  = 1 << 20
	maxAdvisories = 1000
	maxIDBytes    = 64
)

// Load reads and parses the advisories file at path.
func Load(path string) ([]Advisory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("advisories: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxFileBytes+1)); err != nil {
		return nil, fmt.Errorf("advisories: %w", err)
	}
	return Parse(path, buf.Bytes())
}

// Parse reads an advisories file; name is the file as errors should name it, and its
// extension (.toml, .json) decides the format. Any other name is JSON if the text starts
// with '{', TOML otherwise. An empty file is no advisories. On any problem Parse
// returns no advisories and an Errors of every problem found (at most ten), each with
// its line and field.
func Parse(name string, data []byte) ([]Advisory, error) {
	p := &parser{source: name, format: formatOf(name, data)}
	if len(data) > maxFileBytes {
		p.add("", "the file is larger than %d bytes", maxFileBytes)
		return nil, p.err()
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a byte order mark, as some editors write
	var root any
	switch p.format {
	case "json":
		p.top = "advisories"
		v, lines, e := decodeJSON(data)
		if e != nil {
			e.Source = name
			return nil, Errors{e}
		}
		root, p.lines = v, lines
	default:
		p.top = "advisory"
		var raw map[string]any
		if _, err := toml.Decode(string(data), &raw); err != nil {
			return nil, Errors{tomlSyntax(name, err)}
		}
		root, p.lines = raw, tomlLines(data)
	}
	advs := p.file(root)
	if err := p.err(); err != nil {
		return nil, err
	}
	return advs, nil
}

func formatOf(name string, data []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".toml":
		return "toml"
	case ".json":
		return "json"
	}
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		return "json"
	}
	return "toml"
}

func tomlSyntax(source string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{Source: source, Line: pe.Position.Line, Msg: "not valid TOML: " + pe.Message}
	}
	return &Error{Source: source, Msg: "not valid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
}

// parser checks the decoded file (the same shapes from either format) and builds the
// advisories, collecting every problem with the line of its field.
type parser struct {
	source string
	format string         // toml or json
	top    string         // the top key: advisory (TOML) or advisories (JSON)
	lines  map[string]int // field path -> line
	errs   Errors
	more   int // problems past maxProblems
}

// line is the line of path, or of the nearest enclosing field that has one.
func (p *parser) line(path string) int {
	for {
		if n, ok := p.lines[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return p.lines[""]
		}
		path = path[:i]
	}
}

func (p *parser) add(path, format string, args ...any) {
	if len(p.errs) == maxProblems {
		p.more++
		return
	}
	p.errs = append(p.errs, &Error{Source: p.source, Line: p.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if p.more > 0 {
		p.errs = append(p.errs, &Error{Source: p.source, Msg: fmt.Sprintf("and %d more problems", p.more)})
	}
	return p.errs
}

// kv is key = value as the file's format writes it, for examples in messages.
func (p *parser) kv(key, value string) string {
	if p.format == "json" {
		return fmt.Sprintf("%q: %s", key, value)
	}
	return key + " = " + value
}

// whenTable is how the file writes the conditions of an advisory.
func (p *parser) whenTable() string {
	if p.format == "json" {
		return `"when": {...}`
	}
	return "[advisory.when]"
}

var (
	advisoryKeys = []string{"id", "action", "text", "remedy", "when"}
	whenKeys     = []string{"module", "module_version", "runtime_version", "abi", "os", "arch", "kernel"}
	examples     = map[string]string{
		"id":              `"FTVS-2026-001"`,
		"action":          `"block"`,
		"text":            `"kv 1.1 with ftvs runtime < 0.2 corrupts its state at import"`,
		"remedy":          `"update the runtime to 0.2 first, or install kv 1.1.1"`,
		"module":          `"kv"`,
		"module_version":  `">=1.1, <1.1.1"`,
		"runtime_version": `"<0.2"`,
		"abi":             `">=1"`,
		"os":              `"linux"`,
		"arch":            `["amd64", "arm64"]`,
		"kernel":          `">=6.1, <6.1.2.2147"`,
	}
)

func (p *parser) file(root any) []Advisory {
	top, ok := root.(map[string]any)
	if !ok {
		p.add("", "the file is %s: write an object, {%q: [...]}", typeName(root), p.top)
		return nil
	}
	for _, k := range sortedKeys(top) {
		if k == p.top {
			continue
		}
		hint := ""
		if slices.Contains(advisoryKeys, k) || slices.Contains(whenKeys, k) {
			hint = "it belongs to an advisory: write it below an [[advisory]] header"
			if p.format == "json" {
				hint = fmt.Sprintf(`it belongs to an advisory: write it inside %q: [{...}]`, p.top)
			}
		}
		p.unknown(k, k, []string{p.top}, hint)
	}
	v, ok := top[p.top]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if m, isMaps := v.([]map[string]any); isMaps {
		list, ok = make([]any, len(m)), true
		for i := range m {
			list[i] = m[i]
		}
	}
	if !ok {
		if _, isTable := v.(map[string]any); isTable && p.format == "toml" {
			p.add(p.top, "is one table: write each advisory under its own [[advisory]] header, with two brackets")
		} else if p.format == "json" {
			p.add(p.top, "is %s: write a list of advisories, %q: [{...}, {...}]", typeName(v), p.top)
		} else {
			p.add(p.top, "is %s: write each advisory as a table under its own [[advisory]] header", typeName(v))
		}
		return nil
	}
	if len(list) > maxAdvisories {
		p.add(p.top, "%d advisories: at most %d in one file", len(list), maxAdvisories)
		return nil
	}
	var advs []Advisory
	firstID := map[string]string{} // id -> path of the advisory that has it
	for i, item := range list {
		path := fmt.Sprintf("%s[%d]", p.top, i)
		t, ok := item.(map[string]any)
		if !ok {
			p.add(path, "is %s: write a table of id, action, text, remedy and when", typeName(item))
			continue
		}
		a, ok := p.advisory(path, t)
		if a.ID != "" {
			if prev, dup := firstID[a.ID]; dup {
				p.add(path+".id", "duplicate id %q: %s (line %d) has it too; give each advisory its own id", a.ID, prev, p.line(prev))
				ok = false
			} else {
				firstID[a.ID] = path
			}
		}
		if ok {
			advs = append(advs, a)
		}
	}
	return advs
}

// advisory checks one advisory table; ok is false if anything in it is wrong.
func (p *parser) advisory(path string, t map[string]any) (a Advisory, ok bool) {
	n := len(p.errs) + p.more
	for _, k := range sortedKeys(t) {
		if !slices.Contains(advisoryKeys, k) {
			hint := ""
			if w := closest(k, whenKeys); w != "" && closest(k, advisoryKeys) == "" {
				hint = fmt.Sprintf("conditions such as %s go under %s", w, p.whenTable())
			}
			p.unknown(path+"."+k, k, advisoryKeys, hint)
		}
	}
	a.Line = p.line(path)
	a.ID = p.str(path, t, "id", true)
	if a.ID != "" && (len(a.ID) > maxIDBytes || strings.IndexFunc(a.ID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0) {
		p.add(path+".id", "id %q: write at most %d printable characters without spaces, e.g. %s", a.ID, maxIDBytes, p.kv("id", examples["id"]))
	}
	switch act := p.str(path, t, "action", true); act {
	case "", string(Block), string(Warn):
		a.Action = Action(act)
	default:
		p.add(path+".action", "action %q: write %s (refuse the update) or %s (go on, and say so)", act, p.kv("action", `"block"`), p.kv("action", `"warn"`))
	}
	a.Text = p.str(path, t, "text", true)
	a.Remedy = p.str(path, t, "remedy", true)
	a.When = p.when(path+".when", t["when"])
	return a, len(p.errs)+p.more == n
}

// always is the advice for an advisory with no condition.
func (p *parser) always() string {
	return fmt.Sprintf("an advisory without conditions would match every member: write its conditions under %s, or %s there to match every member on purpose",
		p.whenTable(), p.kv("module", `"*"`))
}

func (p *parser) when(path string, v any) Condition {
	var c Condition
	if v == nil {
		p.add(path, "missing: %s", p.always())
		return c
	}
	t, ok := v.(map[string]any)
	if !ok {
		p.add(path, "is %s: write the conditions as a table, %s", typeName(v), p.whenTable())
		return c
	}
	for _, k := range sortedKeys(t) {
		if slices.Contains(whenKeys, k) {
			continue
		}
		hint := ""
		if slices.Contains(advisoryKeys, k) {
			hint = fmt.Sprintf("%s belongs to the advisory, not to its conditions", k)
		}
		p.unknown(path+"."+k, k, whenKeys, hint)
	}
	if len(t) == 0 {
		p.add(path, "empty: %s", p.always())
	}
	if m := p.str(path, t, "module", false); m != "*" {
		c.Module = m
	}
	c.ModuleVersion = p.versionRange(path, t, "module_version")
	c.RuntimeVersion = p.versionRange(path, t, "runtime_version")
	c.Kernel = p.versionRange(path, t, "kernel")
	c.ABI = p.abi(path, t)
	c.OS = p.names(path, t, "os", knownOS)
	c.Arch = p.names(path, t, "arch", knownArch)
	return c
}

// str is the string at t[key]; "" (after a problem is added) if it is missing and
// required, not a string, or empty.
func (p *parser) str(path string, t map[string]any, key string, required bool) string {
	f := path + "." + key
	v, ok := t[key]
	if !ok {
		if required {
			p.add(f, "missing: every advisory needs one, e.g. %s", p.kv(key, examples[key]))
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.add(f, "is %s: write a string, e.g. %s", typeName(v), p.kv(key, examples[key]))
		return ""
	}
	if strings.TrimSpace(s) == "" {
		p.add(f, "is empty: write e.g. %s", p.kv(key, examples[key]))
		return ""
	}
	return strings.TrimSpace(s)
}

func (p *parser) versionRange(path string, t map[string]any, key string) vrange.Range {
	s := p.str(path, t, key, false)
	if s == "" {
		return vrange.Range{}
	}
	r, err := vrange.ParseRange(s)
	if err != nil {
		p.add(path+"."+key, "%v; a range is e.g. %s", err, p.kv(key, examples[key]))
	}
	return r
}

// abi is a range over whole numbers, or one number.
func (p *parser) abi(path string, t map[string]any) vrange.Range {
	f := path + ".abi"
	v, ok := t["abi"]
	if !ok {
		return vrange.Range{}
	}
	if n, isInt := integer(v); isInt {
		if n < 1 {
			p.add(f, "%d: ABI levels start at 1; write e.g. %s", n, p.kv("abi", examples["abi"]))
			return vrange.Range{}
		}
		return vrange.Range{Constraints: []vrange.Constraint{{Op: vrange.OpEq, Version: vrange.Version{Parts: [vrange.MaxParts]uint64{uint64(n)}, N: 1}}}}
	}
	r := p.versionRange(path, t, "abi")
	for _, c := range r.Constraints {
		if c.Version.N != 1 || c.Version.Suffix != "" {
			p.add(f, "%q: the guest ABI level is a whole number, e.g. %s", r.String(), p.kv("abi", examples["abi"]))
			return vrange.Range{}
		}
	}
	return r
}

// names is a name or a list of names from known; nil (any) for "*".
func (p *parser) names(path string, t map[string]any, key string, known []string) []string {
	f := path + "." + key
	v, ok := t[key]
	if !ok {
		return nil
	}
	var list []any
	switch v := v.(type) {
	case string:
		list = []any{v}
	case []any:
		list = v
	default:
		p.add(f, "is %s: write a name or a list, e.g. %s", typeName(v), p.kv(key, examples[key]))
		return nil
	}
	if len(list) == 0 {
		p.add(f, "is an empty list: it would match nothing; write e.g. %s, or remove it", p.kv(key, examples[key]))
		return nil
	}
	var out []string
	for _, item := range list {
		s, ok := item.(string)
		switch {
		case !ok:
			p.add(f, "has %s: write names as strings, e.g. %s", typeName(item), p.kv(key, examples[key]))
			return nil
		case s == "*":
			return nil
		case !slices.Contains(known, s):
			hint := ""
			if best := aliases[strings.ToLower(s)]; best != "" {
				hint = fmt.Sprintf(" (Go calls it %q)", best)
			} else if best := closest(strings.ToLower(s), known); best != "" {
				hint = " (" + suggest.DidYouMean(best) + ")"
			}
			p.add(f, "%q is not a name Go uses%s: write e.g. %s", s, hint, p.kv(key, examples[key]))
			return nil
		case !slices.Contains(out, s):
			out = append(out, s)
		}
	}
	return out
}

// unknown reports a key that is not one of keys, with a hint or the nearest key.
func (p *parser) unknown(path, key string, keys []string, hint string) {
	if len(p.errs) == maxProblems {
		p.more++
		return
	}
	if hint == "" {
		if best := closest(key, keys); best != "" {
			hint = suggest.DidYouMean(best)
		} else {
			hint = "the keys here are " + strings.Join(keys, ", ")
		}
	}
	p.add(path, "unknown key %q: %s", key, hint)
}

// closest is the name in names that key most likely meant (suggest.Closest), or "".
func closest(key string, names []string) string {
	best, _ := suggest.Closest(key, names)
	return best
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// integer reports whether v is a whole number (TOML int64, or a JSON number without a
// fraction or exponent).
func integer(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	}
	return 0, false
}

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case json.Number:
		if _, ok := integer(v); ok {
			return "an integer"
		}
		return "a number"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// The names Go gives operating systems and architectures (go tool dist list): an
// advisory for "Linux" or "x86_64" would never match, so those are refused.
var (
	knownOS   = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	knownArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
	aliases   = map[string]string{"x86_64": "amd64", "x64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386", "macos": "darwin", "osx": "darwin"}
)
