package main

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The repository's documentation names tests, files and ftvs's flags; each must exist,
// or the doc is wrong (issue 19: docs that named tests and flags long gone). It reads
// every .md file outside third_party/, and the comments of every .go file.
func TestDocsNameWhatExists(t *testing.T) {
	root := filepath.Join("..", "..")
	docs := map[string]string{}
	tests := map[string]bool{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && rel != "." || rel == "third_party" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		switch {
		case strings.HasSuffix(path, ".md"):
			b, err := os.ReadFile(path)
			if err == nil {
				docs[rel] = string(b)
			}
		case strings.HasSuffix(path, ".go"):
			b, err := os.ReadFile(path)
			if err != nil {
				break
			}
			for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w+)\(`).FindAllStringSubmatch(string(b), -1) {
				tests[m[1]] = true
			}
			// The comments of the code are docs too.
			var comments strings.Builder
			for _, m := range regexp.MustCompile(`(?m)^\s*//(.*)$`).FindAllStringSubmatch(string(b), -1) {
				comments.WriteString(m[1] + "\n")
			}
			docs[rel+" (comments)"] = comments.String()
		}
		return nil
	})
	if len(docs) < 10 || len(tests) < 100 {
		t.Fatalf("read %d docs and %d tests: not the repository", len(docs), len(tests))
	}
	flags := commandFlags(t)
	testName := regexp.MustCompile(`(?:^|[^.\w])((?:Test|Benchmark|Fuzz)[A-Z]\w*)`) // not pkg.TestX: another module's
	path := regexp.MustCompile("`((?:internal|cmd|e2e|scripts|guest|examples|contrib)/[A-Za-z0-9_./@-]+\\.(?:go|sh|md|yml|json|toml|wasm|service))`")
	cmdLine := regexp.MustCompile(`(?:^|[\s` + "`" + `(])ftvs ([a-z-]+)`)
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		doc := docs[name]
		for _, m := range testName.FindAllStringSubmatch(doc, -1) {
			if !tests[m[1]] && !strings.HasSuffix(m[1], "_") {
				t.Errorf("%s names %s: no such test, benchmark or fuzz target", name, m[1])
			}
		}
		for _, m := range path.FindAllStringSubmatch(doc, -1) {
			if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
				t.Errorf("%s names %s: no such file", name, m[1])
			}
		}
		for _, loc := range cmdLine.FindAllStringSubmatchIndex(doc, -1) {
			cmd := doc[loc[2]:loc[3]]
			known, ok := flags[cmd]
			if !ok {
				continue // prose ("ftvs makes ..."), not a command
			}
			// Its arguments: the rest of the line, up to the end of the code span, a
			// table cell or a clause, or the next ftvs command.
			args := doc[loc[3]:]
			if i := strings.IndexAny(args, "`\n|;,)"); i >= 0 {
				args = args[:i]
			}
			if i := strings.Index(args, "ftvs "); i >= 0 {
				args = args[:i]
			}
			for _, f := range regexp.MustCompile(`(?:^|\s)--?([a-z][a-z0-9-]+)`).FindAllStringSubmatch(args, -1) {
				if !known[f[1]] {
					t.Errorf("%s: `ftvs %s ... --%s`: ftvs %s has no flag %s", name, cmd, f[1], cmd, f[1])
				}
			}
		}
	}
}

// commandFlags are the flags of each ftvs command (and of its subcommands, merged), as
// its -h lists them.
func commandFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	flag := regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)
	out := map[string]map[string]bool{}
	for _, c := range commands() {
		set := map[string]bool{"h": true, "help": true}
		helps := []string{}
		_, o, e := runCLI(c.name, "-h")
		helps = append(helps, o+e)
		for _, sub := range []string{"save", "inspect", "restore", "rotate", "list", "stamp", "build"} {
			_, o, e := runCLI(c.name, sub, "-h")
			helps = append(helps, o+e)
		}
		for _, h := range helps {
			for _, m := range flag.FindAllStringSubmatch(h, -1) {
				set[m[1]] = true
			}
		}
		out[c.name] = set
	}
	return out
}

// Every command's -h shows examples, and every example uses flags its command has.
func TestHelpHasExamples(t *testing.T) {
	flags := commandFlags(t)
	for _, c := range commands() {
		if c.name == "version" {
			continue
		}
		_, out, errOut := runCLI(c.name, "-h")
		if !strings.Contains(out+errOut, "Examples:") && !strings.Contains(out+errOut, "Examples") {
			t.Errorf("ftvs %s -h shows no examples:\n%s%s", c.name, out, errOut)
		}
	}
	for name, exs := range examples {
		cmd, _, _ := strings.Cut(name, " ")
		for _, ex := range exs {
			for _, f := range regexp.MustCompile(`\s--?([a-z][a-z0-9-]+)`).FindAllStringSubmatch(strings.SplitN(ex, "#", 2)[0], -1) {
				if !flags[cmd][f[1]] {
					t.Errorf("example of %s %q: ftvs %s has no flag %s", name, ex, cmd, f[1])
				}
			}
		}
	}
}
