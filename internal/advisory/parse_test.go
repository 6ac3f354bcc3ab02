package advisory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodTOML = `# one of each kind
[[advisory]]
id = "FTVS-2026-001"
action = "block"
text = "kv 1.1 corrupts its state at import"
remedy = "install kv 1.1.1"
[advisory.when]
module = "kv"
module_version = ">=1.1, <1.1.1"
runtime_version = "<0.2"
abi = ">=1"
os = "linux"
arch = ["amd64", "arm64"]
kernel = ">=6.1, <6.1.2.2147"

[[advisory]]
id = "FTVS-2026-002"
action = "warn"
text = """
slow sync on arm64"""
remedy = "plan a window"
when = { arch = "arm64", abi = 1 }
`

const goodJSON = `{
  "advisories": [
    {
      "id": "FTVS-2026-001",
      "action": "block",
      "text": "kv 1.1 corrupts its state at import",
      "remedy": "install kv 1.1.1",
      "when": {
        "module": "kv",
        "module_version": ">=1.1, <1.1.1",
        "runtime_version": "<0.2",
        "abi": ">=1",
        "os": "linux",
        "arch": ["amd64", "arm64"],
        "kernel": ">=6.1, <6.1.2.2147"
      }
    },
    {"id": "FTVS-2026-002", "action": "warn", "text": "slow sync on arm64", "remedy": "plan a window",
     "when": {"arch": "arm64", "abi": 1}}
  ]
}`

func TestParseGood(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"advisories.toml", goodTOML},
		{"advisories.json", goodJSON},
		{"advisories", goodJSON}, // sniffed
		{"advisories.conf", goodTOML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			advs, err := Parse(tc.name, []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(advs) != 2 {
				t.Fatalf("%d advisories", len(advs))
			}
			a, b := advs[0], advs[1]
			if a.ID != "FTVS-2026-001" || a.Action != Block || a.Text != "kv 1.1 corrupts its state at import" || a.Remedy != "install kv 1.1.1" {
				t.Errorf("first: %+v", a)
			}
			want := `module=kv module_version=">=1.1, <1.1.1" runtime_version="<0.2" abi=">=1" os=linux arch=amd64|arm64 kernel=">=6.1, <6.1.2.2147"`
			if got := a.When.String(); got != want {
				t.Errorf("first when:\n got %s\nwant %s", got, want)
			}
			if b.ID != "FTVS-2026-002" || b.Action != Warn || b.Text != "slow sync on arm64" || b.When.String() != `abi="=1" arch=arm64` {
				t.Errorf("second: %+v when %s", b, b.When)
			}
			wantLines := [2]int{2, 16}
			if strings.Contains(tc.data, `"advisories"`) {
				wantLines = [2]int{3, 18}
			}
			if a.Line != wantLines[0] || b.Line != wantLines[1] {
				t.Errorf("lines %d, %d; want %v", a.Line, b.Line, wantLines)
			}
		})
	}
}

func TestParseEmptyAndStar(t *testing.T) {
	for _, data := range []string{"", "# nothing yet\n", "{}", `{"advisories": []}`} {
		advs, err := Parse("a", []byte(data))
		if err != nil || len(advs) != 0 {
			t.Errorf("Parse(%q) = %v, %v", data, advs, err)
		}
	}
	advs, err := Parse("a.toml", []byte("[[advisory]]\nid='F'\naction='warn'\ntext='freeze'\nremedy='wait'\nwhen.module='*'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !advs[0].When.Matches(Facts{Member: "witness"}) {
		t.Error(`module = "*" should match even a member with no facts`)
	}
}

// want is one expected problem: its line, its field and a piece of its message.
type want struct {
	line  int
	field string
	msg   string
}

// adv is a valid TOML advisory (7 lines) with extra lines after its when table.
func adv(id string, when ...string) string {
	return fmt.Sprintf("[[advisory]]\nid = %q\naction = \"block\"\ntext = \"t\"\nremedy = \"r\"\n[advisory.when]\nmodule = \"kv\"\n%s", id, lines(when...))
}

func lines(l ...string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file, data string
		want             []want
	}{
		{"toml syntax", "a.toml", adv("A", `kernel = ">=6.1`), []want{{8, "", "not valid TOML"}}},
		{"toml duplicate key", "a.toml", adv("A", `module = "x"`), []want{{8, "", "not valid TOML"}}},
		{"bad kernel range", "a.toml", adv("A", "", `kernel = ">=6.x"`), []want{{9, "advisory[0].when.kernel", `bad version range ">=6.x"`}}},
		{"range hint", "a.toml", adv("A", `runtime_version = "=>0.2"`), []want{{8, "advisory[0].when.runtime_version", `runtime_version = "<0.2"`}}},
		{"unknown when key", "a.toml", adv("A", `modul_version = "1"`), []want{{8, "advisory[0].when.modul_version", `did you mean "module_version"?`}}},
		{"unknown advisory key", "a.toml", "[[advisory]]\nid = \"A\"\nacton = \"warn\"\naction = \"warn\"\ntext = \"t\"\nremedy = \"r\"\nwhen = {module = \"kv\"}\n",
			[]want{{3, "advisory[0].acton", `did you mean "action"?`}}},
		{"condition outside when", "a.toml", "[[advisory]]\nid = \"A\"\naction = \"warn\"\ntext = \"t\"\nremedy = \"r\"\nmodul = \"kv\"\n",
			[]want{{1, "advisory[0].when", "missing"}, {6, "advisory[0].modul", "conditions such as module go under [advisory.when]"}}},
		{"advisory key inside when", "a.toml", adv("A", `remedy = "x"`), []want{{8, "advisory[0].when.remedy", "belongs to the advisory"}}},
		{"unknown top key", "a.toml", "[[advisories]]\nid = \"A\"\n", []want{{1, "advisories", `did you mean "advisory"?`}}},
		{"key above the first header", "a.toml", "# advisories\nid = \"A\"\n" + adv("A"), []want{{2, "id", "below an [[advisory]] header"}}},
		{"single brackets", "a.toml", "[advisory]\nid = \"A\"\n", []want{{1, "advisory", "[[advisory]]"}}},
		{"missing fields", "a.toml", "# c\n[[advisory]]\nid = \"A\"\n[advisory.when]\nos = \"linux\"\n",
			[]want{{2, "advisory[0].action", "missing"}, {2, "advisory[0].text", "missing"}, {2, "advisory[0].remedy", "missing"}}},
		{"empty strings", "a.toml", "[[advisory]]\nid = \" \"\naction = \"\"\ntext = \"t\"\nremedy = \"r\"\nwhen.os = \"linux\"\n",
			[]want{{2, "advisory[0].id", "is empty"}, {3, "advisory[0].action", "is empty"}}},
		{"wrong types", "a.toml", "[[advisory]]\nid = 7\naction = \"warn\"\ntext = [\"t\"]\nremedy = \"r\"\nwhen = \"always\"\n",
			[]want{{2, "advisory[0].id", "is an integer: write a string"}, {4, "advisory[0].text", "is a list"}, {6, "advisory[0].when", "is a string: write the conditions as a table"}}},
		{"bad id", "a.toml", strings.Replace(adv("A"), `"A"`, `"FTVS 1"`, 1), []want{{2, "advisory[0].id", "without spaces"}}},
		{"bad action", "a.toml", strings.Replace(adv("A"), `"block"`, `"refuse"`, 1), []want{{3, "advisory[0].action", `action "refuse": write action = "block"`}}},
		{"duplicate ids", "a.toml", adv("A") + adv("B") + adv("A"), []want{{16, "advisory[2].id", `duplicate id "A": advisory[0] (line 1)`}}},
		{"missing when", "a.toml", "[[advisory]]\nid = \"A\"\naction = \"warn\"\ntext = \"t\"\nremedy = \"r\"\n", []want{{1, "advisory[0].when", `module = "*"`}}},
		{"empty when", "a.toml", "[[advisory]]\nid = \"A\"\naction = \"warn\"\ntext = \"t\"\nremedy = \"r\"\n[advisory.when]\n", []want{{6, "advisory[0].when", "empty: an advisory without conditions"}}},
		{"abi fraction", "a.toml", adv("A", `abi = ">=1.5"`), []want{{8, "advisory[0].when.abi", "whole number"}}},
		{"abi zero", "a.toml", adv("A", `abi = 0`), []want{{8, "advisory[0].when.abi", "start at 1"}}},
		{"os case", "a.toml", adv("A", `os = "Linux"`), []want{{8, "advisory[0].when.os", `did you mean "linux"?`}}},
		{"arch alias", "a.toml", adv("A", `arch = ["amd64", "x86_64"]`), []want{{8, "advisory[0].when.arch", `Go calls it "amd64"`}}},
		{"empty list", "a.toml", adv("A", `os = []`), []want{{8, "advisory[0].when.os", "empty list"}}},
		{"not a name", "a.toml", adv("A", `os = 1`), []want{{8, "advisory[0].when.os", "is an integer"}}},
		{"inline table key takes its table's line", "a.toml", "[[advisory]]\nid = \"A\"\naction = \"warn\"\ntext = \"t\"\nremedy = \"r\"\nwhen = { kernel = \"6.x\" }\n",
			[]want{{6, "advisory[0].when.kernel", "bad version range"}}},
		{"quoted and dotted keys", "a.toml", "[[advisory]]\n\"id\" = \"A\"\naction = \"warn\"\ntext = \"t\"\nremedy = \"r\"\nwhen.kernel = \"6.x\"\n",
			[]want{{6, "advisory[0].when.kernel", "bad version range"}}},
		{"multi-line string is not scanned", "a.toml", "[[advisory]]\nid = \"A\"\naction = \"warn\"\ntext = '''\nkernel = \"x\"\n'''\nremedy = \"r\"\n[advisory.when]\nkernel = \"6.x\"\n",
			[]want{{9, "advisory[0].when.kernel", "bad version range"}}},
		{"second advisory", "a.toml", adv("A") + "\n" + adv("B", `kernel = "6.x"`), []want{{16, "advisory[1].when.kernel", "bad version range"}}},
		{"many problems are capped", "a.toml", strings.Repeat("[[advisory]]\n", 12),
			[]want{{1, "advisory[0].id", "missing"}, {1, "advisory[0].action", "missing"}, {1, "advisory[0].text", "missing"}, {1, "advisory[0].remedy", "missing"},
				{1, "advisory[0].when", "missing"}, {2, "advisory[1].id", "missing"}, {2, "advisory[1].action", "missing"}, {2, "advisory[1].text", "missing"},
				{2, "advisory[1].remedy", "missing"}, {2, "advisory[1].when", "missing"}, {0, "", "and 50 more problems"}}},

		{"byte order mark and CRLF", "a.toml", "\ufeff" + strings.ReplaceAll(adv("A", `kernel = "6.x"`), "\n", "\r\n"), []want{{8, "advisory[0].when.kernel", "bad version range"}}},
		{"json byte order mark", "a.json", "\ufeff{\n\"advisories\": 1}", []want{{2, "advisories", "write a list"}}},
		{"json syntax", "a.json", "{\n  \"advisories\": [\n    {\"id\": \"A\",}\n  ]\n}\n", []want{{3, "", "not valid JSON"}}},
		{"json truncated", "a.json", "{\n  \"advisories\": [\n", []want{{2, "", "not valid JSON"}}},
		{"json trailing data", "a.json", "{}\n{}\n", []want{{2, "", "more after the closing }"}}},
		{"json duplicate key", "a.json", "{\"advisories\": [{\n\"id\": \"A\",\n\"id\": \"B\"}]}", []want{{3, "advisories[0].id", `key "id" given twice (line 2)`}}},
		{"json not an object", "a.json", "[1]", []want{{1, "", "the file is a list"}}},
		{"json top is not a list", "a.json", "{\"advisories\": {}}", []want{{1, "advisories", "write a list of advisories"}}},
		{"json item is not a table", "a.json", "{\"advisories\": [\n1]}", []want{{2, "advisories[0]", "is an integer: write a table"}}},
		{"json fields", "a.json", `{
 "advisory": [],
 "advisories": [{
  "id": "A", "action": "warn", "text": "t", "remedy": "r",
  "when": {
   "module": "kv",
   "kernal": ">=6.1",
   "module_version": "1.x",
   "abi": 1.5
  }
 }]
}`, []want{{2, "advisory", `did you mean "advisories"?`}, {7, "advisories[0].when.kernal", `did you mean "kernel"?`},
			{8, "advisories[0].when.module_version", `"module_version": ">=1.1, <1.1.1"`}, {9, "advisories[0].when.abi", `"abi": ">=1"`}}},
		{"json empty when", "a.json", "{\"advisories\": [{\"id\": \"A\", \"action\": \"warn\", \"text\": \"t\", \"remedy\": \"r\",\n\"when\": {}}]}",
			[]want{{2, "advisories[0].when", `"module": "*"`}}},
		{"json too deep", "a.json", strings.Repeat("[", 40) + strings.Repeat("]", 40), []want{{1, "", "nested more than"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			advs, err := Parse(tc.file, []byte(tc.data))
			if err == nil {
				t.Fatalf("accepted: %+v", advs)
			}
			if advs != nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse = %v, %v: want no advisories and an ErrInvalid", advs, err)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("%T is not Errors", err)
			}
			if len(es) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(es), len(tc.want), err)
			}
			for i, w := range tc.want {
				e := es[i]
				if e.Source != tc.file || e.Line != w.line || e.Field != w.field || !strings.Contains(e.Msg, w.msg) {
					t.Errorf("problem %d: %s (line %d, field %q)\nwant line %d, field %q, message with %q", i, e, e.Line, e.Field, w.line, w.field, w.msg)
				}
				if wantPrefix := fmt.Sprintf("%s:%d: ", tc.file, w.line); w.line > 0 && !strings.HasPrefix(e.Error(), wantPrefix) {
					t.Errorf("problem %d: %s does not start with %q", i, e, wantPrefix)
				}
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("a.toml", make([]byte, maxFileBytes+1))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "advisories.toml")
	if err := os.WriteFile(path, []byte(adv("A", `kernel = "6.x"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":8: advisory[0].when.kernel: ") {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.toml")); err == nil || errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

// The example shipped with the repository stays valid, and its first advisory matches
// the combination it describes.
func TestExampleFile(t *testing.T) {
	advs, err := Load(filepath.Join("..", "..", "examples", "advisories.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(advs) < 2 || len(Blocking(Evaluate(advs, nil))) != 0 {
		t.Fatalf("%d advisories", len(advs))
	}
	actions := map[Action]bool{}
	for _, a := range advs {
		actions[a.Action] = true
	}
	if !actions[Block] || !actions[Warn] {
		t.Errorf("the example should show both actions: %v", actions)
	}
	bad := Facts{Member: "coserver2", ModuleName: "kv", ModuleVersion: "1.1.0", RuntimeVersion: "0.1.0-dev", ABI: 1, OS: "linux", Arch: "amd64", Kernel: "6.1.0-18-amd64"}
	m := Evaluate(advs, []Facts{bad})
	if len(m) != 1 || m[0].Advisory.ID != "FTVS-2026-001" || !m[0].Block() {
		t.Fatalf("matches: %v", m)
	}
	fixed := bad
	fixed.ModuleVersion = "1.1.1"
	if m := Evaluate(advs, []Facts{fixed}); len(m) != 0 {
		t.Fatalf("kv 1.1.1 matches: %v", m)
	}
}
