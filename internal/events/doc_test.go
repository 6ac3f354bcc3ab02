package events

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the catalogue table in EVENTS.md")

const (
	docFile  = "EVENTS.md"
	docBegin = "<!-- BEGIN CATALOGUE: generated from Catalogue by `go test -run TestEventsDoc -update`; do not edit -->\n"
	docEnd   = "<!-- END CATALOGUE -->\n"
)

// renderTable renders Catalogue as the markdown table of EVENTS.md.
func renderTable() string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| code | severity | meaning | action |\n| --- | --- | --- | --- |\n")
	for _, k := range Catalogue {
		b.WriteString("| `" + k.Code + "` | " + k.Severity + " | " + cell(k.Meaning) + " | " + cell(k.Action) + " |\n")
	}
	return b.String()
}

// TestEventsDoc fails when the table in EVENTS.md is not the one rendered from Catalogue;
// -update rewrites it.
func TestEventsDoc(t *testing.T) {
	raw, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: markers %q ... %q not found", docFile, docBegin, docEnd)
	}
	got, want := doc[i+len(docBegin):j], renderTable()
	if got == want {
		return
	}
	if *update {
		doc = doc[:i+len(docBegin)] + want + doc[j:]
		if err := os.WriteFile(docFile, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", docFile)
		return
	}
	t.Errorf("%s disagrees with Catalogue; run go test ./internal/events -run TestEventsDoc -update\nwant:\n%s", docFile, want)
}

func TestCatalogue(t *testing.T) {
	codeRE := regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)
	seen := map[string]bool{}
	for _, k := range Catalogue {
		if !codeRE.MatchString(k.Code) {
			t.Errorf("code %q: want area.name in lower case", k.Code)
		}
		if seen[k.Code] {
			t.Errorf("code %q listed twice", k.Code)
		}
		seen[k.Code] = true
		if severityRank(k.Severity) < 0 {
			t.Errorf("%s: severity %q", k.Code, k.Severity)
		}
		if k.Meaning == "" || k.Action == "" {
			t.Errorf("%s: meaning or action missing", k.Code)
		}
		if got, ok := Lookup(k.Code); !ok || got != k {
			t.Errorf("Lookup(%q) = %+v, %v", k.Code, got, ok)
		}
	}
	if _, ok := Lookup("no.such"); ok {
		t.Error("Lookup of an unknown code succeeded")
	}
	for _, c := range strings.Fields(`member.started member.stopped member.unreachable member.reachable
		link.redundancy_lost link.redundancy_restored link.all_down link.peer_refused quorum.lost
		quorum.regained vs.starting vs.running vs.failed vs.failed_to_initialize vs.reset
		vs.reset_failed redundancy.lost redundancy.restored sync.started sync.progress
		sync.completed sync.deferred cert.expiring witness.transfer witness.waiting link.plaintext
		link.fault_injected link.cut link.uncut`) {
		if !seen[c] {
			t.Errorf("code %s missing from Catalogue", c)
		}
	}
}

// TestCatalogueCoversSources checks that every code the other packages log literally
// ("event", "x.y") or declare (link's Event* constants) is in the catalogue.
func TestCatalogueCoversSources(t *testing.T) {
	emitRE := regexp.MustCompile(`"event",\s*"([a-z_]+\.[a-z_]+)"|Event[A-Za-z]+\s*=\s*"([a-z_]+\.[a-z_]+)"`)
	files, _ := filepath.Glob("../*/*.go")
	if len(files) == 0 {
		t.Skip("no sources next to this package")
	}
	n := 0
	for _, p := range files {
		if strings.HasSuffix(p, "_test.go") || strings.HasPrefix(p, "../events/") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range emitRE.FindAllStringSubmatch(string(src), -1) {
			code := m[1] + m[2]
			n++
			if _, ok := Lookup(code); !ok {
				t.Errorf("%s emits %q, which is not in Catalogue", p, code)
			}
		}
	}
	t.Logf("%d emitted codes checked", n)
}
